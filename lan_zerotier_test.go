package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"nodenet/internal/testenv"
	"nodenet/lan"
)

// The ZeroTier network ids the tests use (Earth's, and made-up ones).
const (
	ztEarth   = "8056c2e21c000001"
	ztDenied  = "8056c2e21c0000d1"
	ztGone    = "8056c2e21c0000f0"
	ztForeign = "8056c2e21c0000e1"
)

// startZerotierNode is a LAN node whose zerotier-one is the fake, serving
// in the node's namespace and found through --zerotier-home.
func startZerotierNode(t *testing.T) (*lanNode, *testenv.ZerotierFake) {
	t.Helper()
	testenv.Require(t, "unshare")
	ns := testenv.NewNetns(t)
	fake := testenv.StartZerotierFake(t, ns)
	o := testenv.StartOVS(t, ns)
	d := testenv.StartDaemon(t, ns, testenv.DaemonOptions{Cmdline: "ip=off", OVS: o,
		ExtraArgs: []string{"--zerotier-home", fake.Home}})
	n := &lanNode{ns: ns, ovs: o, d: d, c: newClient(d)}
	n.waitLANs(t)
	return n, fake
}

func ztSettings(id string) lan.Settings {
	return lan.Settings{Zerotier: &lan.ZerotierSettings{NetworkID: id}}
}

// ztLinks lists the node's links named like ZeroTier devices.
func (n *lanNode) ztLinks(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(n.ns.IP(t, "-o", "link", "show"), "\n") {
		if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(f[1], "zt") {
			out = append(out, strings.TrimSuffix(f[1], ":"))
		}
	}
	return out
}

// wantDevice checks ns holds dev, up, with the MAC and address given.
func wantDevice(t *testing.T, what string, ns *testenv.Netns, dev, mac, addr string) {
	t.Helper()
	link := ns.IP(t, "-o", "link", "show", "dev", dev)
	addrs := ns.IP(t, "-o", "addr", "show", "dev", dev)
	// ",UP", not "<...,UP>": the fake's tap has no carrier (no process holds it).
	if !strings.Contains(link, ",UP") || !strings.Contains(link, mac) || !strings.Contains(addrs, addr) {
		t.Errorf("%s: %s in %s is\n%s%s want up, %s, %s", what, dev, ns, link, addrs, mac, addr)
	}
}

// fakeRequest sends the fake a request as another client of the service
// would (zerotier-cli join or leave).
func fakeRequest(f *testenv.ZerotierFake, method, id string) {
	req := httptest.NewRequest(method, "/network/"+id, strings.NewReader("{}"))
	req.Header.Set("X-ZT1-Auth", f.Token)
	f.ServeHTTP(httptest.NewRecorder(), req)
}

func countRequests(f *testenv.ZerotierFake, req string) int {
	n := 0
	for _, r := range f.Requests() {
		if r == req {
			n++
		}
	}
	return n
}

