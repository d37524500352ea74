package main

import (
	"context"
	"fmt"
	"sync"

	"nodenet/ovsdb"
)

// standin plays ovs-vswitchd's part in the database and nothing else: when
// next_cfg moves past cur_cfg it gives every interface without an ofport
// one and sets cur_cfg = next_cfg, in one transaction. Against it the
// clients' times are their own and ovsdb-server's, with no datapath work.
type standin struct {
	conn *ovsdb.Conn

	mu       sync.Mutex
	root     ovsdb.UUID
	next     int64
	cur      int64
	noOFPort map[ovsdb.UUID]bool
	wake     chan struct{} // buffered(1): something to do
}

func runStandin(ctx context.Context, db string) error {
	s := &standin{noOFPort: map[ovsdb.UUID]bool{}, wake: make(chan struct{}, 1)}
	conn, err := ovsdb.Dial(ctx, db)
	if err != nil {
		return err
	}
	defer conn.Close()
	s.conn = conn
	mon := map[string]ovsdb.MonitorRequest{
		ovsdb.TableRoot:      {Columns: []string{"next_cfg", "cur_cfg"}},
		ovsdb.TableInterface: {Columns: []string{"ofport"}},
	}
	if err := conn.Monitor(ctx, ovsdb.VswitchDB, "standin", mon, s.update); err != nil {
		return err
	}
	fmt.Println("standin: serving", db)
	ofport := int64(0)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-conn.Done():
			return conn.Err()
		case <-s.wake:
		}
		s.mu.Lock()
		root, next, cur := s.root, s.next, s.cur
		var ifaces []ovsdb.UUID
		for id := range s.noOFPort {
			ifaces = append(ifaces, id)
		}
		s.mu.Unlock()
		if root == "" || next <= cur {
			continue
		}
		var ops []ovsdb.Operation
		for _, id := range ifaces {
			ofport++
			ops = append(ops, ovsdb.Update(ovsdb.TableInterface, ovsdb.Row{"ofport": ofport}, ovsdb.WhereUUID(id)...))
		}
		ops = append(ops, ovsdb.Update(ovsdb.TableRoot, ovsdb.Row{"cur_cfg": next}, ovsdb.WhereUUID(root)...))
		if _, err := conn.Transact(ctx, ovsdb.VswitchDB, ops...); err != nil {
			return fmt.Errorf("apply configuration %d: %w", next, err)
		}
	}
}

// update is the monitor's handler, on the connection's reader goroutine.
func (s *standin) update(u ovsdb.TableUpdates) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, ru := range u[ovsdb.TableRoot] {
		if ru.New != nil {
			s.root = id
			s.next, _ = ovsdb.Int(ru.New["next_cfg"])
			s.cur, _ = ovsdb.Int(ru.New["cur_cfg"])
		}
	}
	for id, ru := range u[ovsdb.TableInterface] {
		if _, has := ovsdb.Int(ru.New["ofport"]); ru.New != nil && !has {
			s.noOFPort[id] = true
		} else {
			delete(s.noOFPort, id)
		}
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}
