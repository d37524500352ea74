package links

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
)

// MaxIfname is the longest interface name the kernel takes (IFNAMSIZ-1).
const MaxIfname = 15

// MaxNamePrefix is the longest prefix Name takes, so at least 11 hex
// digits (44 bits) of hash remain.
const MaxNamePrefix = 4

// Name returns a 15-byte interface name: prefix followed by the hex digits
// of a SHA-256 of parts, as many as fit. The same parts always give the same
// name, so a restarted daemon finds what it made, and the prefix marks the
// link as nodenet's.
//
// Collision odds: with a 3-byte prefix 12 hex digits (48 bits) remain; among
// n names of one prefix the chance of any collision is about n²/2⁴⁹, i.e.
// 2e-7 for 10,000 members (3e-6 with a 4-byte prefix, 44 bits). The kernel
// refuses a duplicate name, so a collision shows up as an error, never as
// two members sharing an interface.
//
// Name panics if prefix is longer than MaxNamePrefix or holds a byte
// ValidIfname refuses: prefixes are constants of the program.
func Name(prefix string, parts ...string) string {
	if len(prefix) > MaxNamePrefix {
		panic(fmt.Sprintf("links.Name: prefix %q longer than %d bytes", prefix, MaxNamePrefix))
	}
	if prefix != "" {
		if err := validIfnameBytes(prefix); err != nil {
			panic(fmt.Sprintf("links.Name: prefix %q: %v", prefix, err))
		}
	}
	sum := digest("name", parts)
	return prefix + hex.EncodeToString(sum[:])[:MaxIfname-len(prefix)]
}

// MAC returns a locally administered unicast address derived from parts
// (46 bits of SHA-256), so a member keeps its MAC, and with it its DHCP
// lease, across re-joins and restarts. Its hash is independent of Name's
// for the same parts.
func MAC(parts ...string) net.HardwareAddr {
	sum := digest("mac", parts)
	mac := net.HardwareAddr(sum[:6])
	mac[0] = mac[0]&^0x01 | 0x02 // unicast, locally administered
	return mac
}

// digest hashes parts with each one's length in front, so ("a", "bc") and
// ("ab", "c") differ, and with a domain so Name and MAC never share bits.
func digest(domain string, parts []string) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte("nodenet/" + domain + "\x00"))
	var n [8]byte
	for _, p := range parts {
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
	}
	var sum [sha256.Size]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

// ValidIfname checks s against the kernel's dev_valid_name: 1–15 bytes, not
// "." or "..", no '/', ':' or whitespace (the kernel's isspace, which
// includes 0xA0). It also refuses '%', which the kernel expands as a
// template ("eth%d") when it creates a link, and NUL, which would cut the
// name short.
func ValidIfname(s string) error {
	switch {
	case s == "":
		return errors.New("interface name is empty")
	case len(s) > MaxIfname:
		return fmt.Errorf("interface name %q is %d bytes, longer than %d", s, len(s), MaxIfname)
	case s == "." || s == "..":
		return fmt.Errorf("interface name %q is not allowed", s)
	}
	if err := validIfnameBytes(s); err != nil {
		return fmt.Errorf("interface name %q: %w", s, err)
	}
	return nil
}

func validIfnameBytes(s string) error {
	if i := strings.IndexAny(s, "/:%\x00"); i >= 0 {
		return fmt.Errorf("holds %q", s[i])
	}
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ' ', '\t', '\n', '\v', '\f', '\r', 0xa0:
			return fmt.Errorf("holds whitespace at byte %d", i)
		}
	}
	return nil
}