func TestZerotierLAN(t *testing.T) {
	node, fake := startZerotierNode(t)
	ctx := context.Background()
	fake.SetAddresses(ztEarth, "10.147.17.6/24")
	dev, mac := testenv.ZerotierDeviceName(ztEarth), testenv.ZerotierMAC(ztEarth)

	// Create joins and returns once the device is there, configured.
	if err := node.c.Create(ctx, "zt1", lan.Zerotier, ztSettings(ztEarth)); err != nil {
		t.Fatalf("create: %v", err)
	}
	if !fake.Joined(ztEarth) || countRequests(fake, "POST /network/"+ztEarth) != 1 {
		t.Errorf("the service did not see one join: %q", fake.Requests())
	}
	wantDevice(t, "after create", node.ns, dev, mac, "10.147.17.6/24")
	if err := node.c.Create(ctx, "zt2", lan.Zerotier, ztSettings(ztEarth)); lan.CodeOf(err) != lan.Conflict ||
		!strings.Contains(err.Error(), `network "zt1" already joins zerotier network `+ztEarth) {
		t.Errorf("a second network on the same id: %v", err)
	}

	// One member: the device itself, in its netns, as eth0.
	a, b := testenv.NewNetns(t), testenv.NewNetns(t)
	_, err := node.c.Join(ctx, "zt1", "a", lan.PortForwards{"8080": 80}, lan.JoinOptions{Netns: a.Name, Ifname: "eth0"})
	if lan.CodeOf(err) != lan.Unsupported {
		t.Errorf("join with port forwards: %v, want unsupported", err)
	}
	_, err = node.c.Join(ctx, "zt1", "vm", nil, lan.JoinOptions{Kind: "tap"})
	if lan.CodeOf(err) != lan.Unsupported || !strings.Contains(err.Error(), "give a netns, not a tap") {
		t.Errorf("tap member: %v, want unsupported", err)
	}
	m := node.join(t, "zt1", "a", a)
	if m.Kind != "zerotier" || m.HostIfname != dev || m.IP != "10.147.17.6" || m.MAC != mac || m.Ifname != "eth0" {
		t.Errorf("member: %+v", m)
	}
	wantDevice(t, "member a", a, "eth0", mac, "10.147.17.6/24")
	if slices.Contains(node.ztLinks(t), dev) {
		t.Errorf("%s still on the node after the join", dev)
	}
	_, err = node.c.Join(ctx, "zt1", "b", nil, lan.JoinOptions{Netns: b.Name, Ifname: "eth0"})
	if lan.CodeOf(err) != lan.Conflict || !strings.Contains(err.Error(), "at most 1 member") {
		t.Errorf("second member: %v, want a conflict", err)
	}

	// A restart keeps the member as it is, without joining again.
	node.d.Restart(t)
	node.waitLANs(t)
	if got, err := node.c.Member(ctx, "zt1", "a"); err != nil || got.HostIfname != dev {
		t.Errorf("member after restart: %+v, %v", got, err)
	}
	wantDevice(t, "member a after restart", a, "eth0", mac, "10.147.17.6/24")
	if n := countRequests(fake, "POST /network/"+ztEarth); n != 1 {
		t.Errorf("joins after restart: %d, want 1", n)
	}

	// Leave gives the device back under its name, as the service had it.
	if err := node.c.Destroy(ctx, "zt1"); lan.CodeOf(err) != lan.Conflict {
		t.Errorf("destroy with a member: %v, want a conflict", err)
	}
	if err := node.c.Leave(ctx, "zt1", "a"); err != nil {
		t.Fatalf("leave: %v", err)
	}
	wantDevice(t, "after leave", node.ns, dev, mac, "10.147.17.6/24")
	if out := a.IP(t, "-o", "link", "show"); strings.Contains(out, "eth0") {
		t.Errorf("eth0 still in the member's netns after leave:\n%s", out)
	}

	// A device lost with its member (deleted there) is made anew at leave.
	node.join(t, "zt1", "b", b)
	b.IP(t, "link", "del", "dev", "eth0")
	if err := node.c.Leave(ctx, "zt1", "b"); err != nil {
		t.Fatalf("leave of a member whose device is gone: %v", err)
	}
	wantDevice(t, "after leave of a lost device", node.ns, dev, mac, "10.147.17.6/24")
	if n := countRequests(fake, "POST /network/"+ztEarth); n != 2 {
		t.Errorf("joins after the lost device: %d, want 2 (one to get a new device)", n)
	}

	// A service that forgot the network while the daemon was down (its
	// state wiped) is made to join it again at start.
	if err := node.d.Stop(); err != nil {
		t.Fatal(err)
	}
	fakeRequest(fake, http.MethodDelete, ztEarth)
	node.d.Restart(t)
	node.waitLANs(t)
	if !fake.Joined(ztEarth) {
		t.Error("the network was not joined again at start")
	}
	wantDevice(t, "after a restart that joined again", node.ns, dev, mac, "10.147.17.6/24")

	// Destroy leaves the network: the service deletes the device.
	if err := node.c.Destroy(ctx, "zt1"); err != nil {
		t.Fatalf("destroy: %v", err)
	}
	if fake.Joined(ztEarth) || countRequests(fake, "DELETE /network/"+ztEarth) != 3 {
		t.Errorf("the service is still joined or saw no leave: %q", fake.Requests())
	}
	if zt := node.ztLinks(t); len(zt) != 0 {
		t.Errorf("devices left on the node: %v", zt)
	}
	if _, err := node.c.Get(ctx, "zt1"); lan.CodeOf(err) != lan.NotFound {
		t.Errorf("get after destroy: %v", err)
	}
}

