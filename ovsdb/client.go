package ovsdb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// Client keeps a session with ovsdb-server's Open_vSwitch database: it
// connects, monitors the tables nodenet reads into a Cache, and when the
// server goes away backs off, reconnects, re-monitors and rebuilds the
// cache. A connection is only handed to callers once its monitor's
// initial contents are in the cache: never a half-connected client.
type Client struct {
	Addr string
	Log  *slog.Logger
	// MinBackoff and MaxBackoff bound the wait between connection attempts;
	// the default cap is 1 s: the server is local (a unix socket), an
	// attempt costs nothing, and a supervisor restarts it within a second.
	MinBackoff, MaxBackoff time.Duration
	// ConnectWait bounds how long Transact waits for a session while
	// disconnected (default 5 s): long enough to ride out a restart,
	// short enough that an API request during an outage gets an answer.
	ConnectWait time.Duration
	// ProbeInterval is how long the session may be idle before an echo
	// checks the server is alive (a dead TCP peer sends no FIN).
	ProbeInterval time.Duration

	cache *Cache

	mu        sync.Mutex
	conn      *Conn         // nil while disconnected
	ready     chan struct{} // closed while conn is set
	lastErr   error
	connects  int
	cancel    context.CancelFunc
	loopEnded chan struct{}
}

// Status is what the client can say about its session.
type Status struct {
	Addr      string `json:"addr"`
	Connected bool   `json:"connected"`
	Connects  int    `json:"connects"`
	LastError string `json:"last_error,omitempty"`
}

// Open starts a client for addr ("unix:PATH" or "tcp:HOST:PORT"); it
// connects in the background and keeps connecting until Close.
func Open(addr string, log *slog.Logger) *Client {
	c := &Client{Addr: addr, Log: log}
	c.Start()
	return c
}

// Start begins connecting; Open calls it. Set the fields before.
func (c *Client) Start() {
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = 100 * time.Millisecond
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = time.Second
	}
	if c.ConnectWait == 0 {
		c.ConnectWait = 5 * time.Second
	}
	if c.ProbeInterval == 0 {
		c.ProbeInterval = 5 * time.Second
	}
	c.cache = NewCache()
	c.ready = make(chan struct{})
	c.loopEnded = make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go c.loop(ctx)
}

// Close stops the client and its session.
func (c *Client) Close() {
	c.cancel()
	<-c.loopEnded
}

// Cache is the client's view of the monitored tables.
func (c *Client) Cache() *Cache { return c.cache }

// Status reports the session's state.
func (c *Client) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Status{Addr: c.Addr, Connected: c.conn != nil, Connects: c.connects}
	if c.lastErr != nil {
		s.LastError = c.lastErr.Error()
	}
	return s
}

// Conn waits, within ctx, for a connected session whose cache is current.
func (c *Client) Conn(ctx context.Context) (*Conn, error) {
	for {
		c.mu.Lock()
		conn, ready, last := c.conn, c.ready, c.lastErr
		c.mu.Unlock()
		if conn != nil {
			return conn, nil
		}
		select {
		case <-ready:
		case <-ctx.Done():
			if last == nil {
				last = ctx.Err()
			}
			return nil, fmt.Errorf("%w to %s: %v", ErrDisconnected, c.Addr, last)
		}
	}
}

// Transact runs ops on the Open_vSwitch database over the current session.
func (c *Client) Transact(ctx context.Context, ops ...Operation) ([]OpResult, error) {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	conn, err := c.session(ctx)
	if err != nil {
		return nil, err
	}
	res, err := conn.Transact(ctx, VswitchDB, ops...)
	if err != nil && errors.Is(err, ErrDisconnected) {
		// Sent, maybe committed, answer lost: the caller must re-read.
		return nil, fmt.Errorf("%w (the transaction's outcome is unknown)", err)
	}
	return res, err
}

// session is Conn for a request: it waits for a session at most
// ConnectWait, so a request during an outage fails instead of hanging.
func (c *Client) session(ctx context.Context) (*Conn, error) {
	wait, cancel := context.WithTimeout(ctx, c.ConnectWait)
	defer cancel()
	return c.Conn(wait)
}

func withDefaultTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, DefaultTimeout)
}

// loop connects, serves one session until it ends, and starts over.
func (c *Client) loop(ctx context.Context) {
	defer close(c.loopEnded)
	backoff := c.MinBackoff
	for ctx.Err() == nil {
		conn, err := c.connect(ctx)
		if err != nil {
			c.setErr(err)
			c.Log.Debug("ovsdb connect failed", "addr", c.Addr, "err", err, "retry_in", backoff)
			sleep(ctx, jitter(backoff))
			backoff = min(2*backoff, c.MaxBackoff)
			continue
		}
		backoff = c.MinBackoff
		c.publish(conn)
		c.Log.Info("ovsdb connected", "addr", c.Addr)
		c.serve(ctx, conn)
		c.unpublish(conn)
		if ctx.Err() == nil {
			c.Log.Warn("ovsdb connection lost", "addr", c.Addr, "err", conn.Err())
		}
	}
}

// connect dials and monitors; the cache is rebuilt from the monitor's
// initial contents before the session is handed out.
func (c *Client) connect(ctx context.Context) (*Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := Dial(ctx, c.Addr)
	if err != nil {
		return nil, err
	}
	first := true
	handler := func(u TableUpdates) {
		if first {
			first = false
			c.cache.reset(u)
			return
		}
		c.cache.apply(u)
	}
	if err := conn.Monitor(ctx, VswitchDB, "nodenet", vswitchMonitor, handler); err != nil {
		conn.Close()
		return nil, fmt.Errorf("monitor %s: %w", VswitchDB, err)
	}
	return conn, nil
}

// serve keeps the session until it ends or ctx does, probing it when idle.
func (c *Client) serve(ctx context.Context, conn *Conn) {
	probe := time.NewTicker(c.ProbeInterval)
	defer probe.Stop()
	for {
		select {
		case <-ctx.Done():
			conn.Close()
			return
		case <-conn.Done():
			return
		case <-probe.C:
			pctx, cancel := context.WithTimeout(ctx, c.ProbeInterval)
			if err := conn.Echo(pctx); err != nil && ctx.Err() == nil {
				conn.shutdown(fmt.Errorf("%w: no answer to echo: %v", ErrDisconnected, err))
			}
			cancel()
		}
	}
}

func (c *Client) publish(conn *Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.conn, c.lastErr = conn, nil
	c.connects++
	close(c.ready)
}

func (c *Client) unpublish(conn *Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.conn, c.lastErr = nil, conn.Err()
	c.ready = make(chan struct{})
}

func (c *Client) setErr(err error) {
	c.mu.Lock()
	c.lastErr = err
	c.mu.Unlock()
}

func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
