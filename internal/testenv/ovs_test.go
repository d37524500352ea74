package testenv

import (
	"errors"
	"strings"
	"syscall"
	"testing"
)

func TestOVS(t *testing.T) {
	Require(t, "ovsdb-client")
	ns := NewNetns(t)
	o := StartOVS(t, ns)
	// Not through ovs-vsctl: every ovs-vsctl command inserts a missing root row.
	rows := ns.Run(t, "ovsdb-client", "--timeout=10", "transact", o.DB,
		`["Open_vSwitch",{"op":"select","table":"Open_vSwitch","where":[]}]`)
	if strings.TrimSpace(rows) != `[{"rows":[]}]` {
		t.Errorf("a fresh database has a root row: %s", rows)
	}
	o.Init(t)
	o.Vsctl(t, "add-br", "br0", "--", "set", "bridge", "br0", "datapath_type=netdev")
	if _, err := o.VsctlErr("br-exists", "br0"); err != nil {
		t.Fatalf("br-exists br0: %v", err)
	}
	if _, err := o.VsctlErr("br-exists", "nope0"); err == nil {
		t.Error("br-exists nope0 succeeded")
	}
	// ovs-vswitchd made the bridge's internal port (a tap) in the test's namespace only.
	ns.IP(t, "link", "show", "br0")
	if strings.Contains(rootLinks(t), "br0") {
		t.Fatalf("br0 appeared in the machine's namespace:\n%s", rootLinks(t))
	}

	db, vs := o.Pids()
	if db == 0 || vs == 0 {
		t.Fatalf("Pids = %d, %d", db, vs)
	}
	o.KillDB()
	if now, _ := o.Pids(); now != 0 {
		t.Fatalf("ovsdb-server pid %d after KillDB", now)
	}
	if err := syscall.Kill(db, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("ovsdb-server %d still exists after KillDB: %v", db, err)
	}
	o.StartDB(t)
	if _, err := o.VsctlErr("br-exists", "br0"); err != nil {
		t.Fatalf("br0 lost across a database restart: %v", err)
	}
	// ovs-vswitchd reconnected: a waiting add-br returns only once it applied the change.
	o.Vsctl(t, "add-br", "br1", "--", "set", "bridge", "br1", "datapath_type=netdev")
	ns.IP(t, "link", "show", "br1")
	if !strings.Contains(o.Log(), "ovsdb-server") || !strings.Contains(o.Log(), "vs.log") {
		t.Errorf("Log lacks a daemon's log:\n%s", o.Log())
	}
}

func TestOVSCleanup(t *testing.T) {
	var db, vs int
	var dir string
	t.Run("inner", func(t *testing.T) {
		o := StartOVS(t, NewNetns(t))
		db, vs = o.Pids()
		dir = o.Dir
		o.KillVswitchd()
		o.StartVswitchd(t)
		if _, now := o.Pids(); now == vs || now == 0 {
			t.Errorf("ovs-vswitchd pid %d after restart, was %d", now, vs)
		}
		_, vs = o.Pids()
	})
	for _, pid := range []int{db, vs} {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("OVS daemon %d outlived its test: %v", pid, err)
		}
	}
	if _, err := syscall.Open(dir, syscall.O_RDONLY, 0); err == nil {
		t.Errorf("%s outlived its test", dir)
	}
}
