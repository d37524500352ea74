package lan

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// fakeDriver records calls and can be told to fail.
type fakeDriver struct {
	lim     limits
	fail    error
	created int
	joined  []string
}

func (d *fakeDriver) limits() limits { return d.lim }
func (d *fakeDriver) create(context.Context, *network) error {
	d.created++
	return d.fail
}
func (d *fakeDriver) destroy(context.Context, *network) error { d.created--; return nil }
func (d *fakeDriver) join(_ context.Context, _ *network, m *Member, _ joinPlan) error {
	if d.fail != nil {
		return d.fail
	}
	m.HostIfname = "host-" + m.Name
	d.joined = append(d.joined, m.Name)
	return nil
}
func (d *fakeDriver) leave(context.Context, *network, Member) error { return nil }
func (d *fakeDriver) reconcile(context.Context, *network) error     { return nil }
func (d *fakeDriver) gatewayPort(*network) string                   { return "" }

func newTestManager(t *testing.T, d *fakeDriver) *Manager {
	m := &Manager{StateDir: t.TempDir(), newDriver: func(NetworkType) driver { return d },
		UplinkPrefixes: func() []netip.Prefix { return []netip.Prefix{netip.MustParsePrefix("192.168.1.0/24")} }}
	return m
}

func wantCode(t *testing.T, what string, err error, code Code, sentence string) {
	t.Helper()
	if CodeOf(err) != code || !strings.Contains(err.Error(), sentence) {
		t.Errorf("%s: got %v (code %q), want code %q and %q", what, err, CodeOf(err), code, sentence)
	}
}

func TestCreateValidation(t *testing.T) {
	ctx := context.Background()
	m := newTestManager(t, &fakeDriver{})
	ok := Settings{Network: IPSettings{CIDR: "10.10.0.0/24", Gateway: "10.10.0.1"}}
	if err := m.Create(ctx, "lan1", Bridge, ok); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		s        Settings
		code     Code
		sentence string
	}{
		{"Bad_Name", Settings{}, Invalid, "network name"},
		{"lan2", Settings{Network: IPSettings{CIDR: "10.20.0.0/33"}}, Invalid, "cidr"},
		{"lan2", Settings{Network: IPSettings{CIDR: "fd00::/64"}}, Invalid, "IPv4"},
		{"lan2", Settings{Network: IPSettings{CIDR: "10.20.0.0/24", Gateway: "10.21.0.1"}}, Invalid, "gateway"},
		{"lan2", Settings{Network: IPSettings{CIDR: "10.20.0.0/24", Gateway: "10.20.0.255"}}, Invalid, "gateway"},
		{"lan2", Settings{Network: IPSettings{Gateway: "10.20.0.1"}}, Invalid, "needs a cidr"},
		{"lan2", Settings{Network: IPSettings{CIDR: "10.10.0.128/25"}}, Conflict, "overlaps network \"lan1\""},
		{"lan2", Settings{Network: IPSettings{CIDR: "192.168.0.0/16"}}, Conflict, "uplink"},
		{"lan2", Settings{MTU: 100}, Invalid, "mtu"},
		{"lan1", Settings{}, Conflict, "already exists"},
		{"lan2", Settings{Name: "other"}, Invalid, "differs"},
	}
	for _, c := range cases {
		wantCode(t, c.name+" "+c.s.Network.CIDR, m.Create(ctx, c.name, Bridge, c.s), c.code, c.sentence)
	}
	if infos, _ := m.List(ctx); len(infos) != 1 {
		t.Errorf("networks after refused creates: %d", len(infos))
	}
}

