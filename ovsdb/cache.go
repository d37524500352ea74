package ovsdb

import (
	"context"
	"fmt"
	"sync"
)

// Cache is an in-memory copy of monitored tables, kept current by a
// monitor, so reads never go to the server. It is safe for concurrent use.
type Cache struct {
	mu      sync.RWMutex
	tables  map[string]map[UUID]Row
	byName  map[string]map[string]UUID // table → "name" column → row
	changed chan struct{}              // closed and replaced on every change
}

// NewCache returns an empty cache.
func NewCache() *Cache {
	return &Cache{tables: map[string]map[UUID]Row{}, byName: map[string]map[string]UUID{},
		changed: make(chan struct{})}
}

// reset replaces the whole contents with a monitor's initial rows.
func (c *Cache) reset(initial TableUpdates) {
	c.mu.Lock()
	c.tables = map[string]map[UUID]Row{}
	c.byName = map[string]map[string]UUID{}
	c.applyLocked(initial)
	c.notifyLocked()
	c.mu.Unlock()
}

// apply merges one monitor update.
func (c *Cache) apply(u TableUpdates) {
	c.mu.Lock()
	c.applyLocked(u)
	c.notifyLocked()
	c.mu.Unlock()
}

func (c *Cache) applyLocked(u TableUpdates) {
	for table, rows := range u {
		t := c.tables[table]
		if t == nil {
			t = map[UUID]Row{}
			c.tables[table] = t
			c.byName[table] = map[string]UUID{}
		}
		names := c.byName[table]
		for id, ru := range rows {
			if old, ok := t[id]; ok {
				if n := String(old["name"]); names[n] == id {
					delete(names, n)
				}
			}
			if ru.New == nil {
				delete(t, id)
				continue
			}
			// A monitor's "new" holds every monitored column.
			t[id] = ru.New
			if n := String(ru.New["name"]); n != "" {
				names[n] = id
			}
		}
	}
}

func (c *Cache) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Row returns a row of table by UUID.
func (c *Cache) Row(table string, id UUID) (Row, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	r, ok := c.tables[table][id]
	return r, ok
}

// RowByName returns the row of table whose "name" column is name.
func (c *Cache) RowByName(table, name string) (UUID, Row, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	id, ok := c.byName[table][name]
	if !ok {
		return "", nil, false
	}
	return id, c.tables[table][id], true
}

// Rows returns every row of table.
func (c *Cache) Rows(table string) map[UUID]Row {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make(map[UUID]Row, len(c.tables[table]))
	for id, r := range c.tables[table] {
		out[id] = r
	}
	return out
}

// WaitFor blocks until cond, evaluated on the cache after each change,
// holds, or ctx ends.
func (c *Cache) WaitFor(ctx context.Context, cond func(*Cache) bool) error {
	for {
		c.mu.RLock()
		changed := c.changed
		c.mu.RUnlock()
		if cond(c) {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("ovsdb cache: %w", ctx.Err())
		}
	}
}
