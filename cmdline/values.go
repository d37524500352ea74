package cmdline

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Parsers for the values that several flags share: addresses, MACs,
// interface names, MTUs. Errors name the offending text; the caller adds
// the flag.

// parseAddr parses an IPv4 or IPv6 address, the latter optionally in
// brackets (ip= needs them, nameserver= does not). "" and the unspecified
// address read as absent: PXE loaders write 0.0.0.0 for "no gateway".
// Zones are refused unless zoneOK: a prefix cannot hold one and ip= names
// the NIC.
func parseAddr(s string, zoneOK bool) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, nil
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		s = s[1 : len(s)-1]
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, err
	}
	if z := a.Zone(); z != "" && (!zoneOK || checkIfname(z) != nil) {
		return netip.Addr{}, fmt.Errorf("bad zone %q", z)
	}
	a = a.Unmap()
	if a.WithZone("").IsUnspecified() {
		return netip.Addr{}, nil
	}
	return a, nil
}

// parseAddrPrefix parses an address with an optional prefix length:
// "10.0.0.5", "10.0.0.5/24", "[fd00::2]/64" or "[fd00::2/64]" (dracut's
// rd.route style). bits is -1 when no length is given.
func parseAddrPrefix(s string) (a netip.Addr, bits int, err error) {
	addr, length := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return netip.Addr{}, -1, errors.New("unclosed bracket")
		}
		addr, length = s[1:end], s[end+1:]
		if i := strings.IndexByte(addr, '/'); i >= 0 && length == "" {
			addr, length = addr[:i], addr[i:]
		}
		if length != "" && !strings.HasPrefix(length, "/") {
			return netip.Addr{}, -1, errors.New("text after bracket")
		}
	} else if i := strings.IndexByte(s, '/'); i >= 0 {
		addr, length = s[:i], s[i:]
	}
	if addr == "" && s != "" {
		return netip.Addr{}, -1, errors.New("no address")
	}
	if a, err = parseAddr(addr, false); err != nil {
		return netip.Addr{}, -1, err
	}
	if length == "" {
		return a, -1, nil
	}
	bits, err = parseBits(length[1:], 128)
	if err != nil {
		return netip.Addr{}, -1, err
	}
	if a.IsValid() && bits > a.BitLen() {
		return netip.Addr{}, -1, fmt.Errorf("prefix /%d too long", bits)
	}
	return a, bits, nil
}

// parseBits parses a decimal prefix length 0..max.
func parseBits(s string, max int) (int, error) {
	if !isDigits(s) || len(s) > 3 {
		return 0, fmt.Errorf("bad prefix length %q", s)
	}
	n, _ := strconv.Atoi(s)
	if n > max {
		return 0, fmt.Errorf("prefix length %d over %d", n, max)
	}
	return n, nil
}

// parseNetmask reads the netmask field: a prefix length or a contiguous
// dotted (or bracketed IPv6) mask. It returns -1 for an absent mask; the
// kernel reads 0.0.0.0 as unset, so /0 is treated the same way. family is
// 4 or 6 for a mask written as an address, 0 for a bare length.
func parseNetmask(s string) (bits, family int, err error) {
	if s == "" {
		return -1, 0, nil
	}
	if isDigits(s) {
		if bits, err = parseBits(s, 128); err != nil {
			return -1, 0, err
		}
		if bits == 0 {
			return -1, 0, nil
		}
		return bits, 0, nil
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		s = s[1 : len(s)-1]
	}
	m, err := netip.ParseAddr(s)
	if err != nil || m.Zone() != "" || m.Is4In6() {
		return -1, 0, errors.New("not a mask")
	}
	ones, ok := maskBits(m.AsSlice())
	if !ok {
		return -1, 0, errors.New("mask bits not contiguous")
	}
	if ones == 0 {
		return -1, 0, nil
	}
	if m.Is4() {
		return ones, 4, nil
	}
	return ones, 6, nil
}

// maskBits counts the leading ones of a mask, ok only if the rest are zero.
func maskBits(b []byte) (int, bool) {
	n := 0
	for i, x := range b {
		if x == 0xff {
			n += 8
			continue
		}
		for x&0x80 != 0 {
			n++
			x <<= 1
		}
		if x != 0 {
			return 0, false
		}
		for _, y := range b[i+1:] {
			if y != 0 {
				return 0, false
			}
		}
		break
	}
	return n, true
}

// classfulBits is the kernel's guess when an IPv4 client has no netmask
// (ic_defaults in net/ipv4/ipconfig.c): class A /8, B /16, C /24.
func classfulBits(a netip.Addr) (int, bool) {
	switch b := a.As4(); {
	case b[0] < 128:
		return 8, true
	case b[0] < 192:
		return 16, true
	case b[0] < 224:
		return 24, true
	}
	return 0, false
}

// parseMAC parses an Ethernet (6-byte) MAC in any form net.ParseMAC takes.
func parseMAC(s string) (MAC, error) {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return nil, fmt.Errorf("bad MAC address %q", s)
	}
	return MAC(hw), nil
}

// checkIfname applies the kernel's dev_valid_name rules (1–15 bytes, not
// "." or "..", no '/', ':' or whitespace) and, like systemd's ifname_valid,
// allows printable ASCII only and no '%' (the kernel's "eth%d" template).
func checkIfname(s string) error {
	switch {
	case s == "":
		return errors.New("bad interface name: empty")
	case len(s) > 15:
		return fmt.Errorf("bad interface name %q: longer than 15 bytes", s)
	case s == "." || s == "..":
		return fmt.Errorf("bad interface name %q", s)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '/' || c == ':' || c == '%' || c <= ' ' || c >= 0x7f {
			if r, _ := utf8.DecodeRuneInString(s[i:]); r != utf8.RuneError {
				return fmt.Errorf("bad interface name %q: contains %q", s, r)
			}
			return fmt.Errorf("bad interface name %q: contains byte %#x", s, c)
		}
	}
	return nil
}

// parseMTU parses an MTU in the range Linux accepts for Ethernet-like links.
func parseMTU(s string) (int, error) {
	if !isDigits(s) || len(s) > 5 {
		return 0, fmt.Errorf("bad MTU %q", s)
	}
	n, _ := strconv.Atoi(s)
	if n < 68 || n > 65535 {
		return 0, fmt.Errorf("bad MTU %q: want 68..65535", s)
	}
	return n, nil
}

// checkHostname accepts 1–64 bytes (the kernel's __NEW_UTS_LEN) of letters,
// digits, '-', '_' and '.', not starting with '-' or '.'.
func checkHostname(s string) error {
	if len(s) > 64 || s[0] == '-' || s[0] == '.' {
		return fmt.Errorf("bad hostname %q", s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("bad hostname %q", s)
		}
	}
	return nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
