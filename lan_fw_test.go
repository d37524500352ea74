package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"nodenet/internal/testenv"
	"nodenet/lan"
)

// fwNode is a node with an uplink to an "isp" namespace that plays the
// internet: up0 10.99.0.2/24 (static, ip=), isp0 10.99.0.1/24 serving HTTP
// with a CGI that prints the client's address as the server sees it.
type fwNode struct {
	*lanNode
	isp *testenv.Netns
}

const (
	fwUplinkIP = "10.99.0.2"
	fwISPIP    = "10.99.0.1"
)

func startFWNode(t *testing.T) *fwNode {
	t.Helper()
	testenv.Require(t, "unshare", "ping", "busybox", "curl", "nft", "conntrack", "dig", "dnsmasq")
	ns, isp := testenv.NewNetns(t), testenv.NewNetns(t)
	testenv.Veth(t, ns, "up0", isp, "isp0")
	testenv.AddAddr(t, isp, "isp0", fwISPIP+"/24")
	o := testenv.StartOVS(t, ns)
	d := testenv.StartDaemon(t, ns, testenv.DaemonOptions{OVS: o,
		Cmdline: "nodenet.uplinks=up0 ip=" + fwUplinkIP + "::" + fwISPIP + ":255.255.255.0::up0:none"})
	n := &fwNode{lanNode: &lanNode{ns: ns, ovs: o, d: d, c: newClient(d)}, isp: isp}
	n.waitLANs(t)
	startHTTP(t, isp)
	return n
}

// startHTTP serves /cgi-bin/ip in ns on port 80: the body is the client's
// address as ns sees it.
func startHTTP(t *testing.T, ns *testenv.Netns) {
	t.Helper()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "cgi-bin"), 0o755)
	cgi := "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n%s\\n' \"$REMOTE_ADDR\"\n"
	if err := os.WriteFile(filepath.Join(dir, "cgi-bin", "ip"), []byte(cgi), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := ns.Command("busybox", "httpd", "-f", "-p", "80", "-h", dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
}

// startDNS serves x.test A 192.0.2.53 in ns on UDP port 53 (a dnsmasq).
func startDNS(t *testing.T, ns *testenv.Netns) {
	t.Helper()
	cmd := ns.Command("dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
		"--port=53", "--address=/x.test/192.0.2.53", "--log-facility=-")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
}

// seenAs fetches http://addr/cgi-bin/ip from ns: the address the server
// saw the request come from ("" and the error when it failed).
func seenAs(ns *testenv.Netns, addr string) (string, error) {
	out, err := ns.Output("curl", "-sf", "-m", "2", "http://"+addr+"/cgi-bin/ip")
	// busybox httpd listens on a dual-stack socket: "[::ffff:10.99.0.1]".
	seen := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(out), "[::ffff:"), "]")
	return seen, err
}

func wantSeenAs(t *testing.T, what string, ns *testenv.Netns, addr, want string) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, what, func() error {
		got, err := seenAs(ns, addr)
		if err != nil || got != want {
			return fmt.Errorf("http://%s from %s: seen as %q (%v), want %q", addr, ns.Name, got, err, want)
		}
		return nil
	})
}

func wantDig(t *testing.T, what string, ns *testenv.Netns, server, port string) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, what, func() error {
		out, _ := ns.Output("dig", "+short", "+time=1", "+tries=1", "-p", port, "@"+server, "x.test", "A")
		if strings.TrimSpace(out) != "192.0.2.53" {
			return fmt.Errorf("dig @%s -p %s from %s: %q", server, port, ns.Name, out)
		}
		return nil
	})
}

func unreachable(t *testing.T, what string, from *testenv.Netns, addr string) {
	t.Helper()
	if out, err := from.Output("ping", "-c", "2", "-W", "1", addr); err == nil {
		t.Errorf("%s: %s reached %s:\n%s", what, from.Name, addr, out)
	}
}

func (n *fwNode) nftTable(t *testing.T) string {
	t.Helper()
	return n.ns.Run(t, "nft", "-a", "list", "table", "inet", "nodenet")
}

