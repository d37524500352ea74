package ovsdb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultTimeout bounds a call whose context has no deadline: every call
// has one.
const DefaultTimeout = 30 * time.Second

// Conn is one JSON-RPC 1.0 session with ovsdb-server (RFC 7047 4). Calls
// may run concurrently; answers are matched by id. The server's echo
// requests are answered; its notifications go to the handlers registered
// for their monitor id or lock. A Conn does not reconnect: Client does.
type Conn struct {
	nc  net.Conn
	wmu sync.Mutex // one message on the wire at a time

	mu       sync.Mutex
	nextID   uint64
	pending  map[uint64]chan response
	hooks    map[uint64]func(response) // run by the reader before the reply is handed over
	monitors map[string]func(TableUpdates)
	locks    map[string]*lockState
	err      error // why the connection ended

	done chan struct{}
}

// message is any JSON-RPC message; which fields are set tells its kind.
type message struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method,omitempty"`
	Params json.RawMessage `json:"params,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  json.RawMessage `json:"error,omitempty"`
}

type response struct {
	result json.RawMessage
	err    json.RawMessage
}

// Dial connects to "unix:PATH" or "tcp:HOST:PORT".
func Dial(ctx context.Context, addr string) (*Conn, error) {
	network, address, err := splitAddr(addr)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, network, address)
	if err != nil {
		return nil, fmt.Errorf("ovsdb: connect %s: %w", addr, err)
	}
	return NewConn(nc), nil
}

func splitAddr(addr string) (network, address string, err error) {
	kind, rest, ok := strings.Cut(addr, ":")
	if ok && rest != "" && (kind == "unix" || kind == "tcp") {
		return kind, rest, nil
	}
	return "", "", fmt.Errorf("ovsdb: address %q: want unix:PATH or tcp:HOST:PORT", addr)
}

// NewConn runs the protocol over an established connection.
func NewConn(nc net.Conn) *Conn {
	c := &Conn{
		nc:       nc,
		pending:  map[uint64]chan response{},
		hooks:    map[uint64]func(response){},
		monitors: map[string]func(TableUpdates){},
		locks:    map[string]*lockState{},
		done:     make(chan struct{}),
	}
	go c.read()
	return c
}

// Close ends the session; pending calls fail with ErrDisconnected.
func (c *Conn) Close() error {
	c.shutdown(ErrDisconnected)
	return nil
}

// Done is closed when the connection has ended; Err then says why.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err is why the connection ended, nil while it is up.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *Conn) shutdown(why error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = why
	pending := c.pending
	c.pending = nil
	c.mu.Unlock()
	c.nc.Close()
	close(c.done)
	for _, ch := range pending {
		close(ch)
	}
}

// call sends one request and decodes its result into result (if not nil).
func (c *Conn) call(ctx context.Context, method string, params, result any) error {
	return c.callHook(ctx, method, params, result, nil)
}

// callHook is call with hook run on the reply by the reader goroutine, in
// order with the notifications around it.
func (c *Conn) callHook(ctx context.Context, method string, params, result any, hook func(response)) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	id, ch, err := c.register(hook)
	if err != nil {
		return fmt.Errorf("ovsdb %s: %w", method, err)
	}
	if err := c.send(map[string]any{"method": method, "params": params, "id": id}); err != nil {
		c.unregister(id)
		return fmt.Errorf("ovsdb %s: %w", method, err)
	}
	select {
	case resp, ok := <-ch:
		if !ok {
			return fmt.Errorf("ovsdb %s: %w", method, c.Err())
		}
		return decodeResponse(method, resp, result)
	case <-ctx.Done():
		c.unregister(id)
		return fmt.Errorf("ovsdb %s: %w", method, ctx.Err())
	}
}

func (c *Conn) register(hook func(response)) (uint64, chan response, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, nil, c.err
	}
	c.nextID++
	ch := make(chan response, 1)
	c.pending[c.nextID] = ch
	if hook != nil {
		c.hooks[c.nextID] = hook
	}
	return c.nextID, ch, nil
}

func (c *Conn) unregister(id uint64) {
	c.mu.Lock()
	delete(c.pending, id)
	delete(c.hooks, id)
	c.mu.Unlock()
}

func decodeResponse(method string, resp response, result any) error {
	if isError(resp.err) {
		return rpcError(method, resp.err)
	}
	if result == nil {
		return nil
	}
	if err := json.Unmarshal(resp.result, result); err != nil {
		return fmt.Errorf("ovsdb %s: result: %w", method, err)
	}
	return nil
}

// rpcError decodes an error member: a string or {"error": ..., "details": ...}.
func rpcError(method string, raw json.RawMessage) error {
	var obj struct {
		Error   string `json:"error"`
		Details string `json:"details"`
	}
	if json.Unmarshal(raw, &obj) == nil && obj.Error != "" {
		return &RPCError{Method: method, Err: obj.Error, Detail: obj.Details}
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return &RPCError{Method: method, Err: s}
	}
	return &RPCError{Method: method, Err: string(raw)}
}

func (c *Conn) send(msg any) error {
	data, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	// A bounded write: a server that stopped reading must not hang us.
	c.nc.SetWriteDeadline(time.Now().Add(DefaultTimeout))
	if _, err := c.nc.Write(data); err != nil {
		c.shutdown(fmt.Errorf("%w: write: %v", ErrDisconnected, err))
		return c.Err()
	}
	return nil
}

// read decodes back-to-back JSON messages (no framing) until the
// connection fails.
func (c *Conn) read() {
	dec := json.NewDecoder(c.nc)
	for {
		var msg message
		if err := dec.Decode(&msg); err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("server closed the connection")
			}
			c.shutdown(fmt.Errorf("%w: %v", ErrDisconnected, err))
			return
		}
		if msg.Method != "" {
			c.serverRequest(msg)
			continue
		}
		c.answer(msg)
	}
}

func (c *Conn) answer(msg message) {
	id, err := strconv.ParseUint(string(msg.ID), 10, 64)
	if err != nil {
		return // not one of ours
	}
	c.mu.Lock()
	ch, hook := c.pending[id], c.hooks[id]
	delete(c.pending, id)
	delete(c.hooks, id)
	c.mu.Unlock()
	resp := response{result: msg.Result, err: msg.Error}
	if hook != nil {
		hook(resp)
	}
	if ch != nil {
		ch <- resp
	}
}

// serverRequest handles what the server sends on its own: echo (answered,
// or the server drops us as inactive), update, locked and stolen.
func (c *Conn) serverRequest(msg message) {
	switch msg.Method {
	case "echo":
		params := msg.Params
		if len(params) == 0 {
			params = json.RawMessage("[]")
		}
		// Not on the reader: a write that waits for the server must never
		// stop us reading what the server is trying to send.
		go c.send(map[string]any{"result": params, "error": nil, "id": msg.ID})
	case "update":
		c.dispatchUpdate(msg.Params)
	case "locked":
		c.lockGranted(msg.Params)
	case "stolen":
		c.lockStolen(msg.Params)
	}
}
