package links

import (
	"errors"
	"fmt"
	"os"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// IsolateFromHost keeps the node's own stack off ifname, a bridge port of
// the caller's namespace (a member's host-side veth end or tap), so the
// port only carries what the bridge forwards. On OVS's userspace datapath
// the kernel still receives every frame a member sends, beside OVS's
// AF_PACKET copy; without this the port answers ARP for the node's
// addresses (the LAN gateway's included) with its own MAC and hands IP
// packets to the node's stack, bypassing the gateway port. The kernel
// datapath consumes port frames before the stack sees them, so this is
// harmless there. Each step is idempotent:
//
//   - ARP off (IFF_NOARP): arp_rcv drops every ARP frame arriving on the
//     link, so no reply and nothing learnt from it, and members never
//     learn this link's MAC to send IP to it;
//   - net/ipv6/conf/IF/disable_ipv6=1: no link-local address, no NDP, and
//     ip6_rcv drops all IPv6 input;
//   - net/ipv4/conf/IF/rp_filter=1 with no address on the link: an IPv4
//     packet is accepted only if the route back to its source leaves
//     through this link, and none does, so unicast and broadcast input is
//     dropped as martian. For a link without an address the kernel drops
//     in loose mode (2) too, so the larger of conf/all and conf/IF, which
//     is what applies, always drops;
//   - net/ipv4/conf/IF/forwarding=0: nothing received here is forwarded
//     should rp_filter be turned off. A change of net/ipv4/ip_forward
//     resets it on every link (writing the value it already has does not),
//     so the node turns forwarding on before members exist and leaves it.
//
// What remains: rp_filter cannot judge a source of 0.0.0.0, so broadcasts
// from an unconfigured client (DHCPDISCOVER and DHCPREQUEST to
// 255.255.255.255) still reach the node's sockets through this link; the
// kernel has no per-interface switch to refuse IPv4 input. A DHCP server
// must bind its socket to the gateway port (SO_BINDTODEVICE), or the
// firewall drop IPv4 in prerouting with iifname matching the port prefix.
// A tc ingress filter is no way out: OVS deletes a port's ingress qdisc
// when it adds the port (it resets ingress policing).
func IsolateFromHost(ifname string) error {
	if err := ValidIfname(ifname); err != nil {
		return fmt.Errorf("isolate: %w", err)
	}
	l, err := netlink.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("isolate %s: %w", ifname, err)
	}
	if err := netlink.LinkSetARPOff(l); err != nil {
		return fmt.Errorf("isolate %s: arp off: %w", ifname, err)
	}
	if err := disableIPv6(ifname); err != nil {
		return fmt.Errorf("isolate %s: %w", ifname, err)
	}
	for _, kv := range [][2]string{{"rp_filter", "1"}, {"forwarding", "0"}} {
		if err := SetSysctl(netns.None(), "net/ipv4/conf/"+ifname+"/"+kv[0], kv[1]); err != nil {
			return fmt.Errorf("isolate %s: %w", ifname, err)
		}
	}
	return nil
}

// disableIPv6 turns IPv6 off on ifname; a kernel without IPv6
// (ipv6.disable=1) has nothing to turn off.
func disableIPv6(ifname string) error {
	if _, err := os.Stat(ProcSys + "/net/ipv6"); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return SetSysctl(netns.None(), "net/ipv6/conf/"+ifname+"/disable_ipv6", "1")
}

// RejoinHost undoes IsolateFromHost for a NIC that is to hold the node's
// addresses again (an uplink a vlan trunk no longer carries): ARP and
// IPv6 on, rp_filter off, forwarding as net/ipv4/ip_forward says.
func RejoinHost(ifname string) error {
	if err := ValidIfname(ifname); err != nil {
		return fmt.Errorf("rejoin host: %w", err)
	}
	l, err := netlink.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("rejoin host %s: %w", ifname, err)
	}
	if err := netlink.LinkSetARPOn(l); err != nil {
		return fmt.Errorf("rejoin host %s: arp on: %w", ifname, err)
	}
	forwarding, err := Sysctl(netns.None(), "net/ipv4/ip_forward")
	if err != nil {
		return fmt.Errorf("rejoin host %s: %w", ifname, err)
	}
	for _, kv := range [][2]string{{"ipv4/conf/" + ifname + "/rp_filter", "0"}, {"ipv4/conf/" + ifname + "/forwarding", forwarding}, {"ipv6/conf/" + ifname + "/disable_ipv6", "0"}} {
		if _, err := os.Stat(ProcSys + "/net/" + kv[0]); errors.Is(err, os.ErrNotExist) {
			continue // a kernel without IPv6
		}
		if err := SetSysctl(netns.None(), "net/"+kv[0], kv[1]); err != nil {
			return fmt.Errorf("rejoin host %s: %w", ifname, err)
		}
	}
	return nil
}