func TestJoinLeaveDestroy(t *testing.T) {
	ctx := context.Background()
	d := &fakeDriver{}
	m := newTestManager(t, d)
	if err := m.Create(ctx, "lan1", Bridge, Settings{Network: IPSettings{CIDR: "10.10.0.0/29", Gateway: "10.10.0.1"}}); err != nil {
		t.Fatal(err)
	}
	tap := JoinOptions{Kind: "tap"}
	var ips []string
	for _, nic := range []string{"a", "b", "c", "d", "e"} {
		mem, err := m.Join(ctx, "lan1", nic, nil, tap)
		if err != nil {
			t.Fatal(err)
		}
		ips = append(ips, mem.IP)
	}
	if got := strings.Join(ips, " "); got != "10.10.0.2 10.10.0.3 10.10.0.4 10.10.0.5 10.10.0.6" {
		t.Errorf("addresses %s", got)
	}
	_, err := m.Join(ctx, "lan1", "f", nil, tap)
	wantCode(t, "join into a full /29", err, Conflict, "no free address")
	_, err = m.Join(ctx, "lan1", "a", nil, tap)
	wantCode(t, "duplicate member", err, Conflict, "already has a member")
	_, err = m.Join(ctx, "nope", "x", nil, tap)
	wantCode(t, "unknown network", err, NotFound, "does not exist")
	_, err = m.Join(ctx, "lan1", "bad/name", nil, tap)
	wantCode(t, "bad nic", err, Invalid, "interface name")
	_, err = m.Join(ctx, "lan1", "x", nil, JoinOptions{Kind: "tap", MAC: "01:00:5e:00:00:01"})
	wantCode(t, "multicast MAC", err, Invalid, "mac")
	_, err = m.Join(ctx, "lan1", "x", nil, JoinOptions{Netns: "/etc/passwd"})
	wantCode(t, "netns outside /run/netns", err, Invalid, "netns")
	_, err = m.Join(ctx, "lan1", "x", nil, JoinOptions{Netns: "nnt-does-not-exist"})
	wantCode(t, "missing netns", err, NotFound, "does not exist")
	_, err = m.Join(ctx, "lan1", "x", nil, JoinOptions{})
	wantCode(t, "veth without netns", err, Invalid, "needs a netns")
	wantCode(t, "destroy with members", m.Destroy(ctx, "lan1"), Conflict, "still has 5 members")

	// State survives a new manager.
	m2 := newTestManager(t, d)
	m2.StateDir = m.StateDir
	if err := m2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	info, err := m2.Get(ctx, "lan1")
	if err != nil || len(info.Members) != 5 || info.Members[0].IP != "10.10.0.2" {
		t.Fatalf("restored: %+v %v", info, err)
	}
	for _, nic := range []string{"a", "b", "c", "d", "e"} {
		if err := m2.Leave(ctx, "lan1", nic); err != nil {
			t.Fatal(err)
		}
	}
	wantCode(t, "leave twice", m2.Leave(ctx, "lan1", "a"), NotFound, "no member")
	if err := m2.Destroy(ctx, "lan1"); err != nil {
		t.Fatal(err)
	}
	if infos, _ := m2.store.load(); len(infos) != 0 {
		t.Errorf("state after destroy: %+v", infos)
	}
}

func TestFailedCreateLeavesNothing(t *testing.T) {
	ctx := context.Background()
	d := &fakeDriver{fail: errors.New("boom")}
	m := newTestManager(t, d)
	if err := m.Create(ctx, "lan1", Bridge, Settings{}); err == nil {
		t.Fatal("create succeeded")
	}
	if _, err := m.Get(ctx, "lan1"); CodeOf(err) != NotFound {
		t.Errorf("network after failed create: %v", err)
	}
	d.fail = nil
	if err := m.Create(ctx, "lan1", Bridge, Settings{}); err != nil {
		t.Errorf("create after a failed one: %v", err)
	}
}

func TestMemberLimitsAndForwards(t *testing.T) {
	ctx := context.Background()
	d := &fakeDriver{lim: limits{maxMembers: 1}}
	m := newTestManager(t, d)
	m.Create(ctx, "pt", PassThrough, Settings{})
	_, err := m.Join(ctx, "pt", "c", PortForwards{"8080": 80}, JoinOptions{Kind: "tap"})
	wantCode(t, "forwards on a type without them", err, Unsupported, "cannot forward")
	if _, err := m.Join(ctx, "pt", "a", nil, JoinOptions{Kind: "tap"}); err != nil {
		t.Fatal(err)
	}
	_, err = m.Join(ctx, "pt", "b", nil, JoinOptions{Kind: "tap"})
	wantCode(t, "second member", err, Conflict, "at most 1")
}