// Port forwards (TCP and UDP) from outside, from the node through
// localhost and from a member of the same LAN; masqueraded egress; LANs
// isolated; a conflicting forward refused without a trace; Leave takes the
// forwards and their conntrack entries away.
func TestLANFirewall(t *testing.T) {
	n := startFWNode(t)
	ctx := context.Background()
	n.create(t, "fa", "10.61.0.0/24", "10.61.0.1")
	n.create(t, "fb", "10.62.0.0/24", "10.62.0.1")
	web, client, other := testenv.NewNetns(t), testenv.NewNetns(t), testenv.NewNetns(t)
	mw, err := n.c.Join(ctx, "fa", "web", lan.PortForwards{"8080": 80, "5353/udp": 53}, lan.JoinOptions{Netns: web.Name, Ifname: "eth0"})
	if err != nil {
		t.Fatalf("join with forwards: %v", err)
	}
	if mw.Ports["8080/tcp"] != 80 || mw.Ports["5353/udp"] != 53 || len(mw.Ports) != 2 {
		t.Errorf("member's ports as applied: %v", mw.Ports)
	}
	n.join(t, "fa", "client", client)
	n.join(t, "fb", "other", other)
	startHTTP(t, web)
	startDNS(t, web)

	wantSeenAs(t, "TCP forward from outside", n.isp, fwUplinkIP+":8080", fwISPIP)
	wantSeenAs(t, "TCP forward from the node via localhost", n.ns, "127.0.0.1:8080", "10.61.0.1")
	wantSeenAs(t, "TCP forward from the node to its uplink address", n.ns, fwUplinkIP+":8080", fwUplinkIP)
	wantSeenAs(t, "TCP forward from the same LAN (hairpin)", client, fwUplinkIP+":8080", "10.61.0.1")
	wantDig(t, "UDP forward from outside", n.isp, fwUplinkIP, "5353")
	wantDig(t, "UDP forward from the node via localhost", n.ns, "127.0.0.1", "5353")
	wantDig(t, "UDP forward from the same LAN (hairpin)", client, fwUplinkIP, "5353")
	wantSeenAs(t, "egress masqueraded behind the uplink", client, fwISPIP, fwUplinkIP)

	// Isolation: another LAN's members and gateway are out of reach, in
	// both directions; the own gateway answers.
	ping(t, other, "10.62.0.1")
	unreachable(t, "LAN fb to a member of fa", other, "10.61.0.2")
	unreachable(t, "LAN fb to fa's gateway", other, "10.61.0.1")
	unreachable(t, "LAN fa to a member of fb", client, "10.62.0.2")
	if _, err := seenAs(other, "10.61.0.2:80"); err == nil {
		t.Error("LAN fb reached fa's web server directly")
	}
	// The node itself offers LAN members nothing but DHCP, DNS and ping on
	// their own gateway (here: a forward's port on the gateway is DNAT, so
	// it is a forward, not the node's).
	if out, err := client.Output("busybox", "nc", "-w", "2", "10.61.0.1", "22"); err == nil {
		t.Errorf("a member reached TCP 22 of the node: %s", out)
	}

	// A host port already forwarded: conflict, and nothing left of the try.
	before := n.nftTable(t)
	late := testenv.NewNetns(t)
	_, err = n.c.Join(ctx, "fb", "late", lan.PortForwards{"8080/tcp": 80}, lan.JoinOptions{Netns: late.Name, Ifname: "eth0"})
	var le *lan.Error
	if !errors.As(err, &le) || le.Code != lan.Conflict || !strings.Contains(err.Error(), "8080") {
		t.Errorf("conflicting forward: %v, want a conflict naming the port", err)
	}
	if _, err := n.c.Member(ctx, "fb", "late"); err == nil {
		t.Error("the refused member exists")
	}
	if out := late.Run(t, "ip", "-o", "link"); strings.Contains(out, "eth0") {
		t.Errorf("the refused member's eth0 is in its netns:\n%s", out)
	}
	if after := n.nftTable(t); after != before {
		t.Errorf("a refused forward changed the table:\n%s", after)
	}

	// A restart finds the table as the state says: nothing rebuilt (the
	// rule handles stay), the forwards still answer.
	before = n.nftTable(t)
	n.d.Restart(t)
	n.waitLANs(t)
	wantSeenAs(t, "TCP forward after a restart", n.isp, fwUplinkIP+":8080", fwISPIP)
	if after := n.nftTable(t); after != before {
		t.Errorf("the restart changed the table:\n%s\nwas:\n%s", after, before)
	}

	// Leave: forwards and their conntrack entries go.
	wantDig(t, "UDP flow before leave", n.isp, fwUplinkIP, "5353")
	if out := n.ns.Run(t, "conntrack", "-L", "-p", "udp", "--orig-port-dst", "5353"); !strings.Contains(out, "dport=5353") {
		t.Fatalf("no conntrack entry for the UDP forward before leave:\n%s", out)
	}
	if err := n.c.Leave(ctx, "fa", "web"); err != nil {
		t.Fatal(err)
	}
	if out := n.ns.Run(t, "conntrack", "-L", "-p", "udp", "--orig-port-dst", "5353"); strings.Contains(out, "dport=5353") {
		t.Errorf("conntrack entries of the forward left after leave:\n%s", out)
	}
	if table := n.nftTable(t); strings.Contains(table, "8080") || strings.Contains(table, "5353") {
		t.Errorf("forwards left in the table after leave:\n%s", table)
	}
	if got, err := seenAs(n.isp, fwUplinkIP+":8080"); err == nil {
		t.Errorf("the forward answers after leave (seen as %q)", got)
	}
}

// A foreign firewall that drops forwarded traffic (iptables' FORWARD policy
// DROP, as Docker sets it) is named in the log and in nodenet status, and
// its table is left as it was.
func TestLANFirewallForeignDrop(t *testing.T) {
	testenv.Require(t, "iptables", "nft")
	ns := testenv.NewNetns(t)
	ns.Run(t, "iptables", "-P", "FORWARD", "DROP")
	foreign := ns.Run(t, "nft", "-a", "list", "table", "ip", "filter")
	o := testenv.StartOVS(t, ns)
	d := testenv.StartDaemon(t, ns, testenv.DaemonOptions{Cmdline: "ip=off", OVS: o})
	n := &lanNode{ns: ns, ovs: o, d: d, c: newClient(d)}
	n.waitLANs(t)
	n.create(t, "fa", "10.63.0.0/24", "10.63.0.1")
	if !strings.Contains(d.Log(), "table ip filter, chain FORWARD: policy drop") {
		t.Errorf("the log does not name the foreign drop")
	}
	code, out, _ := cli(d.Socket, "status")
	if code != 0 || !strings.Contains(out, "WARNING: table ip filter, chain FORWARD: policy drop") ||
		!strings.Contains(out, "firewall: table inet nodenet: LANs 1, port forwards 0") {
		t.Errorf("nodenet status: exit %d\n%s", code, out)
	}
	if after := ns.Run(t, "nft", "-a", "list", "table", "ip", "filter"); after != foreign {
		t.Errorf("the foreign table changed:\n%s\nwas:\n%s", after, foreign)
	}
}