// TestZerotierRefused: what the service or the settings refuse fails the
// create with a plain sentence, and leaves no network, device or join.
func TestZerotierRefused(t *testing.T) {
	node, fake := startZerotierNode(t)
	ctx := context.Background()
	nothingLeft := func(what string) {
		t.Helper()
		if infos, err := node.c.List(ctx); err != nil || len(infos) != 0 {
			t.Errorf("%s: networks %v, %v; want none", what, infos, err)
		}
		if zt := node.ztLinks(t); len(zt) != 0 {
			t.Errorf("%s: devices left on the node: %v", what, zt)
		}
		if entries, _ := os.ReadDir(filepath.Join(node.d.StateDir, "lan")); len(entries) != 0 {
			t.Errorf("%s: state left: %v", what, entries)
		}
	}

	for _, id := range []string{"8056c2e21c00001", "8056c2e21c00000x", ""} {
		err := node.c.Create(ctx, "zt1", lan.Zerotier, ztSettings(id))
		if lan.CodeOf(err) != lan.Invalid || !strings.Contains(err.Error(), "zerotier.network_id") {
			t.Errorf("network_id %q: %v, want invalid", id, err)
		}
	}
	if reqs := fake.Requests(); len(reqs) != 0 {
		t.Errorf("invalid settings reached the service: %q", reqs)
	}
	nothingLeft("after invalid ids")

	fake.SetStatus(ztDenied, "ACCESS_DENIED")
	err := node.c.Create(ctx, "zt1", lan.Zerotier, ztSettings(ztDenied))
	if lan.CodeOf(err) != lan.Conflict || !strings.Contains(err.Error(), "ACCESS_DENIED: its controller has not authorized this node") {
		t.Errorf("access denied: %v", err)
	}
	fake.SetStatus(ztGone, "NOT_FOUND")
	err = node.c.Create(ctx, "zt1", lan.Zerotier, ztSettings(ztGone))
	if lan.CodeOf(err) != lan.NotFound || !strings.Contains(err.Error(), "NOT_FOUND: no controller knows this network id") {
		t.Errorf("not found: %v", err)
	}
	if fake.Joined(ztDenied) || fake.Joined(ztGone) || countRequests(fake, "DELETE /network/"+ztDenied) != 1 {
		t.Errorf("refused joins not undone: %q", fake.Requests())
	}
	nothingLeft("after refused joins")

	// A network the service joined outside nodenet is not nodenet's to take.
	fakeRequest(fake, http.MethodPost, ztForeign)
	err = node.c.Create(ctx, "zt1", lan.Zerotier, ztSettings(ztForeign))
	if lan.CodeOf(err) != lan.Conflict || !strings.Contains(err.Error(), "outside nodenet") {
		t.Errorf("a network joined outside nodenet: %v", err)
	}
	if !fake.Joined(ztForeign) {
		t.Error("nodenet left a network it did not join")
	}

	// The service stopped: its port file still names its port, then (a
	// node where it never ran) the default one.
	fake.Stop()
	err = node.c.Create(ctx, "zt1", lan.Zerotier, ztSettings(ztEarth))
	want := fmt.Sprintf("zerotier-one is not running (no answer on 127.0.0.1:%d)", fake.Port)
	if lan.CodeOf(err) != lan.Unsupported || !strings.Contains(err.Error(), want) {
		t.Errorf("service stopped: %v, want %q", err, want)
	}
	if err := os.Remove(filepath.Join(fake.Home, "zerotier-one.port")); err != nil {
		t.Fatal(err)
	}
	err = node.c.Create(ctx, "zt1", lan.Zerotier, ztSettings(ztEarth))
	if want := "zerotier-one is not running (no answer on 127.0.0.1:9993)"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("service never ran: %v, want %q", err, want)
	}
	nothingLeft("with the service stopped")
}
