package main

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"text/tabwriter"
	"time"

	"nodenet/lan"
)

// printNetworks renders `network ls`: one network per row.
func printNetworks(w io.Writer, infos []lan.Info) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tTYPE\tCIDR\tGATEWAY\tDHCP\tNAT\tMTU\tMEMBERS")
	for _, n := range infos {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", n.Name, n.Type, orDash(n.Network.CIDR),
			orDash(n.Network.Gateway), yesNo(n.Network.DHCP), natString(n.NAT), numOrDash(n.MTU), len(n.Members))
	}
	tw.Flush()
}

// printNetwork renders `network show`: the settings, then the members.
func printNetwork(w io.Writer, n lan.Info) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "name:\t%s\n", n.Name)
	fmt.Fprintf(tw, "type:\t%s\n", n.Type)
	fmt.Fprintf(tw, "cidr:\t%s\n", orDash(n.Network.CIDR))
	fmt.Fprintf(tw, "gateway:\t%s\n", orDash(n.Network.Gateway))
	fmt.Fprintf(tw, "dhcp:\t%s\n", yesNo(n.Network.DHCP))
	fmt.Fprintf(tw, "dns:\t%s\n", joinOrDash(n.Network.DNS))
	fmt.Fprintf(tw, "nat:\t%s\n", natString(n.NAT))
	fmt.Fprintf(tw, "mtu:\t%s\n", numOrDash(n.MTU))
	// Only the block of the network's own type means anything.
	switch {
	case n.Type == lan.VLan && n.VLan != nil:
		fmt.Fprintf(tw, "vlan:\t%d on %s\n", n.VLan.ID, orDash(n.VLan.Parent))
	case n.Type == lan.VXLan && n.VXLan != nil:
		fmt.Fprintf(tw, "vxlan:\tvni %d, remotes %s, port %s, parent %s\n", n.VXLan.VNI,
			joinOrDash(n.VXLan.Remotes), numOrDash(n.VXLan.Port), orDash(n.VXLan.Parent))
	case n.Type == lan.MacVLan && n.MacVLan != nil:
		fmt.Fprintf(tw, "macvlan:\ton %s, mode %s\n", orDash(n.MacVLan.Parent), orDash(n.MacVLan.Mode))
	case n.Type == lan.PassThrough && n.PassThrough != nil:
		fmt.Fprintf(tw, "nic:\t%s\n", orDash(n.PassThrough.NIC))
	case n.Type == lan.Zerotier && n.Zerotier != nil:
		fmt.Fprintf(tw, "zerotier:\t%s\n", orDash(n.Zerotier.NetworkID))
	}
	tw.Flush()
	fmt.Fprintln(w)
	if len(n.Members) == 0 {
		fmt.Fprintln(w, "no members")
		return
	}
	printMembers(w, n.Members)
}

// printMembers renders members, one per row.
func printMembers(w io.Writer, ms []lan.Member) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MEMBER\tKIND\tNETNS\tIFNAME\tIP\tMAC\tHOST IFNAME\tPORTS")
	for _, m := range ms {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.Name, orDash(m.Kind), orDash(m.Namespace),
			orDash(m.Ifname), orDash(m.IP), orDash(m.MAC), orDash(m.HostIfname), portsString(m.Ports))
	}
	tw.Flush()
}

// portsString spells forwards as "8080->80,127.0.0.1:5353/udp->53".
func portsString(p lan.PortForwards) string {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = k + "->" + strconv.FormatUint(uint64(p[k]), 10)
	}
	return joinOrDash(keys)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// natString: nil is "the type's default", which the daemon fills in.
func natString(nat *bool) string {
	if nat == nil {
		return "-"
	}
	return yesNo(*nat)
}

// numOrDash: 0 is "the default".
func numOrDash(n int) string {
	if n == 0 {
		return "-"
	}
	return strconv.Itoa(n)
}

// printLeases renders a DHCP LAN's pool and the leases of clients that are
// not members (members' reservations are in the members table).
func printLeases(w io.Writer, l lan.Leases) {
	p := l.Pool
	fmt.Fprintf(w, "\ndhcp pool: %d free of %d (%d reserved, %d bound, %d offered)", p.Free, p.Size, p.Reserved, p.Bound, p.Offered)
	if p.Exhausted {
		fmt.Fprintf(w, ", EXHAUSTED (a client was last turned away %s)", p.LastExhausted.Format(time.RFC3339))
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	header := false
	for _, le := range l.Leases {
		if le.Reserved {
			continue
		}
		if !header {
			fmt.Fprintln(tw, "\nLEASE IP\tMAC\tHOSTNAME\tSTATE\tEXPIRES")
			header = true
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", le.IP, le.MAC, orDash(le.Hostname), le.State, le.Expires.Format(time.RFC3339))
	}
	tw.Flush()
}
