package lan

import (
	"net"
	"net/netip"
	"regexp"
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
func ValidNIC(nic string) error {
	if len(nic) == 0 || len(nic) > 15 || nic == "." || nic == ".." {
		return Errorf(Invalid, "interface name %q: want 1-15 bytes", nic)
	}
	for _, r := range nic {
		if r == '/' || r == ':' || r <= ' ' || r > '~' {
			return Errorf(Invalid, "interface name %q: no '/', ':', spaces or non-ASCII", nic)
		}
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

// checkMAC parses a member's MAC: unicast, 6 bytes.
func checkMAC(s string) (net.HardwareAddr, error) {
	if s == "" {
		return nil, nil
	}
	mac, err := net.ParseMAC(s)
	if err != nil || len(mac) != 6 || mac[0]&1 == 1 {
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
