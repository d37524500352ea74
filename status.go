package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"nodenet/api"
	"nodenet/boot"
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
}

func leaseSummary(l *boot.LeaseTimes) string {
	if l == nil {
		return "-"
	}
	now := time.Now()
	return fmt.Sprintf("from %s, renew in %s, expires in %s", l.Server,
		l.Renew.Sub(now).Round(time.Second), l.Expires.Sub(now).Round(time.Second))
}
