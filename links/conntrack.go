package links

import (
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// DNATFlow names the connections a port forward made: proto (IPPROTO_TCP
// or IPPROTO_UDP) to HostPort, answered by To.
type DNATFlow struct {
	Proto    uint8
	HostPort uint16
	To       netip.AddrPort
}

type dnatFlows []DNATFlow

func (fs dnatFlows) MatchConntrackFlow(flow *netlink.ConntrackFlow) bool {
	for _, f := range fs {
		if flow.Forward.Protocol == f.Proto && flow.Forward.DstPort == f.HostPort &&
			flow.Reverse.SrcPort == f.To.Port() && flow.Reverse.SrcIP.Equal(net.IP(f.To.Addr().AsSlice())) {
			return true
		}
	}
	return false
}

// DeleteDNATFlows deletes the IPv4 conntrack entries of those forwards
// from the current netns, so a flow (UDP above all) stops reaching a
// member the forward no longer points to. It returns how many went.
func DeleteDNATFlows(flows []DNATFlow) (uint, error) {
	if len(flows) == 0 {
		return 0, nil
	}
	return netlink.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, dnatFlows(flows))
}
