package ovsdb

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"
)

const (
	br0UUID  = UUID("00000000-0000-0000-0000-0000000000b0")
	br1UUID  = UUID("00000000-0000-0000-0000-0000000000b1")
	p1UUID   = UUID("00000000-0000-0000-0000-0000000000a1")
	rootUUID = UUID("00000000-0000-0000-0000-000000000001")
)

func insert(table string, id UUID, row Row) TableUpdates {
	return TableUpdates{table: {id: {New: row}}}
}

func modify(table string, id UUID, oldRow, newRow Row) TableUpdates {
	return TableUpdates{table: {id: {Old: oldRow, New: newRow}}}
}

func remove(table string, id UUID, old Row) TableUpdates {
	return TableUpdates{table: {id: {Old: old}}}
}

// checkName checks what RowByName finds for name: the row id, or nothing
// when id is "".
func checkName(t *testing.T, c *Cache, table, name string, id UUID) {
	t.Helper()
	got, row, ok := c.RowByName(table, name)
	switch {
	case id == "" && ok:
		t.Errorf("RowByName(%s, %q) = %s, want none", table, name, got)
	case id != "" && (!ok || got != id):
		t.Errorf("RowByName(%s, %q) = %s, %v, want %s", table, name, got, ok, id)
	case ok && String(row["name"]) != name:
		t.Errorf("RowByName(%s, %q) returned a row named %q", table, name, String(row["name"]))
	}
}

func TestCache(t *testing.T) {
	c := NewCache()
	if rows := c.Rows(TableBridge); len(rows) != 0 {
		t.Fatalf("empty cache has rows %v", rows)
	}
	if _, ok := c.Row(TableBridge, br0UUID); ok {
		t.Fatal("empty cache has a row")
	}
	checkName(t, c, TableBridge, "br0", "")

	c.reset(TableUpdates{
		TableBridge: {
			br0UUID: {New: Row{"name": "br0", "ports": Set{}}},
			br1UUID: {New: Row{"name": "br1", "ports": p1UUID}},
		},
		TablePort: {p1UUID: {New: Row{"name": "p1"}}},
	})
	checkName(t, c, TableBridge, "br0", br0UUID)
	checkName(t, c, TableBridge, "br1", br1UUID)
	checkName(t, c, TablePort, "p1", p1UUID)
	checkName(t, c, TablePort, "br0", "") // names are per table
	if got := len(c.Rows(TableBridge)); got != 2 {
		t.Errorf("%d bridges, want 2", got)
	}

	// Modify: "new" replaces the row.
	c.apply(modify(TableBridge, br0UUID, Row{"ports": Set{}}, Row{"name": "br0", "ports": p1UUID}))
	if row, _ := c.Row(TableBridge, br0UUID); !reflect.DeepEqual(row, Row{"name": "br0", "ports": p1UUID}) {
		t.Errorf("after modify: %v", row)
	}
	checkName(t, c, TableBridge, "br0", br0UUID)

	// Rename: the old name goes, the new one points at the row.
	c.apply(modify(TableBridge, br0UUID, Row{"name": "br0"}, Row{"name": "br9", "ports": p1UUID}))
	checkName(t, c, TableBridge, "br0", "")
	checkName(t, c, TableBridge, "br9", br0UUID)

	// Delete.
	c.apply(remove(TableBridge, br1UUID, Row{"name": "br1"}))
	checkName(t, c, TableBridge, "br1", "")
	if _, ok := c.Row(TableBridge, br1UUID); ok {
		t.Error("deleted row still there")
	}

	// Insert into a table not seen before.
	c.apply(insert(TableInterface, p1UUID, Row{"name": "p1", "ofport": int64(1)}))
	checkName(t, c, TableInterface, "p1", p1UUID)

	// A row without a name, or with an empty one, has no index entry.
	c.apply(insert(TableRoot, rootUUID, Row{"next_cfg": int64(1)}))
	c.apply(insert(TablePort, br1UUID, Row{"name": ""}))
	checkName(t, c, TableRoot, "", "")
	checkName(t, c, TablePort, "", "")

	// Reset drops what the new contents do not have.
	c.reset(insert(TablePort, p1UUID, Row{"name": "p1"}))
	checkName(t, c, TableBridge, "br9", "")
	checkName(t, c, TableInterface, "p1", "")
	checkName(t, c, TablePort, "p1", p1UUID)
	if rows := c.Rows(TableBridge); len(rows) != 0 {
		t.Errorf("bridges after reset: %v", rows)
	}
	c.reset(nil)
	checkName(t, c, TablePort, "p1", "")
}

