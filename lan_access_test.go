package main

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"nodenet/internal/testenv"
	"nodenet/lan"
	"nodenet/links"
)

// A LAN member reaches nothing of the node but DHCP, DNS and ping on its
// own gateway. TestLANFirewall knocks on TCP 22 where nothing listens;
// here a real service of the node listens on every address, TCP and UDP
// (a dnsmasq on port 5300), and answers the node itself and the outside
// on the uplink address, while the member gets nothing from it on the
// gateway, on the uplink address or over IPv6; the LAN's own DNS answers
// the member over UDP and TCP.
func TestLANMemberReachesOnlyDHCPAndDNS(t *testing.T) {
	n := startFWNode(t)
	const gw = "10.64.0.1"
	s := lan.Settings{Network: lan.IPSettings{DHCP: true, CIDR: "10.64.0.0/24", Gateway: gw}}
	if err := n.c.Create(context.Background(), "acc", lan.Bridge, s); err != nil {
		t.Fatal(err)
	}
	m := testenv.NewNetns(t)
	mem := n.join(t, "acc", "m", m)
	// A DHCP LAN leaves the member's address to its client; set the one
	// its lease would give.
	m.Run(t, "ip", "addr", "add", mem.IP+"/24", "dev", "eth0")
	m.Run(t, "ip", "route", "add", "default", "via", gw)

	svc := n.ns.Command("dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
		"--port=5300", "--address=/x.test/192.0.2.53", "--log-facility=-")
	if err := svc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Process.Kill(); svc.Wait() })
	wantDig(t, "the node's service from the node", n.ns, "127.0.0.1", "5300")
	wantDig(t, "the node's service from outside, on the uplink address", n.isp, fwUplinkIP, "5300")

	for _, mode := range []string{"+notcp", "+tcp"} {
		testenv.Eventually(t, 10*time.Second, "the LAN's DNS "+mode, func() error {
			out, _ := m.Output("dig", "+time=1", "+tries=1", mode, "@"+gw, "nosuch.acc.internal")
			if !strings.Contains(out, "status: NXDOMAIN") {
				return fmt.Errorf("dig %s @%s from the member: %s", mode, gw, out)
			}
			return nil
		})
	}
	ping(t, m, gw)

	targets := []string{gw, fwUplinkIP}
	// The gateway port's IPv6 link-local address, should it have one.
	br := links.Name("nnb", "acc")
	if ll := regexp.MustCompile(`inet6 (fe80::[0-9a-f:]+)/`).FindStringSubmatch(n.ns.Run(t, "ip", "-6", "addr", "show", "dev", br)); ll != nil {
		targets = append(targets, ll[1]+"%eth0")
	}
	for _, addr := range targets {
		for _, mode := range []string{"+notcp", "+tcp"} {
			out, _ := m.Output("dig", "+time=1", "+tries=1", mode, "-p", "5300", "@"+addr, "x.test")
			if strings.Contains(out, "status:") || strings.Contains(out, "192.0.2.53") {
				t.Errorf("the member reached the node's service on %s port 5300 (%s):\n%s", addr, mode, out)
			}
		}
	}
	unreachable(t, "ping of the uplink address from a member", m, fwUplinkIP)
}
