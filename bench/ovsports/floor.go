package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"nodenet/ovsdb"
)

// floor is the least a client can do to add a port and know ovs-vswitchd
// applied it: one connection, one monitor of Open_vSwitch.cur_cfg and
// nothing else, one transaction per port, then the wait for cur_cfg. What
// it takes is ovsdb-server's and ovs-vswitchd's time, not a client's.
type floor struct {
	o      options
	conn   *ovsdb.Conn
	root   ovsdb.UUID
	bridge ovsdb.UUID

	mu      sync.Mutex
	cur     int64
	changed chan struct{} // closed and replaced when cur_cfg changes
}

func (f *floor) setup(ctx context.Context) error {
	conn, err := ovsdb.Dial(ctx, f.o.db)
	if err != nil {
		return err
	}
	f.conn = conn
	f.changed = make(chan struct{})
	monitor := map[string]ovsdb.MonitorRequest{ovsdb.TableRoot: {Columns: []string{"cur_cfg"}}}
	if err := conn.Monitor(ctx, ovsdb.VswitchDB, "floor", monitor, f.update); err != nil {
		return err
	}
	if err := f.createRoot(ctx); err != nil {
		return err
	}
	// The bridge with its internal port, as ovs-vsctl add-br makes it.
	res, err := f.commit(ctx,
		ovsdb.Insert(ovsdb.TableInterface, ovsdb.Row{"name": f.o.bridge, "type": "internal"}, "iface"),
		ovsdb.Insert(ovsdb.TablePort, ovsdb.Row{"name": f.o.bridge, "interfaces": ovsdb.NamedUUID("iface")}, "port"),
		ovsdb.Insert(ovsdb.TableBridge, ovsdb.Row{"name": f.o.bridge, "ports": ovsdb.NamedUUID("port"),
			"datapath_type": "netdev"}, "bridge"),
		ovsdb.Mutate(ovsdb.TableRoot, []ovsdb.Mutation{ovsdb.InsertInto("bridges", ovsdb.NamedUUID("bridge"))},
			ovsdb.WhereUUID(f.rootID())...),
	)
	if err != nil {
		return fmt.Errorf("create bridge %s: %w", f.o.bridge, err)
	}
	f.bridge = res[2].UUID
	return nil
}

// createRoot inserts the Open_vSwitch row (what ovs-vsctl init does) and
// learns its UUID from the monitor.
func (f *floor) createRoot(ctx context.Context) error {
	if f.rootID() == "" {
		empty := ovsdb.Wait(ovsdb.TableRoot, 0, nil, []string{"_uuid"}, "==")
		if _, err := f.conn.Transact(ctx, ovsdb.VswitchDB, empty, ovsdb.Insert(ovsdb.TableRoot, ovsdb.Row{}, "root")); err != nil {
			return fmt.Errorf("create the Open_vSwitch row: %w", err)
		}
	}
	for f.rootID() == "" {
		if err := f.waitChange(ctx); err != nil {
			return fmt.Errorf("%w in the monitor: %v", errNoRoot, err)
		}
	}
	return nil
}

// update is the monitor's handler, on the connection's reader goroutine.
func (f *floor) update(u ovsdb.TableUpdates) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, ru := range u[ovsdb.TableRoot] {
		if ru.New == nil {
			continue
		}
		f.root = id
		f.cur, _ = ovsdb.Int(ru.New["cur_cfg"])
	}
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *floor) rootID() ovsdb.UUID {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.root
}

func (f *floor) waitChange(ctx context.Context) error {
	f.mu.Lock()
	ch := f.changed
	f.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// commit runs ops with a next_cfg bump and waits until cur_cfg reaches it.
func (f *floor) commit(ctx context.Context, ops ...ovsdb.Operation) ([]ovsdb.OpResult, error) {
	res, _, err := f.commitTimed(ctx, ops...)
	return res, err
}

func (f *floor) commitTimed(ctx context.Context, ops ...ovsdb.Operation) ([]ovsdb.OpResult, time.Duration, error) {
	where := ovsdb.WhereUUID(f.rootID())
	ops = append(ops,
		ovsdb.Mutate(ovsdb.TableRoot, []ovsdb.Mutation{ovsdb.Add("next_cfg", 1)}, where...),
		ovsdb.Select(ovsdb.TableRoot, []string{"next_cfg"}, where...))
	start := time.Now()
	res, err := f.conn.Transact(ctx, ovsdb.VswitchDB, ops...)
	transact := time.Since(start)
	if err != nil {
		return nil, transact, err
	}
	sel := res[len(res)-1]
	if len(sel.Rows) != 1 {
		return nil, transact, errNoRoot
	}
	cfg, _ := ovsdb.Int(sel.Rows[0]["next_cfg"])
	for {
		f.mu.Lock()
		cur, ch := f.cur, f.changed
		f.mu.Unlock()
		if cur >= cfg {
			return res, transact, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, transact, fmt.Errorf("ovs-vswitchd at cur_cfg %d, waiting for %d: %w", cur, cfg, ctx.Err())
		}
	}
}

func (f *floor) addPort(ctx context.Context, name string, rec *Record) error {
	_, transact, err := f.commitTimed(ctx,
		ovsdb.Insert(ovsdb.TableInterface, ovsdb.Row{"name": name, "type": "internal"}, "iface"),
		ovsdb.Insert(ovsdb.TablePort, ovsdb.Row{"name": name, "interfaces": ovsdb.NamedUUID("iface")}, "port"),
		ovsdb.Mutate(ovsdb.TableBridge, []ovsdb.Mutation{ovsdb.InsertInto("ports", ovsdb.NamedUUID("port"))},
			ovsdb.WhereUUID(f.bridge)...),
	)
	rec.TransactMS = ms(transact)
	return err
}

func (f *floor) close() {
	if f.conn != nil {
		f.conn.Close()
	}
}
