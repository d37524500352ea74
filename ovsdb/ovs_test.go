package ovsdb_test

import (
	"context"
	"errors"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"nodenet/internal/testenv"
	"nodenet/ovsdb"
)

// Integration tests against a real ovsdb-server and ovs-vswitchd in a test
// namespace, cross-checked with ovs-vsctl.

const owner = "test-lan"

type ovsEnv struct {
	ovs    *testenv.OVS
	client *ovsdb.Client
}

func startOVS(t *testing.T) *ovsEnv {
	t.Helper()
	ns := testenv.NewNetns(t)
	o := testenv.StartOVS(t, ns)
	c := &ovsdb.Client{Addr: o.DB, MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}
	c.Start()
	t.Cleanup(c.Close)
	return &ovsEnv{ovs: o, client: c}
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func (e *ovsEnv) ensureRoot(t *testing.T) {
	t.Helper()
	if err := e.client.EnsureRoot(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
}

func (e *ovsEnv) bridge(t *testing.T, name string) ovsdb.Bridge {
	t.Helper()
	b, err := e.client.EnsureBridge(ctxFor(t, 10*time.Second),
		ovsdb.BridgeSpec{Name: name, DatapathType: "netdev", Owner: owner})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (e *ovsEnv) port(t *testing.T, spec ovsdb.PortSpec) ovsdb.Interface {
	t.Helper()
	if spec.Owner == "" {
		spec.Owner = owner
	}
	iface, err := e.client.EnsurePort(ctxFor(t, 10*time.Second), spec)
	if err != nil {
		t.Fatal(err)
	}
	return iface
}

func TestOVSRootRowCreated(t *testing.T) {
	e := startOVS(t)
	if _, err := e.client.Conn(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.client.Cache().Root(); ok {
		t.Fatal("fresh database already has an Open_vSwitch row")
	}
	e.ensureRoot(t)
	e.ensureRoot(t) // idempotent
	rows := e.ovs.Vsctl(t, "--columns=_uuid", "--bare", "list", "Open_vSwitch")
	if n := len(strings.Fields(rows)); n != 1 {
		t.Fatalf("Open_vSwitch rows: %d, want 1", n)
	}
}

func TestOVSBridgePortLifecycle(t *testing.T) {
	e := startOVS(t)
	e.ensureRoot(t)
	b := e.bridge(t, "nnbr0")
	if got := e.ovs.Vsctl(t, "get", "Bridge", "nnbr0", "datapath_type"); got != "netdev" {
		t.Errorf("datapath_type %q", got)
	}
	if got := strings.Trim(e.ovs.Vsctl(t, "get", "Bridge", "nnbr0", "external_ids:nodenet"), `"`); got != owner {
		t.Errorf("external_ids:nodenet = %s", got)
	}
	if iface, _ := e.client.Cache().Interface("nnbr0"); iface.OFPort != 65534 {
		t.Errorf("bridge's internal interface ofport %d, want 65534", iface.OFPort)
	}
	if _, err := e.client.EnsureBridge(ctxFor(t, 10*time.Second),
		ovsdb.BridgeSpec{Name: "nnbr0", DatapathType: "netdev", Owner: owner}); err != nil {
		t.Fatalf("EnsureBridge again: %v", err)
	}

	access := e.port(t, ovsdb.PortSpec{Bridge: "nnbr0", Name: "nnp10", Type: "internal", Tag: 10,
		MTURequest: 1400, ExternalIDs: map[string]string{"member": "web"}})
	if access.OFPort <= 0 {
		t.Errorf("nnp10 ofport %d", access.OFPort)
	}
	for col, want := range map[string]string{"Port nnp10 tag": "10", "Interface nnp10 mtu_request": "1400",
		"Interface nnp10 mtu": "1400", "Port nnp10 external_ids:member": "web"} {
		args := append([]string{"get"}, strings.Fields(col)...)
		if got := strings.Trim(e.ovs.Vsctl(t, args...), `"`); got != want {
			t.Errorf("%s = %q, want %q", col, got, want)
		}
	}
	e.port(t, ovsdb.PortSpec{Bridge: "nnbr0", Name: "nntrunk", Type: "internal", Trunks: []int{10, 20}})
	if got := e.ovs.Vsctl(t, "get", "Port", "nntrunk", "trunks"); got != "[10, 20]" {
		t.Errorf("trunks %q", got)
	}
	// Retagging rewrites only the tag.
	e.port(t, ovsdb.PortSpec{Bridge: "nnbr0", Name: "nnp10", Type: "internal", Tag: 30})
	if got := e.ovs.Vsctl(t, "get", "Port", "nnp10", "tag"); got != "30" {
		t.Errorf("tag after update %q", got)
	}

	vx := map[string]string{"remote_ip": "192.0.2.7", "key": "42", "dst_port": "4789"}
	e.port(t, ovsdb.PortSpec{Bridge: "nnbr0", Name: "nnvx0", Type: "vxlan", Options: vx})
	if got := e.ovs.Vsctl(t, "get", "Interface", "nnvx0", "type"); got != "vxlan" {
		t.Errorf("vxlan type %q", got)
	}
	if got := e.ovs.Vsctl(t, "get", "Interface", "nnvx0", "options"); got != `{dst_port="4789", key="42", remote_ip="192.0.2.7"}` {
		t.Errorf("vxlan options %s", got)
	}

	e.bridge(t, "nnbr1")
	err := e.client.EnsurePatch(ctxFor(t, 10*time.Second),
		ovsdb.PortSpec{Bridge: "nnbr0", Name: "nnpa", Owner: owner},
		ovsdb.PortSpec{Bridge: "nnbr1", Name: "nnpb", Owner: owner})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.ovs.Vsctl(t, "get", "Interface", "nnpb", "options:peer"); strings.Trim(got, `"`) != "nnpa" {
		t.Errorf("patch nnpb peer %s", got)
	}
	if pb, _ := e.client.Cache().Interface("nnpb"); pb.OFPort <= 0 {
		t.Errorf("patch nnpb ofport %d", pb.OFPort)
	}

	wantPorts(t, e, "nnbr0", "nnp10", "nnpa", "nntrunk", "nnvx0")
	if err := e.client.DeletePort(ctxFor(t, 10*time.Second), "nnp10", owner); err != nil {
		t.Fatal(err)
	}
	wantPorts(t, e, "nnbr0", "nnpa", "nntrunk", "nnvx0")
	if err := e.client.DeletePort(ctxFor(t, 10*time.Second), "nnp10", owner); err != nil {
		t.Fatalf("deleting a deleted port: %v", err)
	}
	for _, br := range []string{"nnbr0", "nnbr1"} {
		if err := e.client.DeleteBridge(ctxFor(t, 10*time.Second), br, owner); err != nil {
			t.Fatal(err)
		}
	}
	if got := e.ovs.Vsctl(t, "list-br"); got != "" {
		t.Errorf("bridges left: %q", got)
	}
	if got := e.ovs.Vsctl(t, "--bare", "--columns=name", "list", "Interface"); got != "" {
		t.Errorf("interfaces left: %q", got)
	}
	_ = b
}

func wantPorts(t *testing.T, e *ovsEnv, bridge string, want ...string) {
	t.Helper()
	got := strings.Fields(e.ovs.Vsctl(t, "list-ports", bridge))
	if !slices.Equal(got, want) {
		t.Errorf("ovs-vsctl list-ports %s = %v, want %v", bridge, got, want)
	}
}

func TestOVSCommitErrorSurfaced(t *testing.T) {
	e := startOVS(t)
	e.ensureRoot(t)
	b := e.bridge(t, "nnbr0")
	// Two ports of one name: every operation succeeds, the commit fails
	// on the Port name index; RFC 7047 reports it as an extra result.
	ops := []ovsdb.Operation{
		ovsdb.Insert("Interface", ovsdb.Row{"name": "dup", "type": "internal"}, "i1"),
		ovsdb.Insert("Port", ovsdb.Row{"name": "dup", "interfaces": ovsdb.NamedUUID("i1")}, "p1"),
		ovsdb.Insert("Interface", ovsdb.Row{"name": "dup2", "type": "internal"}, "i2"),
		ovsdb.Insert("Port", ovsdb.Row{"name": "dup", "interfaces": ovsdb.NamedUUID("i2")}, "p2"),
		ovsdb.Mutate("Bridge", []ovsdb.Mutation{ovsdb.InsertInto("ports",
			ovsdb.SetOf(ovsdb.NamedUUID("p1"), ovsdb.NamedUUID("p2")))}, ovsdb.Eq("_uuid", b.UUID)),
	}
	_, err := e.client.Transact(ctxFor(t, 10*time.Second), ops...)
	var te *ovsdb.TransactError
	if !errors.As(err, &te) || te.Index != -1 || te.Err != "constraint violation" {
		t.Fatalf("got %v, want a commit-time constraint violation", err)
	}
	if !strings.Contains(te.Details, "dup") {
		t.Errorf("details do not name the row: %q", te.Details)
	}
	// An operation error names the operation.
	_, err = e.client.Transact(ctxFor(t, 10*time.Second),
		ovsdb.Comment("nodenet test"),
		ovsdb.Update("Bridge", ovsdb.Row{"no_such_column": 1}))
	if !errors.As(err, &te) || te.Index != 1 || te.Op != "update" || te.Table != "Bridge" {
		t.Fatalf("got %v, want operation 1 (update Bridge) to fail", err)
	}
	wantPorts(t, e, "nnbr0")
}

func TestOVSInterfaceErrorSurfaced(t *testing.T) {
	e := startOVS(t)
	e.ensureRoot(t)
	e.bridge(t, "nnbr0")
	_, err := e.client.EnsurePort(ctxFor(t, 10*time.Second),
		ovsdb.PortSpec{Bridge: "nnbr0", Name: "nnmissing0", Owner: owner})
	if err == nil || !strings.Contains(err.Error(), "could not open network device nnmissing0") {
		t.Fatalf("got %v, want ovs-vswitchd's error for a device that does not exist", err)
	}
	// ovs-vsctl leaves such a port behind and exits 0; nodenet removes it.
	wantPorts(t, e, "nnbr0")
	out, verr := e.ovs.VsctlErr("add-port", "nnbr0", "nnmissing1")
	if verr != nil {
		t.Fatalf("ovs-vsctl add-port of a missing device failed (%v); the cross-check assumes exit 0", verr)
	}
	t.Logf("ovs-vsctl add-port nnmissing1: exit 0, output %q", out)
}

func TestOVSForeignObjectsUntouched(t *testing.T) {
	e := startOVS(t)
	e.ovs.Init(t)
	e.ovs.Vsctl(t, "add-br", "foreign", "--", "set", "Bridge", "foreign", "datapath_type=netdev")
	e.ovs.Vsctl(t, "add-port", "foreign", "fport", "--", "set", "Interface", "fport", "type=internal")
	ctx := ctxFor(t, 10*time.Second)
	if _, err := e.client.Conn(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.client.Cache().WaitFor(ctx, func(c *ovsdb.Cache) bool { _, ok := c.Port("fport"); return ok }); err != nil {
		t.Fatal(err)
	}
	_, err := e.client.EnsureBridge(ctx, ovsdb.BridgeSpec{Name: "foreign", DatapathType: "system", Owner: owner})
	if !errors.Is(err, ovsdb.ErrNotOwned) {
		t.Errorf("EnsureBridge on a foreign bridge: %v, want ErrNotOwned", err)
	}
	if err := e.client.DeleteBridge(ctx, "foreign", owner); !errors.Is(err, ovsdb.ErrNotOwned) {
		t.Errorf("DeleteBridge on a foreign bridge: %v, want ErrNotOwned", err)
	}
	if err := e.client.DeletePort(ctx, "fport", owner); !errors.Is(err, ovsdb.ErrNotOwned) {
		t.Errorf("DeletePort on a foreign port: %v, want ErrNotOwned", err)
	}
	_, err = e.client.EnsurePort(ctx, ovsdb.PortSpec{Bridge: "foreign", Name: "fport", Type: "internal", Owner: owner})
	if !errors.Is(err, ovsdb.ErrNotOwned) {
		t.Errorf("EnsurePort over a foreign port: %v, want ErrNotOwned", err)
	}
	// Another nodenet owner's bridge is not ours either.
	e.client.EnsureBridge(ctx, ovsdb.BridgeSpec{Name: "other", DatapathType: "netdev", Owner: "lan-b"})
	if err := e.client.DeleteBridge(ctx, "other", owner); !errors.Is(err, ovsdb.ErrNotOwned) {
		t.Errorf("DeleteBridge of another owner's bridge: %v", err)
	}
	if got := e.ovs.Vsctl(t, "get", "Bridge", "foreign", "datapath_type"); got != "netdev" {
		t.Errorf("foreign bridge changed: datapath_type %s", got)
	}
	wantPorts(t, e, "foreign", "fport")
	if got := e.client.OwnedBridges(""); len(got) != 1 || got[0].Name != "other" {
		t.Errorf("OwnedBridges: %v", got)
	}
}

func TestOVSReconnectRebuildsCache(t *testing.T) {
	e := startOVS(t)
	e.client.MaxBackoff = 200 * time.Millisecond
	e.ensureRoot(t)
	e.bridge(t, "nnbr0")
	e.port(t, ovsdb.PortSpec{Bridge: "nnbr0", Name: "nnp1", Type: "internal"})

	e.ovs.KillDB()
	// While the server is away, calls fail within their context with a
	// clear error; nothing hangs.
	short, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	testenv.Eventually(t, 5*time.Second, "client notices the server is gone", func() error {
		if e.client.Status().Connected {
			return errors.New("client still connected")
		}
		return nil
	})
	_, err := e.client.EnsurePort(short, ovsdb.PortSpec{Bridge: "nnbr0", Name: "nnp2", Type: "internal", Owner: owner})
	if !errors.Is(err, ovsdb.ErrDisconnected) {
		t.Fatalf("EnsurePort during the outage: %v, want ErrDisconnected", err)
	}

	// Changes made while the client was away must show after it is back.
	e.client.MinBackoff = time.Second
	e.ovs.StartDB(t)
	e.ovs.Vsctl(t, "add-br", "outage", "--", "set", "Bridge", "outage", "datapath_type=netdev")
	e.ovs.Vsctl(t, "del-port", "nnbr0", "nnp1")
	ctx := ctxFor(t, 15*time.Second)
	if _, err := e.client.Conn(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.client.Cache().Bridge("outage"); !ok {
		t.Error("cache lacks the bridge added during the outage")
	}
	if _, ok := e.client.Cache().Port("nnp1"); ok {
		t.Error("cache still has the port deleted during the outage")
	}
	cacheEqualsServer(t, e)
	e.port(t, ovsdb.PortSpec{Bridge: "nnbr0", Name: "nnp2", Type: "internal"})
	wantPorts(t, e, "nnbr0", "nnp2")
	if s := e.client.Status(); s.Connects < 2 {
		t.Errorf("status after reconnect: %+v", s)
	}
}

// cacheEqualsServer compares the cache's names with a fresh read.
func cacheEqualsServer(t *testing.T, e *ovsEnv) {
	t.Helper()
	for _, table := range []string{"Bridge", "Port", "Interface"} {
		server := strings.Fields(e.ovs.Vsctl(t, "--bare", "--columns=name", "list", table))
		var cached []string
		for _, r := range e.client.Cache().Rows(table) {
			cached = append(cached, ovsdb.String(r["name"]))
		}
		sort.Strings(server)
		sort.Strings(cached)
		if !slices.Equal(server, cached) {
			t.Errorf("%s: cache %v, server %v", table, cached, server)
		}
	}
}

func TestOVSConnMethods(t *testing.T) {
	e := startOVS(t)
	ctx := ctxFor(t, 10*time.Second)
	conn, err := ovsdb.Dial(ctx, e.ovs.DB)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	dbs, err := conn.ListDBs(ctx)
	if err != nil || !slices.Contains(dbs, "Open_vSwitch") {
		t.Fatalf("list_dbs: %v %v", dbs, err)
	}
	schema, err := conn.GetSchema(ctx, "Open_vSwitch")
	if err != nil || schema.Tables["Bridge"].Columns["datapath_type"] == nil {
		t.Fatalf("get_schema: %v", err)
	}
	if _, err := conn.GetSchema(ctx, "nope"); err == nil || !strings.Contains(err.Error(), "unknown database") {
		t.Errorf("get_schema of an unknown db: %v", err)
	}
	if err := conn.Echo(ctx, "ping"); err != nil {
		t.Fatal(err)
	}
	if err := conn.Lock(ctx, "nodenet_test"); err != nil {
		t.Fatal(err)
	}
	other, err := ovsdb.Dial(ctx, e.ovs.DB)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if err := other.Lock(short, "nodenet_test"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("second Lock while held: %v, want deadline", err)
	}
	if err := other.Steal(ctx, "nodenet_test"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-conn.LockLost("nodenet_test"):
	case <-ctx.Done():
		t.Fatal("no stolen notification")
	}
	if _, err := conn.Transact(ctx, "Open_vSwitch", ovsdb.Assert("nodenet_test")); err == nil {
		t.Error("assert of a stolen lock succeeded")
	}
	if _, err := other.Transact(ctx, "Open_vSwitch", ovsdb.Assert("nodenet_test")); err != nil {
		t.Errorf("assert by the thief: %v", err)
	}
	// A monitor sees an insert, then nothing after monitor_cancel.
	updates := make(chan ovsdb.TableUpdates, 10)
	reqs := map[string]ovsdb.MonitorRequest{"Open_vSwitch": {Columns: []string{"next_cfg"}}}
	if err := conn.Monitor(ctx, "Open_vSwitch", "m1", reqs, func(u ovsdb.TableUpdates) { updates <- u }); err != nil {
		t.Fatal(err)
	}
	if u := <-updates; len(u["Open_vSwitch"]) != 0 {
		t.Errorf("initial contents of an empty table: %v", u)
	}
	if _, err := conn.Transact(ctx, "Open_vSwitch", ovsdb.Insert("Open_vSwitch", ovsdb.Row{}, "")); err != nil {
		t.Fatal(err)
	}
	select {
	case u := <-updates:
		if len(u["Open_vSwitch"]) != 1 {
			t.Errorf("update: %v", u)
		}
	case <-ctx.Done():
		t.Fatal("no update")
	}
	if err := conn.MonitorCancel(ctx, "m1"); err != nil {
		t.Fatal(err)
	}
}