// Two rows swapping names in one update (or one taking the name the other
// gives up) leave the index right, whatever order the map gives them in.
func TestCacheNameSwap(t *testing.T) {
	for range 20 {
		c := NewCache()
		c.reset(TableUpdates{TableBridge: {
			br0UUID: {New: Row{"name": "a"}},
			br1UUID: {New: Row{"name": "b"}},
		}})
		c.apply(TableUpdates{TableBridge: {
			br0UUID: {Old: Row{"name": "a"}, New: Row{"name": "b"}},
			br1UUID: {Old: Row{"name": "b"}, New: Row{"name": "a"}},
		}})
		checkName(t, c, TableBridge, "a", br1UUID)
		checkName(t, c, TableBridge, "b", br0UUID)

		c.apply(TableUpdates{TableBridge: {
			br0UUID: {Old: Row{"name": "b"}},
			br1UUID: {Old: Row{"name": "a"}, New: Row{"name": "b"}},
		}})
		checkName(t, c, TableBridge, "a", "")
		checkName(t, c, TableBridge, "b", br1UUID)
		if t.Failed() {
			return
		}
	}
}

// Rows is a copy: the caller may change it.
func TestCacheRowsCopy(t *testing.T) {
	c := NewCache()
	c.reset(insert(TableBridge, br0UUID, Row{"name": "br0"}))
	rows := c.Rows(TableBridge)
	delete(rows, br0UUID)
	if _, ok := c.Row(TableBridge, br0UUID); !ok {
		t.Error("deleting from Rows' map deleted from the cache")
	}
}

// The typed views read decoded rows, one-element sets as bare atoms.
func TestCacheTypedViews(t *testing.T) {
	c := NewCache()
	decode := func(s string) Row {
		t.Helper()
		var r Row
		if err := r.UnmarshalJSON([]byte(s)); err != nil {
			t.Fatal(err)
		}
		return r
	}
	c.reset(TableUpdates{
		TableRoot: {rootUUID: {New: decode(`{"bridges":["uuid","` + string(br0UUID) + `"],"next_cfg":5,"cur_cfg":4,
			"ovs_version":["set",["3.3.0"]],"datapath_types":["set",["netdev","system"]],"external_ids":["map",[["system-id","x"]]]}`)}},
		TableBridge: {br0UUID: {New: decode(`{"name":"br0","ports":["set",[["uuid","` + string(p1UUID) + `"],["uuid","` + string(br1UUID) + `"]]],
			"datapath_type":"netdev","fail_mode":["set",[]],"external_ids":["map",[["nodenet","lan1"]]],"other_config":["map",[]]}`)}},
		TablePort: {p1UUID: {New: decode(`{"name":"p1","interfaces":["uuid","` + string(p1UUID) + `"],"tag":10,"trunks":["set",[]],
			"vlan_mode":["set",[]],"external_ids":["map",[]]}`)}},
		TableInterface: {p1UUID: {New: decode(`{"name":"p1","type":"","options":["map",[["peer","x"]]],"ofport":-1,
			"error":["set",["could not open network device p1 (No such device)"]],"mtu":["set",[]],"mtu_request":["set",[]],
			"mac_in_use":"aa:bb:cc:dd:ee:ff","link_state":["set",[]],"external_ids":["map",[]]}`)}},
	})

	root, ok := c.Root()
	want := Root{UUID: rootUUID, Bridges: []UUID{br0UUID}, NextCfg: 5, CurCfg: 4, OVSVersion: "3.3.0",
		DatapathTypes: []string{"netdev", "system"}, ExternalIDs: map[string]string{"system-id": "x"}}
	if !ok || !reflect.DeepEqual(root, want) {
		t.Errorf("Root\n got %+v\nwant %+v", root, want)
	}
	b, ok := c.Bridge("br0")
	wantB := Bridge{UUID: br0UUID, Name: "br0", DatapathType: "netdev",
		ExternalIDs: map[string]string{"nodenet": "lan1"}, OtherConfig: map[string]string{}}
	if !ok || !reflect.DeepEqual(b, wantB) {
		t.Errorf("Bridge\n got %+v\nwant %+v", b, wantB)
	}
	p, ok := c.Port("p1")
	wantP := Port{UUID: p1UUID, Name: "p1", Interfaces: []UUID{p1UUID}, Tag: 10, ExternalIDs: map[string]string{}}
	if !ok || !reflect.DeepEqual(p, wantP) {
		t.Errorf("Port\n got %+v\nwant %+v", p, wantP)
	}
	i, ok := c.Interface("p1")
	wantI := Interface{UUID: p1UUID, Name: "p1", Options: map[string]string{"peer": "x"}, OFPort: -1,
		Error: "could not open network device p1 (No such device)", MAC: "aa:bb:cc:dd:ee:ff", ExternalIDs: map[string]string{}}
	if !ok || !reflect.DeepEqual(i, wantI) {
		t.Errorf("Interface\n got %+v\nwant %+v", i, wantI)
	}
	if _, ok := c.Bridge("nope"); ok {
		t.Error("Bridge(nope) found")
	}
}

