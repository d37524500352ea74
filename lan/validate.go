package lan

import (
	"bytes"
	"net"
	"net/netip"
	"regexp"
	"sort"

	"nodenet/fw"
	"nodenet/links"
)

var networkName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

// ValidNetworkName: 1–32 of a-z 0-9 -, starting with a letter.
func ValidNetworkName(name string) error {
	if !networkName.MatchString(name) {
		return Errorf(Invalid, "network name %q: want 1-32 of a-z, 0-9 and -, starting with a letter", name)
	}
	return nil
}

// ValidNIC: a member name becomes an interface name inside the member's
// netns, so the kernel's rules apply: 1-15 bytes, no '/', ':' or space.
// '%' is refused too: the kernel takes "eth%d" as a template and would
// give the link another name than the one recorded.
func ValidNIC(nic string) error {
	if len(nic) == 0 || len(nic) > 15 || nic == "." || nic == ".." {
		return Errorf(Invalid, "interface name %q: want 1-15 bytes", nic)
	}
	for _, r := range nic {
		if r == '/' || r == ':' || r == '%' || r <= ' ' || r > '~' {
			return Errorf(Invalid, "interface name %q: no '/', ':', '%%', spaces or non-ASCII", nic)
		}
	}
	return nil
}

// ValidNetns checks a member's netns spec the way Join will read it, without
// opening anything: NAME, /run/netns/NAME or /proc/PID/ns/net.
func ValidNetns(spec string) error {
	if _, err := links.NetnsPath(spec); err != nil {
		return Errorf(Invalid, "%w", err)
	}
	return nil
}

// ValidMAC checks a member's MAC as Join will ("" is: nodenet picks one).
func ValidMAC(s string) error {
	_, err := checkMAC(s)
	return err
}

// ValidPorts checks port forwards as Join will parse them, and refuses two
// keys that name the same host port ("80" and "80/tcp"): one of the two
// member ports would be dropped without a word.
func ValidPorts(ports PortForwards) error {
	keys := make([]string, 0, len(ports))
	for k := range ports {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	seen := map[string]string{}
	for _, k := range keys {
		f, err := fw.ParseForward(k, ports[k])
		if err != nil {
			return Errorf(Invalid, "%w", err)
		}
		if other, ok := seen[f.Key()]; ok {
			return Errorf(Invalid, "port forwards %q and %q both name host port %s", other, k, f.Key())
		}
		seen[f.Key()] = k
	}
	return nil
}

// addressing is a network's checked layer 3.
type addressing struct {
	prefix  netip.Prefix // zero: no addressing
	gateway netip.Addr
}

// checkAddressing parses the CIDR and gateway; the gateway must lie inside.
func checkAddressing(s IPSettings) (addressing, error) {
	var a addressing
	if s.CIDR == "" {
		if s.Gateway != "" || s.DHCP {
			return a, Errorf(Invalid, "network: a gateway or dhcp needs a cidr")
		}
		return a, nil
	}
	p, err := netip.ParsePrefix(s.CIDR)
	if err != nil || !p.Addr().Is4() {
		return a, Errorf(Invalid, "cidr %q: want an IPv4 prefix such as 10.10.0.0/24", s.CIDR)
	}
	if p.Bits() < 8 {
		return a, Errorf(Invalid, "cidr %q: too large for a LAN (at least /8)", s.CIDR)
	}
	for _, r := range notLAN {
		if r.p.Overlaps(p) {
			return a, Errorf(Invalid, "cidr %q: inside %s, %s, not a LAN's", s.CIDR, r.p, r.what)
		}
	}
	if p.Bits() > 30 {
		return a, Errorf(Invalid, "cidr %q: too small for a gateway and members (at most /30)", s.CIDR)
	}
	a.prefix = p.Masked()
	if s.Gateway == "" {
		return a, nil
	}
	gw, err := netip.ParseAddr(s.Gateway)
	if err != nil || !a.prefix.Contains(gw) || gw == a.prefix.Addr() || gw == broadcast(a.prefix) {
		return a, Errorf(Invalid, "gateway %q: not a host address inside %s", s.Gateway, a.prefix)
	}
	a.gateway = gw
	for _, d := range s.DNS {
		if _, err := netip.ParseAddr(d); err != nil {
			return a, Errorf(Invalid, "dns %q: not an IP address", d)
		}
	}
	return a, nil
}

// notLAN are IPv4 ranges the kernel routes specially: a LAN there would
// break the node's own loopback or multicast, or never carry a packet.
var notLAN = []struct {
	p    netip.Prefix
	what string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "\"this network\" (RFC 1122)"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved (RFC 1112) and broadcast"},
}

// checkMAC parses a member's MAC: unicast, 6 bytes, not all zero (the
// kernel refuses that one only once links are half made).
func checkMAC(s string) (net.HardwareAddr, error) {
	if s == "" {
		return nil, nil
	}
	mac, err := net.ParseMAC(s)
	if err != nil || len(mac) != 6 || mac[0]&1 == 1 || bytes.Equal(mac, make([]byte, 6)) {
		return nil, Errorf(Invalid, "mac %q: want a unicast Ethernet address such as 02:00:00:00:00:01", s)
	}
	return mac, nil
}

func broadcast(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
