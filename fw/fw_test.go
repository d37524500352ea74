package fw

import (
	"errors"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"nodenet/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// startIn starts a Firewall in ns with lans and fwds.
func startIn(t *testing.T, ns *testenv.Netns, lans []LAN, fwds []Forward) *Firewall {
	t.Helper()
	fd, err := unix.Open(ns.Path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	f := &Firewall{NetnsFd: fd}
	if err := f.Start(lans, fwds); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func nftNS(t *testing.T) *testenv.Netns {
	t.Helper()
	testenv.Require(t, "nft")
	return testenv.NewNetns(t)
}

var (
	lanA = LAN{Name: "a", Device: "nnbaaaaaaaaaaaa", Gateway: netip.MustParseAddr("10.1.0.1"), NAT: true}
	lanB = LAN{Name: "b", Device: "nnbbbbbbbbbbbbb", Gateway: netip.MustParseAddr("10.2.0.1")}
)

func fwd(t *testing.T, network, member, key string, memberIP string, port uint32) Forward {
	t.Helper()
	f, err := ParseForward(key, port)
	if err != nil {
		t.Fatal(err)
	}
	f.Network, f.Member, f.MemberIP = network, member, netip.MustParseAddr(memberIP)
	return f
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", name+".golden")
	if *update {
		os.MkdirAll("testdata", 0o755)
		os.WriteFile(p, []byte(got), 0o644)
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s:\n%s", name, p, got)
	}
}

// The table nft lists, applied twice (the second time nothing is sent and
// nothing changes), with a foreign table beside it left alone.
func TestTable(t *testing.T) {
	ns := nftNS(t)
	ns.Run(t, "nft", "add table inet foreign; add chain inet foreign guard { type filter hook forward priority 0; policy drop; }; add rule inet foreign guard tcp dport 22 accept")
	foreign := ns.Run(t, "nft", "-a", "list", "table", "inet", "foreign")
	fwds := []Forward{
		fwd(t, "a", "web", "8080", "10.1.0.2", 80),
		fwd(t, "a", "dns", "127.0.0.1:5353/udp", "10.1.0.3", 53),
		fwd(t, "b", "db", "5432/tcp", "10.2.0.2", 5432),
	}
	f := startIn(t, ns, []LAN{lanA, lanB}, fwds)
	if f.batches != 1 {
		t.Errorf("first start sent %d batches, want 1", f.batches)
	}
	listed := ns.Run(t, "nft", "-a", "list", "table", "inet", TableName)
	golden(t, "table", ns.Run(t, "nft", "list", "table", "inet", TableName))

	again := startIn(t, ns, []LAN{lanB, lanA}, []Forward{fwds[2], fwds[0], fwds[1]})
	if again.batches != 0 {
		t.Errorf("the same state applied again sent %d batches", again.batches)
	}
	if after := ns.Run(t, "nft", "-a", "list", "table", "inet", TableName); after != listed {
		t.Errorf("the same state applied again changed the table:\n%s", after)
	}
	// An element removed behind nodenet's back comes back at start.
	ns.Run(t, "nft", "delete element inet nodenet lan_ifs { nnbbbbbbbbbbbbb }")
	startIn(t, ns, []LAN{lanA, lanB}, fwds)
	if after := ns.Run(t, "nft", "-a", "list", "table", "inet", TableName); after != listed {
		t.Errorf("start did not restore the element:\n%s", after)
	}
	if after := ns.Run(t, "nft", "-a", "list", "table", "inet", "foreign"); after != foreign {
		t.Errorf("the foreign table changed:\n%s\nwas:\n%s", after, foreign)
	}
	// Its forward chain drops by default: the status says so.
	st := f.Status()
	if len(st.Warnings) != 1 || !strings.Contains(st.Warnings[0], "table inet foreign, chain guard: policy drop") ||
		st.LANs != 2 || st.Forwards != 3 || !st.Started {
		t.Errorf("status: %+v", st)
	}
}

// A rule changed behind nodenet's back makes start rebuild the table.
func TestTableRebuiltWhenAltered(t *testing.T) {
	ns := nftNS(t)
	startIn(t, ns, []LAN{lanA}, nil)
	want := ns.Run(t, "nft", "list", "table", "inet", TableName)
	ns.Run(t, "nft", "flush chain inet nodenet lan_input")
	f := startIn(t, ns, []LAN{lanA}, nil)
	if f.batches != 1 {
		t.Errorf("start sent %d batches for an altered table, want 1", f.batches)
	}
	if got := ns.Run(t, "nft", "list", "table", "inet", TableName); got != want {
		t.Errorf("rebuilt table:\n%s\nwant:\n%s", got, want)
	}
}

func TestForwardConflicts(t *testing.T) {
	ns := nftNS(t)
	f := startIn(t, ns, []LAN{lanA, lanB}, []Forward{fwd(t, "a", "web", "8080", "10.1.0.2", 80)})
	before := ns.Run(t, "nft", "-a", "list", "table", "inet", TableName)
	for _, tc := range [][]Forward{
		{fwd(t, "b", "x", "8080/tcp", "10.2.0.2", 80)},
		{fwd(t, "b", "x", "10.9.9.9:8080", "10.2.0.2", 80)},
		{fwd(t, "b", "x", "9090", "10.2.0.2", 80), fwd(t, "b", "x", "127.0.0.1:9090/tcp", "10.2.0.2", 81)},
	} {
		if err := f.AddForwards(tc); !errors.Is(err, ErrConflict) {
			t.Errorf("AddForwards(%v): %v, want a conflict", tc, err)
		}
	}
	if after := ns.Run(t, "nft", "-a", "list", "table", "inet", TableName); after != before {
		t.Errorf("a refused forward changed the table:\n%s", after)
	}
	// The same port on UDP, or on one address while no forward holds every
	// address, is fine.
	ok := []Forward{fwd(t, "b", "x", "8080/udp", "10.2.0.2", 80), fwd(t, "b", "x", "10.9.9.9:9090", "10.2.0.2", 81)}
	if err := f.AddForwards(ok); err != nil {
		t.Fatalf("AddForwards: %v", err)
	}
	if err := f.RemoveForwards(ok); err != nil {
		t.Fatalf("RemoveForwards: %v", err)
	}
	if after := ns.Run(t, "nft", "-a", "list", "table", "inet", TableName); after != before {
		t.Errorf("add then remove left the table changed:\n%s", after)
	}
}

func TestParseForward(t *testing.T) {
	for _, tc := range []struct{ key, want, err string }{
		{"8080", "8080/tcp", ""},
		{"53/udp", "53/udp", ""},
		{"127.0.0.1:5353/udp", "127.0.0.1:5353/udp", ""},
		{"[::1]:53/udp", "", "IPv6 host addresses"},
		{"0.0.0.0:80", "", "leave it out"},
		{"224.0.0.1:80", "", "not a unicast address"},
		{"255.255.255.255:80", "", "not a unicast address"},
		{"0", "", "host port"},
		{"70000", "", "host port"},
		{"80/sctp", "", "protocol"},
		{"1.2.3.4:", "", "want"},
	} {
		f, err := ParseForward(tc.key, 80)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrInvalid)):
			t.Errorf("ParseForward(%q): %v, want an error about %q", tc.key, err, tc.err)
		case tc.err == "" && (err != nil || f.Key() != tc.want):
			t.Errorf("ParseForward(%q) = %q, %v; want %q", tc.key, f.Key(), err, tc.want)
		}
	}
	if _, err := ParseForward("80", 0); err == nil {
		t.Error("member port 0 accepted")
	}
}

