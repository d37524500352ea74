package cmdline

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// The ip= grammar, from the kernel's nfsroot.rst and dracut.cmdline(7):
//
//	ip=<autoconf>                                   every NIC
//	ip=<if>:<autoconf>[:[<mtu>][:<mac>]]            dracut; the MAC has colons
//	ip=<client>:<peer>:<gw>:<netmask>:<hostname>:<if>:<autoconf>[:<dns0>[:<dns1>[:<ntp0>]]]
//	ip=<client>:<peer>:<gw>:<netmask>:<hostname>:<if>:<autoconf>[:[<mtu>][:<mac>]]
//
// IPv6 addresses go in brackets so their colons do not split fields.
// Choices where the sources are silent or differ: a client without autoconf
// is static; 0.0.0.0 means "not given" (PXE loaders write it); an IPv4
// client without netmask gets its class's mask as in the kernel, an IPv6
// one /64; any problem skips the whole entry.

// autoconfWords maps every method word either accepts to its normal form.
var autoconfWords = map[string]Autoconf{
	"none": AutoNone, "off": AutoNone,
	"dhcp": AutoDHCP, "on": AutoDHCP, "any": AutoDHCP, "bootp": AutoDHCP,
	"both": AutoDHCP, "single-dhcp": AutoDHCP,
	"dhcp6": AutoDHCP6, "auto6": AutoAuto6, "either6": AutoEither6,
	"link6": AutoLink6, "ibft": AutoIBFT, "rarp": AutoRARP,
}

// parseIP parses the value of one ip= flag.
func parseIP(val string) (IPConfig, error) {
	if val == "" {
		return IPConfig{}, errors.New("empty value")
	}
	f, err := splitFields(val)
	if err != nil {
		return IPConfig{}, err
	}
	// An address in the first field means the long form; a method word in
	// the second means dracut's short one (a peer is never a word).
	switch {
	case len(f) == 1 && !isAddr(f[0]):
		return parseShort([]string{"", f[0]})
	case len(f) >= 2 && isAutoconf(f[1]), len(f) == 2 && !isAddr(f[0]):
		return parseShort(f)
	}
	return parseLong(f)
}

// splitFields splits at ':' except inside brackets; a bracketed field may
// carry a "/prefix" after its ']'. n colons always give n+1 fields.
func splitFields(s string) ([]string, error) {
	var fields []string
	for {
		start := 0
		if strings.HasPrefix(s, "[") {
			end := strings.IndexByte(s, ']')
			if end < 0 {
				return nil, fmt.Errorf("unclosed bracket in %q", s)
			}
			start = end
		}
		i := strings.IndexByte(s[start:], ':')
		if i < 0 {
			return append(fields, s), nil
		}
		fields = append(fields, s[:start+i])
		s = s[start+i+1:]
	}
}

// parseShort reads dracut's <if>:<autoconf>[:[<mtu>][:<mac>]].
func parseShort(f []string) (IPConfig, error) {
	var c IPConfig
	var err error
	if f[0] != "" {
		if err := checkIfname(f[0]); err != nil {
			return IPConfig{}, err
		}
		c.Interface = f[0]
	}
	if c.Method, c.ClientID, err = method(f[1], false); err != nil {
		return IPConfig{}, err
	}
	if len(f) > 2 && f[2] != "" {
		if c.MTU, err = parseMTU(f[2]); err != nil {
			return IPConfig{}, err
		}
	}
	if len(f) > 3 && !allEmpty(f[3:]) {
		if c.MAC, err = parseMAC(joinMAC(f[3:])); err != nil {
			return IPConfig{}, err
		}
	}
	return c, nil
}

// parseLong reads the kernel's seven fields and what dracut or the kernel
// allow after them.
func parseLong(f []string) (IPConfig, error) {
	for len(f) < 7 {
		f = append(f, "")
	}
	var c IPConfig
	client, cbits, err := parseAddrPrefix(f[0])
	if err != nil || client.IsMulticast() || cbits == 0 {
		return IPConfig{}, fmt.Errorf("bad client address %q", f[0])
	}
	peer, pbits, err := parseAddrPrefix(f[1])
	if err != nil || peer.IsMulticast() {
		return IPConfig{}, fmt.Errorf("bad peer address %q", f[1])
	}
	c.Peer = peer
	if c.Gateway, err = parseAddr(f[2], false); err != nil || c.Gateway.IsMulticast() {
		return IPConfig{}, fmt.Errorf("bad gateway %q", f[2])
	}
	mbits, mfamily, err := parseNetmask(f[3])
	if err != nil {
		return IPConfig{}, fmt.Errorf("bad netmask %q", f[3])
	}
	if f[4] != "" {
		if err := checkHostname(f[4]); err != nil {
			return IPConfig{}, err
		}
		c.Hostname = f[4]
	}
	if f[5] != "" {
		if err := checkIfname(f[5]); err != nil {
			return IPConfig{}, err
		}
		c.Interface = f[5]
	}
	if c.Method, c.ClientID, err = method(f[6], client.IsValid()); err != nil {
		return IPConfig{}, err
	}
	if err := parseTail(&c, f[7:]); err != nil {
		return IPConfig{}, err
	}
	if !client.IsValid() {
		return c, nil
	}
	for _, a := range []struct {
		name string
		addr netip.Addr
	}{{"peer", c.Peer}, {"gateway", c.Gateway}} {
		if a.addr.IsValid() && a.addr.Is4() != client.Is4() {
			return IPConfig{}, fmt.Errorf("%s %s and client %s are of different families", a.name, a.addr, client)
		}
	}
	bits := cbits
	if mbits >= 0 {
		family := 6
		if client.Is4() {
			family = 4
		}
		if mfamily != 0 && mfamily != family || mbits > client.BitLen() {
			return IPConfig{}, fmt.Errorf("bad netmask %q for client %s", f[3], client)
		}
		if bits >= 0 && bits != mbits {
			return IPConfig{}, fmt.Errorf("client prefix /%d conflicts with netmask %q", bits, f[3])
		}
		bits = mbits
	}
	if bits < 0 && pbits > 0 {
		// dracut: the peer "may be followed by a slash and ... the network
		// prefix length"; use it when nothing else gives one.
		bits = pbits
	}
	if bits < 0 && client.Is6() {
		bits = 64 // the usual IPv6 subnet; the kernel has no IPv6 here
	} else if bits < 0 {
		var ok bool
		if bits, ok = classfulBits(client); !ok {
			return IPConfig{}, fmt.Errorf("no netmask given and none can be guessed for %s", client)
		}
	}
	c.Client = netip.PrefixFrom(client, bits)
	return c, nil
}

