package ovsdb

import (
	"context"
	"encoding/json"
	"fmt"
)

// ListDBs returns the databases the server holds.
func (c *Conn) ListDBs(ctx context.Context) ([]string, error) {
	var dbs []string
	err := c.call(ctx, "list_dbs", []any{}, &dbs)
	return dbs, err
}

// Schema is the part of a database schema nodenet reads.
type Schema struct {
	Name    string                 `json:"name"`
	Version string                 `json:"version"`
	Tables  map[string]TableSchema `json:"tables"`
}

// TableSchema describes one table.
type TableSchema struct {
	Columns map[string]json.RawMessage `json:"columns"`
	IsRoot  bool                       `json:"isRoot"`
	Indexes [][]string                 `json:"indexes"`
}

// GetSchema returns db's schema.
func (c *Conn) GetSchema(ctx context.Context, db string) (*Schema, error) {
	var s Schema
	if err := c.call(ctx, "get_schema", []any{db}, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Echo round-trips params through the server (a liveness check).
func (c *Conn) Echo(ctx context.Context, params ...any) error {
	if params == nil {
		params = []any{}
	}
	return c.call(ctx, "echo", params, nil)
}

// Transact runs ops as one atomic transaction on db. A failed operation or
// commit comes back as a *TransactError saying which and why.
func (c *Conn) Transact(ctx context.Context, db string, ops ...Operation) ([]OpResult, error) {
	params := make([]any, 0, len(ops)+1)
	params = append(params, db)
	for _, op := range ops {
		params = append(params, op)
	}
	var raw []*opResult
	if err := c.call(ctx, "transact", params, &raw); err != nil {
		return nil, err
	}
	return transactResults(ops, raw)
}

// MonitorRequest selects the columns (all when empty) of one table and
// the kinds of change reported (all when Select is nil).
type MonitorRequest struct {
	Columns []string       `json:"columns,omitempty"`
	Select  *MonitorSelect `json:"select,omitempty"`
}

// MonitorSelect chooses which changes a monitor reports.
type MonitorSelect struct {
	Initial bool `json:"initial"`
	Insert  bool `json:"insert"`
	Delete  bool `json:"delete"`
	Modify  bool `json:"modify"`
}

// TableUpdates is table → row UUID → change, as monitor reports it.
type TableUpdates map[string]map[UUID]RowUpdate

// RowUpdate is one row's change: Old is nil for an insert, New for a delete.
// For a modify, Old holds only the columns that changed.
type RowUpdate struct {
	Old Row `json:"old"`
	New Row `json:"new"`
}

// Monitor starts monitor id on db. handler gets the initial contents, then
// every update, one at a time on the connection's reader goroutine, in the
// order the server sent them: it must not block or call the Conn.
func (c *Conn) Monitor(ctx context.Context, db, id string, reqs map[string]MonitorRequest, handler func(TableUpdates)) error {
	c.mu.Lock()
	c.monitors[id] = handler
	c.mu.Unlock()
	var hookErr error // set by the reader before it hands over the reply
	hook := func(resp response) {
		if isError(resp.err) {
			return
		}
		updates, err := decodeUpdates(resp.result)
		if err != nil {
			hookErr = fmt.Errorf("%w: monitor %s: %v", ErrDisconnected, id, err)
			c.shutdown(hookErr)
			return
		}
		handler(updates)
	}
	err := c.callHook(ctx, "monitor", []any{db, id, reqs}, nil, hook)
	if err == nil && hookErr != nil {
		// The handler never got the initial contents.
		err = fmt.Errorf("ovsdb monitor: %w", hookErr)
	}
	if err != nil {
		c.mu.Lock()
		delete(c.monitors, id)
		c.mu.Unlock()
	}
	return err
}

// MonitorCancel stops monitor id.
func (c *Conn) MonitorCancel(ctx context.Context, id string) error {
	err := c.call(ctx, "monitor_cancel", []any{id}, nil)
	c.mu.Lock()
	delete(c.monitors, id)
	c.mu.Unlock()
	return err
}

func (c *Conn) dispatchUpdate(params json.RawMessage) {
	var p []json.RawMessage
	if json.Unmarshal(params, &p) != nil || len(p) != 2 {
		return
	}
	var id string
	if json.Unmarshal(p[0], &id) != nil {
		return
	}
	c.mu.Lock()
	handler := c.monitors[id]
	c.mu.Unlock()
	if handler == nil {
		return
	}
	updates, err := decodeUpdates(p[1])
	if err != nil {
		// A skipped update would leave the monitor's view wrong for good:
		// end the session so that the client re-monitors from scratch.
		c.shutdown(fmt.Errorf("%w: monitor %s: %v", ErrDisconnected, id, err))
		return
	}
	handler(updates)
}

func decodeUpdates(raw json.RawMessage) (TableUpdates, error) {
	var u TableUpdates
	if err := json.Unmarshal(raw, &u); err != nil {
		return nil, fmt.Errorf("table updates: %w", err)
	}
	return u, nil
}

func isError(raw json.RawMessage) bool { return len(raw) > 0 && string(raw) != "null" }
