package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"nodenet/api"
	"nodenet/internal/testenv"
	"nodenet/lan"
	"nodenet/links"
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
	n := &lanNode{ns: ns, ovs: o, d: d, c: newClient(d)}
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
		for _, p := range []string{"nnb", "nnv", "nnt", "nnp", "nnk", "nnx"} {
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
	// busybox nc may exit 0 on a refused connect: wait for the listener.
	testenv.Eventually(t, 5*time.Second, "listener on 7777", func() error {
		if out, _ := server.Output("ss", "-Hltn", "sport = :7777"); !strings.Contains(out, "7777") {
			return fmt.Errorf("not listening yet")
		}
		return nil
	})
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

// Bad requests, through the CLI and through the API, get the status code
// and sentence that name what was wrong, and change nothing.
func TestLANInvalidInput(t *testing.T) {
	node := startLANNode(t)
	node.create(t, "good", "10.79.0.0/24", "10.79.0.1")
	a := testenv.NewNetns(t)
	node.join(t, "good", "a", a)
	own := fmt.Sprintf("/proc/%d/ns/net", node.d.Pid())
	for _, c := range []struct {
		args []string
		err  string // the daemon's sentence, after "nodenet: "
	}{
		{[]string{"network", "create", "good", "--type", "bridge"}, `network "good" already exists`},
		{[]string{"network", "create", "other", "--type", "bridge", "--cidr", "10.79.0.128/25"}, "overlaps"},
		{[]string{"network", "create", "other", "--type", "bridge", "--cidr", "10.80.0.0/33"}, `cidr "10.80.0.0/33"`},
		{[]string{"network", "create", "other", "--type", "bridge", "--cidr", "10.80.0.0/24", "--gateway", "10.81.0.1"}, `gateway "10.81.0.1": not a host address inside 10.80.0.0/24`},
		{[]string{"network", "create", "other", "--type", "vlan", "--vlan", "10", "--parent", "eth0"}, "vlan.parent eth0: no such interface on the node"},
		{[]string{"join", "nope", "m", "--netns", a.Name}, `network "nope" does not exist`},
		{[]string{"join", "good", "a", "--netns", a.Name}, `network "good" already has a member "a"`},
		{[]string{"join", "good", "b", "--netns", "nnt-no-such-netns"}, `netns "nnt-no-such-netns" does not exist`},
		{[]string{"join", "good", "b", "--netns", own}, "is the node's own network namespace"},
		{[]string{"join", "good", "b", "--netns", "../../etc"}, `netns "../../etc"`},
		{[]string{"join", "good", "b", "--netns", a.Name, "--mac", "01:00:5e:00:00:01"}, "01:00:5e:00:00:01"},
		{[]string{"join", "good", "b", "--netns", a.Name, "--ifname", "much-too-long-ifname"}, "much-too-long-ifname"},
		{[]string{"join", "good", "b", "--netns", a.Name, "-p", "[::1]:53/udp=53"}, "IPv6 host addresses cannot reach an IPv4 member"},
		{[]string{"leave", "good", "nobody"}, `network "good" has no member "nobody"`},
		{[]string{"network", "rm", "good"}, `network "good" still has 1 members`},
		{[]string{"network", "rm", "nope"}, `network "nope" does not exist`},
	} {
		code, out, errOut := cli(node.d.Socket, c.args...)
		if code != 1 || out != "" || !strings.HasPrefix(errOut, "nodenet: ") || !strings.Contains(errOut, c.err) {
			t.Errorf("nodenet %s: exit %d, stdout %q, stderr %q; want exit 1 and %q",
				strings.Join(c.args, " "), code, out, errOut, c.err)
		}
	}
	for _, c := range []struct {
		method, path, body string
		status             int
		code, err          string
	}{
		{"POST", "/v1/networks", `{"name":"x","type":"bridge"`, 400, "invalid", "request body"},
		{"POST", "/v1/networks", `{"name":"x","type":"bridge","colour":"red"}`, 400, "invalid", "colour"},
		{"POST", "/v1/networks", `{"name":"x","type":"hub"}`, 400, "invalid", `network type "hub"`},
		{"POST", "/v1/networks", `{"name":"X y","type":"bridge"}`, 400, "invalid", `network name "X y"`},
		{"POST", "/v1/networks", `{"name":"x","type":"bridge","padding":"` + strings.Repeat("a", 70<<10) + `"}`, 413, "invalid", "larger than 64 KiB"},
		{"POST", "/v1/networks/good/members", `{"nic":"b","netns":"` + a.Name + `","kind":"macvtap"}`, 400, "invalid", `member kind "macvtap"`},
		{"POST", "/v1/networks/good/members", `{"nic":"b","kind":"tap","netns":"` + a.Name + `"}`, 400, "invalid", "a tap member stays on the node"},
		{"POST", "/v1/networks/good/members", `{"nic":"b"}`, 400, "invalid", "needs a netns"},
		{"POST", "/v1/networks/good/members", `{"nic":"b","netns":"` + a.Name + `","ports":{"80/sctp":80}}`, 400, "invalid", `protocol "sctp"`},
		{"POST", "/v1/networks/good/members", `{"nic":"b","netns":"` + a.Name + `","ports":{"80":0}}`, 400, "invalid", "member port 0"},
		{"POST", "/v1/networks/good/members", `{"nic":"../b","netns":"` + a.Name + `"}`, 400, "invalid", `"../b"`},
		{"DELETE", "/v1/networks/good/members/a%2Fb", "", 400, "invalid", `"a/b"`},
		{"GET", "/v1/networks/nope", "", 404, "not_found", `network "nope" does not exist`},
		{"PUT", "/v1/networks/good", "", 405, "", ""},
	} {
		status, body, err := node.d.DoRaw(c.method, c.path, c.body)
		if err != nil {
			t.Fatal(err)
		}
		var e api.Error
		json.Unmarshal(body, &e)
		if status != c.status || e.Code != c.code && c.code != "" || !strings.Contains(e.Message, c.err) {
			t.Errorf("%s %s %.60s: %d %s; want %d %s with %q", c.method, c.path, c.body, status, body, c.status, c.code, c.err)
		}
	}
	// Nothing changed: one network, one member, one port.
	infos, err := node.c.List(context.Background())
	if err != nil || len(infos) != 1 || len(infos[0].Members) != 1 {
		t.Errorf("after the bad requests: %+v, %v", infos, err)
	}
	if ports := node.vsctl(t, "list-ports", node.vsctl(t, "list-br")); len(strings.Fields(ports)) != 1 {
		t.Errorf("OVS ports after the bad requests: %q", ports)
	}
}

// A tap member (for a VM): the device is on the LAN, and a frame the VM
// sends through it reaches the gateway.
func TestBridgeLANTapMember(t *testing.T) {
	node := startLANNode(t)
	node.create(t, "vms", "10.82.0.0/24", "10.82.0.1")
	m, err := node.c.Join(context.Background(), "vms", "vm1", nil, lan.JoinOptions{Kind: "tap"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Kind != "tap" || m.IP != "10.82.0.2" || !strings.HasPrefix(m.HostIfname, "nnt") {
		t.Errorf("tap member: %+v", m)
	}
	tap := attachTap(t, node.ns, m.HostIfname)
	mac, _ := net.ParseMAC(m.MAC)
	gwMAC := arpThroughTap(t, tap, mac, netip.MustParseAddr(m.IP), netip.MustParseAddr("10.82.0.1"))
	if out := node.ns.Run(t, "ip", "link", "show", node.vsctl(t, "list-br")); !strings.Contains(out, gwMAC.String()) {
		t.Errorf("ARP answer %s is not the gateway port's MAC: %s", gwMAC, out)
	}
	tap.Close()
	if err := node.c.Leave(context.Background(), "vms", "vm1"); err != nil {
		t.Fatal(err)
	}
	if err := node.c.Destroy(context.Background(), "vms"); err != nil {
		t.Fatal(err)
	}
	node.noLeftovers(t)
}

// 50 joins at once on one LAN, while another LAN is made and used beside
// it: all succeed with distinct addresses and every member works.
func TestLANParallelJoins(t *testing.T) {
	node := startLANNode(t)
	node.create(t, "many", "10.83.0.0/24", "10.83.0.1")
	const members = 50
	nss := make([]*testenv.Netns, members)
	for i := range nss {
		nss[i] = testenv.NewNetns(t)
	}
	var wg sync.WaitGroup
	got := make([]lan.Member, members)
	errs := make([]error, members)
	for i := range members {
		wg.Go(func() {
			got[i], errs[i] = node.c.Join(context.Background(), "many", fmt.Sprintf("m%d", i), nil,
				lan.JoinOptions{Netns: nss[i].Name, Ifname: "eth0"})
		})
	}
	other := testenv.NewNetns(t)
	wg.Go(func() {
		errs := []error{node.c.Create(context.Background(), "beside", lan.Bridge,
			lan.Settings{Network: lan.IPSettings{CIDR: "10.84.0.0/24", Gateway: "10.84.0.1"}})}
		_, err := node.c.Join(context.Background(), "beside", "o", nil, lan.JoinOptions{Netns: other.Name})
		if err := errors.Join(append(errs, err)...); err != nil {
			t.Errorf("the other LAN: %v", err)
		}
	})
	wg.Wait()
	ips := map[string]bool{}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("join m%d: %v", i, err)
		}
		if ips[got[i].IP] {
			t.Errorf("address %s given twice", got[i].IP)
		}
		ips[got[i].IP] = true
	}
	for i, ns := range nss {
		ping(t, ns, "10.83.0.1")
		if i > 0 {
			ping(t, ns, got[i-1].IP)
		}
	}
	for i := range members {
		wg.Go(func() { errs[i] = node.c.Leave(context.Background(), "many", fmt.Sprintf("m%d", i)) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if err := node.c.Destroy(context.Background(), "many"); err != nil {
		t.Fatal(err)
	}
	if ports := node.vsctl(t, "list-ports", links.Name("nnb", "beside")); ports == "" {
		t.Errorf("the other LAN lost its member's port")
	}
}

// What the state holds and OVS or the kernel lost while the daemon was
// down is made again at start; what nodenet does not own is left alone.
func TestLANReconcileAtStart(t *testing.T) {
	node := startLANNode(t)
	node.create(t, "keep", "10.85.0.0/24", "10.85.0.1")
	a, b := testenv.NewNetns(t), testenv.NewNetns(t)
	ma := node.join(t, "keep", "a", a)
	mb := node.join(t, "keep", "b", b)
	node.vsctl(t, "add-br", "foreign", "--", "set", "Bridge", "foreign", "datapath_type=netdev")
	if err := node.d.Stop(); err != nil {
		t.Fatal(err)
	}
	// The bridge (with its gateway port and member ports) and member a's
	// link vanish behind nodenet's back.
	node.vsctl(t, "del-br", links.Name("nnb", "keep"))
	node.ns.Run(t, "ip", "link", "del", ma.HostIfname)
	node.d.Restart(t)
	node.waitLANs(t)
	ping(t, a, mb.IP)
	ping(t, b, ma.IP)
	ping(t, a, "10.85.0.1")
	if out := a.Run(t, "ip", "-o", "addr", "show", "eth0"); !strings.Contains(out, ma.IP+"/24") {
		t.Errorf("member a not remade with its address: %s", out)
	}
	if out := a.Run(t, "ip", "link", "show", "eth0"); !strings.Contains(out, ma.MAC) {
		t.Errorf("member a not remade with its MAC %s: %s", ma.MAC, out)
	}
	if brs := strings.Fields(node.vsctl(t, "list-br")); !slices.Contains(brs, "foreign") {
		t.Errorf("foreign bridge removed: bridges %v", brs)
	}
}
