package ovsdb

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestConnLock(t *testing.T) {
	c, f := newFake(t)
	ctx := ctxT(t)
	if ch := c.LockLost("nodenet"); ch != nil {
		t.Errorf("LockLost of a lock never asked for is not nil")
	}
	done := async(func() error { return c.Lock(ctx, "nodenet") })
	f.reply(f.expect("lock", `["nodenet"]`), `{"locked":false}`)
	syncReader(t, c, f)
	select {
	case err := <-done:
		t.Fatalf("Lock returned %v before the lock was granted", err)
	default:
	}
	f.send(`{"id":null,"method":"locked","params":["nodenet"]}`)
	if err := wait(t, done, "Lock"); err != nil {
		t.Fatalf("Lock: %v", err)
	}
	lost := c.LockLost("nodenet")
	if lost == nil {
		t.Fatal("LockLost is nil for a held lock")
	}
	select {
	case <-lost:
		t.Fatal("LockLost closed while the lock is held")
	default:
	}
	f.send(`{"id":null,"method":"stolen","params":["nodenet"]}`)
	select {
	case <-lost:
	case <-time.After(bound):
		t.Fatal("LockLost not closed after stolen")
	}
	f.send(`{"id":null,"method":"stolen","params":["nodenet"]}`) // twice does not panic
	syncReader(t, c, f)

	// Asking twice on one connection is a mistake.
	if err := c.Lock(ctx, "nodenet"); err == nil {
		t.Error("a second Lock of the same name succeeded")
	}
	done = async(func() error { return c.Unlock(ctx, "nodenet") })
	f.reply(f.expect("unlock", `["nodenet"]`), `{}`)
	if err := wait(t, done, "Unlock"); err != nil {
		t.Fatal(err)
	}
	if c.LockLost("nodenet") != nil {
		t.Error("LockLost not nil after Unlock")
	}
}

func TestConnLockGrantedAtOnce(t *testing.T) {
	c, f := newFake(t)
	ctx := ctxT(t)
	done := async(func() error { return c.Lock(ctx, "l") })
	f.reply(f.expect("lock", `["l"]`), `{"locked":true}`)
	if err := wait(t, done, "Lock"); err != nil {
		t.Fatal(err)
	}
	// A stray "locked" after that changes nothing.
	f.send(`{"id":null,"method":"locked","params":["l"]}`)
	syncReader(t, c, f)
	select {
	case <-c.LockLost("l"):
		t.Error("LockLost closed")
	default:
	}
}

func TestConnSteal(t *testing.T) {
	c, f := newFake(t)
	ctx := ctxT(t)
	done := async(func() error { return c.Steal(ctx, "l") })
	f.reply(f.expect("steal", `["l"]`), `{"locked":true}`)
	if err := wait(t, done, "Steal"); err != nil {
		t.Fatal(err)
	}
	lost := c.LockLost("l")
	if lost == nil {
		t.Fatal("LockLost nil after Steal")
	}
	f.send(`{"id":null,"method":"stolen","params":["l"]}`)
	select {
	case <-lost:
	case <-time.After(bound):
		t.Fatal("LockLost not closed after stolen")
	}
}

func TestConnLockError(t *testing.T) {
	c, f := newFake(t)
	ctx := ctxT(t)
	// RFC 7047 4.1.8: a lock's name is an <id>; a bad one is not sent.
	for _, bad := range []string{"", "my-lock", "1lock", "a b"} {
		if err := c.Lock(ctx, bad); err == nil {
			t.Errorf("Lock(%q) succeeded", bad)
		}
	}
	syncReader(t, c, f)
	done := async(func() error { return c.Lock(ctx, "l") })
	r := f.recv()
	f.send(fmt.Sprintf(`{"id":%s,"result":null,"error":"not allowed"}`, r.ID))
	var re *RPCError
	if err := wait(t, done, "Lock"); !errors.As(err, &re) {
		t.Fatalf("Lock error %v, want an *RPCError", err)
	}
	if c.LockLost("l") != nil {
		t.Error("a refused lock is still tracked")
	}
}

// A Lock whose context ends withdraws the request (or the server would
// grant the lock later, unasked) and returns: it does not wait for the
// server's answer to unlock.
func TestConnLockContext(t *testing.T) {
	c, f := newFake(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := async(func() error { return c.Lock(ctx, "l") })
	f.reply(f.expect("lock", `["l"]`), `{"locked":false}`)
	cancel()
	unlock := f.expect("unlock", `["l"]`)
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Lock error %v, want context.Canceled", err)
		}
	case <-time.After(bound):
		t.Fatal("Lock still waits, for the answer to its unlock, after its context ended")
	}
	f.reply(unlock, `{}`)
	if c.LockLost("l") != nil {
		t.Error("a withdrawn lock is still tracked")
	}
	// The lock can be asked for again.
	ctx = ctxT(t)
	done = async(func() error { return c.Lock(ctx, "l") })
	f.reply(f.expect("lock", `["l"]`), `{"locked":true}`)
	if err := wait(t, done, "Lock"); err != nil {
		t.Fatal(err)
	}
}

// Lock does not wait for a grant on a connection that ended.
func TestConnLockDisconnect(t *testing.T) {
	c, f := newFake(t)
	ctx := ctxT(t)
	done := async(func() error { return c.Lock(ctx, "l") })
	f.reply(f.expect("lock", `["l"]`), `{"locked":false}`)
	f.nc.Close()
	if err := wait(t, done, "Lock"); !errors.Is(err, ErrDisconnected) {
		t.Errorf("Lock error %v, want ErrDisconnected", err)
	}
}

func TestConnLockContextInFlight(t *testing.T) {
	c, f := newFake(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := async(func() error { return c.Lock(ctx, "l") })
	lock := f.expect("lock", `["l"]`)
	cancel()
	unlock := f.expect("unlock", `["l"]`)
	if err := wait(t, done, "Lock"); !errors.Is(err, context.Canceled) {
		t.Errorf("Lock error %v, want context.Canceled", err)
	}
	f.reply(lock, `{"locked":true}`)
	f.reply(unlock, `{}`)
	if c.LockLost("l") != nil {
		t.Error("a withdrawn lock is still tracked")
	}
}

func TestConnStealAfterStolen(t *testing.T) {
	c, f := newFake(t)
	ctx := ctxT(t)
	done := async(func() error { return c.Lock(ctx, "l") })
	f.reply(f.expect("lock", `["l"]`), `{"locked":true}`)
	wait(t, done, "Lock")
	f.send(`{"id":null,"method":"stolen","params":["l"]}`)
	<-c.LockLost("l")
	done = async(func() error { return c.Steal(ctx, "l") })
	f.reply(f.expect("steal", `["l"]`), `{"locked":true}`)
	wait(t, done, "Steal")
	select {
	case <-c.LockLost("l"):
		t.Error("LockLost closed after Steal took the lock back")
	default:
	}
}
