package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"nodenet/api"
	"nodenet/boot"
	"nodenet/fw"
)

// printStatus renders GET /v1/status as a table, one uplink per row, with
// each uplink's last error under the table.
func printStatus(w io.Writer, st api.Status) {
	fmt.Fprintf(w, "nodenet %s\n\n", st.Version)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "UPLINK\tSOURCE\tSTATE\tCARRIER\tADDRESSES\tGATEWAY\tDNS\tMTU\tLEASE")
	for _, u := range st.Uplinks {
		carrier := "no"
		if u.Carrier {
			carrier = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", u.Name, u.Source, u.State, carrier,
			joinOrDash(u.Addresses), orDash(u.Gateway), joinOrDash(u.DNS), u.MTU, leaseSummary(u.Lease))
	}
	tw.Flush()
	for _, u := range st.Uplinks {
		if u.LastError != "" {
			fmt.Fprintf(w, "\n%s: last error: %s", u.Name, u.LastError)
		}
	}
	fmt.Fprintln(w)
	if st.OVS != nil {
		printOVS(w, st.OVS)
	}
	if st.Firewall != nil {
		printFirewall(w, st.Firewall)
	}
}

// printFirewall renders the firewall's part of the status, warnings first
// in mind: a foreign table that drops forwarded traffic.
func printFirewall(w io.Writer, f *fw.Status) {
	state := "not started (LANs not ready yet)"
	if f.Started {
		state = fmt.Sprintf("LANs %d, port forwards %d", f.LANs, f.Forwards)
	}
	fmt.Fprintf(w, "firewall: table %s: %s\n", f.Table, state)
	for _, warn := range f.Warnings {
		fmt.Fprintf(w, "  WARNING: %s\n", warn)
	}
}

// printOVS renders the Open vSwitch part of the status.
func printOVS(w io.Writer, o *api.OVSStatus) {
	db := "not connected"
	if o.DB.Connected {
		db = "connected"
	}
	name := "Open vSwitch"
	if o.Version != "" {
		name += " " + o.Version
	}
	fmt.Fprintf(w, "%s: ovsdb %s (%s)", name, db, o.DB.Addr)
	if !o.DB.Connected && o.DB.LastError != "" {
		fmt.Fprintf(w, ": %s", o.DB.LastError)
	}
	d := o.Daemons
	fmt.Fprintf(w, "\n  daemons: supervise=%s ovsdb-server=%s ovs-vswitchd=%s restarts=%d\n",
		d.Mode, d.DBServer, d.Vswitchd, d.Restarts)
	if d.LastError != "" {
		fmt.Fprintf(w, "  daemons' last error: %s\n", d.LastError)
	}
	switch {
	case o.DatapathError != "":
		fmt.Fprintf(w, "  datapath: error: %s\n", o.DatapathError)
	case o.Datapath.Reason != "":
		fmt.Fprintf(w, "  datapath: %s (%s)\n", o.Datapath.Type, o.Datapath.Reason)
	default:
		fmt.Fprintf(w, "  datapath: %s\n", orDash(o.Datapath.Type))
	}
}

func leaseSummary(l *boot.LeaseTimes) string {
	if l == nil {
		return "-"
	}
	now := time.Now()
	return fmt.Sprintf("from %s, renew in %s, expires in %s", l.Server,
		l.Renew.Sub(now).Round(time.Second), l.Expires.Sub(now).Round(time.Second))
}
