package ovsdb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// lockState tracks one lock this connection asked for (RFC 7047 4.1.8).
type lockState struct {
	granted chan struct{} // closed when the server grants it
	lost    chan struct{} // closed when another client steals it
}

type lockResult struct {
	Locked bool `json:"locked"`
}

// Lock asks for the named lock and waits, within ctx, until the server
// grants it. Assert(name) in a transaction then fails unless it is still
// held; LockLost tells when another client stole it.
func (c *Conn) Lock(ctx context.Context, name string) error {
	if !isIdentifier(name) {
		return fmt.Errorf("ovsdb lock %q: a lock name must be an identifier ([a-zA-Z_][a-zA-Z0-9_]*)", name)
	}
	st := &lockState{granted: make(chan struct{}), lost: make(chan struct{})}
	c.mu.Lock()
	if _, held := c.locks[name]; held {
		c.mu.Unlock()
		return fmt.Errorf("ovsdb lock %q: already requested on this connection", name)
	}
	c.locks[name] = st
	c.mu.Unlock()

	var res lockResult
	if err := c.call(ctx, "lock", []any{name}, &res); err != nil {
		c.forgetLock(name)
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			c.withdrawLock(name) // the server may have queued or granted it
		}
		return err
	}
	if res.Locked {
		c.lockGranted(mustJSON([]any{name}))
		return nil
	}
	select {
	case <-st.granted:
		return nil
	case <-ctx.Done():
		// Withdraw, or the server would grant it to us later, unasked.
		c.forgetLock(name)
		c.withdrawLock(name)
		return fmt.Errorf("ovsdb lock %q: %w", name, ctx.Err())
	case <-c.done:
		return fmt.Errorf("ovsdb lock %q: %w", name, c.Err())
	}
}

// Steal takes the named lock from whoever holds it.
func (c *Conn) Steal(ctx context.Context, name string) error {
	c.mu.Lock()
	if st, ok := c.locks[name]; !ok || isClosed(st.lost) {
		// Taking back a stolen lock starts a new holding: LockLost must
		// not report the old loss.
		c.locks[name] = &lockState{granted: make(chan struct{}), lost: make(chan struct{})}
	}
	c.mu.Unlock()
	if err := c.call(ctx, "steal", []any{name}, nil); err != nil {
		c.forgetLock(name)
		return err
	}
	c.lockGranted(mustJSON([]any{name}))
	return nil
}

// Unlock releases (or stops waiting for) the named lock.
func (c *Conn) Unlock(ctx context.Context, name string) error {
	c.forgetLock(name)
	return c.call(ctx, "unlock", []any{name}, nil)
}

// withdrawLock sends unlock for name without waiting for the answer: the
// caller's context has ended. The server handles requests in order, so a
// later lock of the same name comes after it.
func (c *Conn) withdrawLock(name string) {
	id, _, err := c.register(nil)
	if err != nil {
		return
	}
	c.unregister(id) // its answer is dropped
	c.send(map[string]any{"method": "unlock", "params": []any{name}, "id": id})
}

// LockLost is closed when the named lock, once granted, was stolen. It is
// nil for a lock this connection did not ask for.
func (c *Conn) LockLost(name string) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.locks[name]; st != nil {
		return st.lost
	}
	return nil
}

func (c *Conn) forgetLock(name string) {
	c.mu.Lock()
	delete(c.locks, name)
	c.mu.Unlock()
}

// lockGranted handles the "locked" notification (and a lock granted at once).
func (c *Conn) lockGranted(params json.RawMessage) { c.closeLockChan(params, true) }

// lockStolen handles the "stolen" notification.
func (c *Conn) lockStolen(params json.RawMessage) { c.closeLockChan(params, false) }

// closeLockChan closes the granted or lost channel of the lock params
// names, under c.mu so that it is closed once.
func (c *Conn) closeLockChan(params json.RawMessage, granted bool) {
	var p []string
	if json.Unmarshal(params, &p) != nil || len(p) != 1 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.locks[p[0]]
	if st == nil {
		return
	}
	ch := st.lost
	if granted {
		ch = st.granted
	}
	select {
	case <-ch:
	default:
		close(ch)
	}
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func mustJSON(v any) json.RawMessage {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return data
}
