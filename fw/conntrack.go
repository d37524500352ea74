package fw

import (
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// forwardFlows matches the connections a forward made: to its host port,
// answered by its member.
type forwardFlows []Forward

func (fs forwardFlows) MatchConntrackFlow(flow *netlink.ConntrackFlow) bool {
	for _, f := range fs {
		proto := uint8(unix.IPPROTO_TCP)
		if f.Proto == "udp" {
			proto = unix.IPPROTO_UDP
		}
		if flow.Forward.Protocol == proto && flow.Forward.DstPort == f.HostPort &&
			flow.Reverse.SrcPort == f.MemberPort && flow.Reverse.SrcIP.Equal(net.IP(f.MemberIP.AsSlice())) {
			return true
		}
	}
	return false
}

func (f *Firewall) flushConntrack(fs []Forward) error {
	if len(fs) == 0 {
		return nil
	}
	h, err := f.netlinkHandle()
	if err != nil {
		return err
	}
	defer h.Close()
	n, err := h.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, forwardFlows(fs))
	if err != nil {
		return fmt.Errorf("conntrack: delete the flows of %s/%s: %w", fs[0].Network, fs[0].Member, err)
	}
	if n > 0 {
		f.Log.Debug("firewall: conntrack flows deleted", "network", fs[0].Network, "member", fs[0].Member, "flows", n)
	}
	return nil
}

func (f *Firewall) netlinkHandle() (*netlink.Handle, error) {
	if f.NetnsFd == 0 {
		return netlink.NewHandle(unix.NETLINK_NETFILTER)
	}
	return netlink.NewHandleAt(netns.NsHandle(f.NetnsFd), unix.NETLINK_NETFILTER)
}