// parseTail reads the fields after <autoconf>: the kernel's dns0, dns1,
// ntp0, or dracut's [<mtu>][:<mac>]. An integer is an MTU; an empty field
// followed by a MAC is dracut's; anything else is the kernel's form.
func parseTail(c *IPConfig, rest []string) error {
	if allEmpty(rest) {
		return nil
	}
	var err error
	switch first := rest[0]; {
	case isDigits(first):
		if c.MTU, err = parseMTU(first); err != nil {
			return err
		}
		if !allEmpty(rest[1:]) {
			c.MAC, err = parseMAC(joinMAC(rest[1:]))
		}
		return err
	case first == "" && isMAC(joinMAC(rest[1:])):
		c.MAC, err = parseMAC(joinMAC(rest[1:]))
		return err
	case len(rest) > 3 && first == "":
		return fmt.Errorf("bad MAC address %q", joinMAC(rest[1:]))
	case len(rest) > 3:
		return fmt.Errorf("too many fields after autoconf: %q", strings.Join(rest, ":"))
	}
	for i, s := range rest {
		if s == "" {
			continue
		}
		what, list := "DNS server", &c.DNS
		if i == 2 {
			what, list = "NTP server", &c.NTP
		}
		a, err := parseAddr(s, false)
		if err != nil || a.IsMulticast() {
			return fmt.Errorf("bad %s %q", what, s)
		}
		if a.IsValid() {
			*list = append(*list, a)
		}
	}
	return nil
}

// method reads an autoconf field. Empty means the kernel's default: "any"
// (DHCP), or static when a client address is given.
func method(s string, haveClient bool) (Autoconf, *ClientID, error) {
	switch {
	case s == "" && haveClient:
		return AutoNone, nil, nil
	case s == "":
		return AutoDHCP, nil, nil
	}
	return parseAutoconf(s)
}

// parseAutoconf reads a method word, including the kernel's
// dhcp,<client-id-type>,<client-id-value>.
func parseAutoconf(s string) (Autoconf, *ClientID, error) {
	word, id, hasID := strings.Cut(s, ",")
	m, ok := autoconfWords[strings.ToLower(word)]
	if !ok || hasID && m != AutoDHCP {
		return "", nil, fmt.Errorf("unknown autoconf method %q", s)
	}
	if !hasID {
		return m, nil, nil
	}
	// The kernel sends up to 251 bytes as they are; printable ASCII keeps
	// the value readable in logs and JSON.
	typ, val, ok := strings.Cut(id, ",")
	if !ok || val == "" || len(val) > 251 || strings.ContainsFunc(val, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
		return "", nil, fmt.Errorf("bad DHCP client identifier %q: want dhcp,<type>,<value>", s)
	}
	t, err := strconv.ParseUint(typ, 0, 8)
	if err != nil {
		return "", nil, fmt.Errorf("bad DHCP client identifier type %q", typ)
	}
	return AutoDHCP, &ClientID{Type: uint8(t), Value: val}, nil
}

func isAutoconf(s string) bool {
	_, _, err := parseAutoconf(s)
	return err == nil
}

func isAddr(s string) bool {
	_, _, err := parseAddrPrefix(s)
	return s != "" && err == nil
}

func isMAC(s string) bool {
	_, err := parseMAC(s)
	return err == nil
}

// joinMAC puts back the colons that splitting took out of a MAC, ignoring
// a trailing ':'.
func joinMAC(f []string) string {
	for len(f) > 0 && f[len(f)-1] == "" {
		f = f[:len(f)-1]
	}
	return strings.Join(f, ":")
}

func allEmpty(f []string) bool {
	for _, s := range f {
		if s != "" {
			return false
		}
	}
	return true
}
