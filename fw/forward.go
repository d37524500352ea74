package fw

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// ErrConflict: a host port (on that address, or on every address) is
// forwarded already.
var ErrConflict = errors.New("already forwarded")

// ErrInvalid: a forward or LAN the firewall cannot express.
var ErrInvalid = errors.New("invalid")

// LAN is what the firewall knows of one LAN: the node-side device its
// members' traffic arrives on, and whether their egress is masqueraded.
type LAN struct {
	Name    string
	Device  string     // the gateway port (the bridge's internal port)
	Gateway netip.Addr // the node's address on Device; members may reach it for DHCP and DNS
	NAT     bool
}

// Forward sends what arrives for HostIP:HostPort (any of the node's own
// addresses when HostIP is not valid) to the member's MemberIP:MemberPort.
type Forward struct {
	Network, Member string // whose forward it is, for errors and Leave
	Proto           string // "tcp" or "udp"
	HostIP          netip.Addr
	HostPort        uint16
	MemberIP        netip.Addr
	MemberPort      uint16
}

// Key is the forward's host side as lan.PortForwards spells it.
func (f Forward) Key() string {
	k := strconv.Itoa(int(f.HostPort))
	if f.HostIP.IsValid() {
		k = netip.AddrPortFrom(f.HostIP, f.HostPort).String()
	}
	return k + "/" + f.Proto
}

// overlaps: the two cannot both be installed, as the same packet would
// match both (the same port and protocol on a common address).
func (f Forward) overlaps(g Forward) bool {
	return f.Proto == g.Proto && f.HostPort == g.HostPort &&
		(!f.HostIP.IsValid() || !g.HostIP.IsValid() || f.HostIP == g.HostIP)
}

// ParseForward reads a "[hostIP:]hostPort[/tcp|/udp]" key (TCP when no
// protocol is given) and the member port it maps to.
func ParseForward(key string, memberPort uint32) (Forward, error) {
	bad := func(why string) (Forward, error) {
		return Forward{}, fmt.Errorf("port forward %q: %s: %w", key, why, ErrInvalid)
	}
	if memberPort == 0 || memberPort > 65535 {
		return bad(fmt.Sprintf("member port %d: want 1-65535", memberPort))
	}
	f := Forward{Proto: "tcp", MemberPort: uint16(memberPort)}
	host, proto, hasProto := strings.Cut(key, "/")
	if hasProto {
		if proto != "tcp" && proto != "udp" {
			return bad(fmt.Sprintf("protocol %q: want tcp or udp", proto))
		}
		f.Proto = proto
	}
	if strings.ContainsAny(host, ":[") {
		ap, err := netip.ParseAddrPort(host)
		if err != nil || ap.Port() == 0 {
			return bad("want [HOSTIP:]HOSTPORT[/tcp|/udp]")
		}
		if !ap.Addr().Unmap().Is4() {
			return bad("IPv6 host addresses cannot reach an IPv4 member")
		}
		f.HostIP, f.HostPort = ap.Addr().Unmap(), ap.Port()
		switch {
		case f.HostIP.IsUnspecified():
			return bad("host address 0.0.0.0: leave it out to forward on every address")
		case f.HostIP.IsMulticast() || f.HostIP == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
			return bad(fmt.Sprintf("host address %s: not a unicast address", f.HostIP))
		}
		return f, nil
	}
	port, err := strconv.ParseUint(host, 10, 16)
	if err != nil || port == 0 {
		return bad("host port: want 1-65535")
	}
	f.HostPort = uint16(port)
	return f, nil
}