func TestCacheWaitFor(t *testing.T) {
	c := NewCache()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()

	// A condition that holds returns at once.
	if err := c.WaitFor(ctx, func(*Cache) bool { return true }); err != nil {
		t.Fatal(err)
	}

	hasBridge := func(c *Cache) bool { _, ok := c.Bridge("br0"); return ok }
	done := async(func() error { return c.WaitFor(ctx, hasBridge) })
	c.apply(insert(TablePort, p1UUID, Row{"name": "p1"})) // a change that does not satisfy it
	select {
	case err := <-done:
		t.Fatalf("WaitFor returned %v before its condition held", err)
	default:
	}
	c.apply(insert(TableBridge, br0UUID, Row{"name": "br0"}))
	if err := wait(t, done, "WaitFor"); err != nil {
		t.Fatal(err)
	}

	// reset wakes waiters too.
	done = async(func() error {
		return c.WaitFor(ctx, func(c *Cache) bool { _, ok := c.Port("p1"); return !ok })
	})
	c.reset(nil)
	if err := wait(t, done, "WaitFor"); err != nil {
		t.Fatal(err)
	}

	// The context ends the wait.
	cctx, ccancel := context.WithCancel(ctx)
	done = async(func() error { return c.WaitFor(cctx, func(*Cache) bool { return false }) })
	ccancel()
	if err := wait(t, done, "WaitFor"); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitFor error %v, want context.Canceled", err)
	}
	dctx, dcancel := context.WithTimeout(ctx, time.Millisecond)
	defer dcancel()
	if err := c.WaitFor(dctx, func(*Cache) bool { return false }); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitFor error %v, want context.DeadlineExceeded", err)
	}
}

// Many waiters and a stream of changes: every waiter sees its condition.
func TestCacheWaitForConcurrent(t *testing.T) {
	c := NewCache()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	const n = 20
	var waiters []<-chan error
	for i := range n {
		waiters = append(waiters, async(func() error {
			return c.WaitFor(ctx, func(c *Cache) bool {
				r, ok := c.Row(TableRoot, rootUUID)
				cfg, _ := Int(r["cur_cfg"])
				return ok && cfg >= int64(i)
			})
		}))
	}
	for i := range n {
		c.apply(insert(TableRoot, rootUUID, Row{"cur_cfg": int64(i)}))
	}
	for _, w := range waiters {
		if err := wait(t, w, "WaitFor"); err != nil {
			t.Error(err)
		}
	}
}
