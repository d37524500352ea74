package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"nodenet/api"
	"nodenet/internal/testenv"
	"nodenet/lan"
)

// lanNode is a node for LAN tests: a namespace with its own OVS
// (userspace datapath) and a nodenet daemon, and a Go client on its socket.
type lanNode struct {
	ns  *testenv.Netns
	ovs *testenv.OVS
	d   *testenv.Daemon
	c   *api.Client
}

func startLANNode(t *testing.T) *lanNode {
	t.Helper()
	testenv.Require(t, "unshare", "ping")
	ns := testenv.NewNetns(t)
	o := testenv.StartOVS(t, ns)
	d := testenv.StartDaemon(t, ns, testenv.DaemonOptions{Cmdline: "ip=off", OVS: o})
	n := &lanNode{ns: ns, ovs: o, d: d, c: api.NewClient(d.Socket)}
	n.waitLANs(t)
	return n
}

// waitLANs waits until the daemon attached its LAN manager (503 before).
func (n *lanNode) waitLANs(t *testing.T) {
	t.Helper()
	testenv.Eventually(t, 20*time.Second, "LAN endpoints ready", func() error {
		code, body, err := n.d.Do(http.MethodGet, "/v1/networks", nil)
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("GET /v1/networks: %d %s", code, body)
		}
		return nil
	})
}

func (n *lanNode) create(t *testing.T, name, cidr, gateway string) {
	t.Helper()
	s := lan.Settings{Network: lan.IPSettings{CIDR: cidr, Gateway: gateway}}
	if err := n.c.Create(context.Background(), name, lan.Bridge, s); err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
}

func (n *lanNode) join(t *testing.T, network, nic string, ns *testenv.Netns) lan.Member {
	t.Helper()
	m, err := n.c.Join(context.Background(), network, nic, nil, lan.JoinOptions{Netns: ns.Name, Ifname: "eth0"})
	if err != nil {
		t.Fatalf("join %s/%s: %v", network, nic, err)
	}
	return m
}

// vsctl runs ovs-vsctl against the node's OVS.
func (n *lanNode) vsctl(t *testing.T, args ...string) string {
	t.Helper()
	return strings.TrimSpace(n.ovs.Vsctl(t, args...))
}

// ping pings addr from ns, a few tries (the first packets wait for ARP).
func ping(t *testing.T, from *testenv.Netns, addr string) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, fmt.Sprintf("ping %s from %s", addr, from.Name), func() error {
		out, err := from.Output("ping", "-c", "1", "-W", "1", addr)
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})
}

// noLeftovers checks the node holds no bridge, port or link of nodenet's.
func (n *lanNode) noLeftovers(t *testing.T) {
	t.Helper()
	if brs := n.vsctl(t, "list-br"); brs != "" {
		t.Errorf("bridges left: %q", brs)
	}
	out := n.ns.Run(t, "ip", "-o", "link", "show")
	for _, line := range strings.Split(out, "\n") {
		for _, p := range []string{"nnb", "nnv", "nnt", "nnp"} {
			if strings.Contains(line, ": "+p) {
				t.Errorf("link left: %s", line)
			}
		}
	}
}

func TestBridgeLANEndToEnd(t *testing.T) {
	node := startLANNode(t)
	ctx := context.Background()
	node.create(t, "lan1", "10.77.0.0/24", "10.77.0.1")
	a, b := testenv.NewNetns(t), testenv.NewNetns(t)
	ma := node.join(t, "lan1", "a", a)
	mb := node.join(t, "lan1", "b", b)
	if ma.IP != "10.77.0.2" || mb.IP != "10.77.0.3" {
		t.Errorf("member addresses %s, %s; want 10.77.0.2, 10.77.0.3", ma.IP, mb.IP)
	}
	// The member's side: its address, the LAN's MAC, a default route.
	if out := a.Run(t, "ip", "-4", "-o", "addr", "show", "eth0"); !strings.Contains(out, "10.77.0.2/24") {
		t.Errorf("member a address: %s", out)
	}
	if out := a.Run(t, "ip", "link", "show", "eth0"); !strings.Contains(out, ma.MAC) {
		t.Errorf("member a MAC %s not on eth0: %s", ma.MAC, out)
	}
	if out := a.Run(t, "ip", "route", "show", "default"); !strings.Contains(out, "via 10.77.0.1") {
		t.Errorf("member a default route: %q", out)
	}
	ping(t, a, mb.IP)
	ping(t, b, ma.IP)
	ping(t, a, "10.77.0.1")
	tcpAcross(t, b, a, mb.IP)

	// The OVS side: one bridge with both ports, marked as nodenet's.
	br := node.vsctl(t, "list-br")
	if ports := node.vsctl(t, "list-ports", br); ports != ma.HostIfname+"\n"+mb.HostIfname &&
		ports != mb.HostIfname+"\n"+ma.HostIfname {
		t.Errorf("ports of %s: %q", br, ports)
	}
	if got := node.vsctl(t, "get", "Bridge", br, "external_ids:nodenet"); got != `"lan:lan1"` {
		t.Errorf("bridge owner: %s", got)
	}

	err := node.c.Destroy(ctx, "lan1")
	if lan.CodeOf(err) != lan.Conflict {
		t.Fatalf("destroy with members: %v, want a conflict", err)
	}
	for _, m := range []string{"a", "b"} {
		if err := node.c.Leave(ctx, "lan1", m); err != nil {
			t.Fatalf("leave %s: %v", m, err)
		}
	}
	if out := a.Run(t, "ip", "-o", "link", "show"); strings.Contains(out, "eth0") {
		t.Errorf("member a still has eth0 after leave: %s", out)
	}
	if err := node.c.Destroy(ctx, "lan1"); err != nil {
		t.Fatalf("destroy: %v", err)
	}
	node.noLeftovers(t)
	if _, err := node.c.Get(ctx, "lan1"); lan.CodeOf(err) != lan.NotFound {
		t.Errorf("get after destroy: %v", err)
	}
}

// tcpAcross opens a TCP connection from client to a listener in server,
// through the LAN, and checks the bytes arrive (checksums on the userspace
// datapath are the classic way this fails while ping works).
func tcpAcross(t *testing.T, server, client *testenv.Netns, addr string) {
	t.Helper()
	testenv.Require(t, "busybox")
	l := server.Command("busybox", "nc", "-l", "-p", "7777")
	var out strings.Builder
	l.Stdout = &out
	if err := l.Start(); err != nil {
		t.Fatal(err)
	}
	defer l.Process.Kill()
	testenv.Eventually(t, 10*time.Second, "TCP across the LAN", func() error {
		c := client.Command("busybox", "sh", "-c", "echo hello-lan | busybox nc -w 2 "+addr+" 7777")
		if b, err := c.CombinedOutput(); err != nil {
			return fmt.Errorf("nc: %v: %s", err, b)
		}
		return nil
	})
	done := make(chan error, 1)
	go func() { done <- l.Wait() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	if !strings.Contains(out.String(), "hello-lan") {
		t.Errorf("listener got %q", out.String())
	}
}