// Forwards added and removed after a start that found the table as it
// should be (nothing sent then).
func TestForwardsAfterQuietStart(t *testing.T) {
	ns := nftNS(t)
	startIn(t, ns, []LAN{lanA}, nil)
	f := startIn(t, ns, []LAN{lanA}, nil)
	web := fwd(t, "a", "web", "8080", "10.1.0.2", 80)
	if err := f.AddForwards([]Forward{web}); err != nil {
		t.Fatal(err)
	}
	if out := ns.Run(t, "nft", "list", "map", "inet", TableName, mapFwdAny); !strings.Contains(out, "tcp . 8080 : 10.1.0.2 . 80") {
		t.Errorf("forward not in the map:\n%s", out)
	}
	if err := f.RemoveForwards([]Forward{web}); err != nil {
		t.Fatal(err)
	}
	if out := ns.Run(t, "nft", "list", "map", "inet", TableName, mapFwdAny); strings.Contains(out, "8080") {
		t.Errorf("forward still in the map:\n%s", out)
	}
}

// When the firewall cannot start, changes are refused naming the cause: a
// LAN is never made without its isolation.
func TestNotStarted(t *testing.T) {
	f := &Firewall{}
	if err := f.SetLAN(lanA); err == nil || !strings.Contains(err.Error(), "firewall not started") {
		t.Errorf("SetLAN before Start: %v", err)
	}
	fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	f.NetnsFd = fd // not a network namespace
	startErr := f.Start([]LAN{lanA}, nil)
	if startErr == nil {
		f.Close()
		t.Fatal("Start in a file that is not a netns succeeded")
	}
	err = f.AddForwards([]Forward{fwd(t, "a", "web", "8080", "10.1.0.2", 80)})
	if err == nil || !strings.Contains(err.Error(), startErr.Error()) {
		t.Errorf("AddForwards after a failed Start: %v, want it to carry %v", err, startErr)
	}
}
