package openflow

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// DefaultTimeout bounds a handshake or a request whose context has no
// deadline.
var DefaultTimeout = 10 * time.Second

// ErrClosed is wrapped by every error of a request on a connection that
// ended (ovs-vswitchd exited, the bridge went, Close was called).
var ErrClosed = errors.New("openflow: connection closed")

// Conn is a session with one switch. Its reader goroutine answers echo
// requests and hands errors and barrier replies to the request that caused
// them; everything else the switch sends is read and dropped.
type Conn struct {
	nc  net.Conn
	wmu sync.Mutex // one message sequence at a time on the wire

	mu      sync.Mutex
	xid     uint32
	pending map[uint32]*batch // every xid of a batch, flow mods and barrier
	err     error             // why the session ended
	done    chan struct{}
}

// batch is one Apply: its flow mods by xid and the barrier that ends it.
type batch struct {
	mods    map[uint32]FlowMod
	barrier uint32
	errs    []error
	replied chan struct{}
}

// Dial connects to a management socket (a unix socket path such as
// /run/openvswitch/BRIDGE.mgmt) and negotiates OpenFlow 1.3.
func Dial(ctx context.Context, path string) (*Conn, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("openflow: dial %s: %w", path, err)
	}
	c, err := NewConn(ctx, nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("openflow: %s: %w", path, err)
	}
	return c, nil
}

// NewConn runs the hello exchange on nc and starts the reader. The switch
// must offer OpenFlow 1.3; otherwise it is told so (OFPET_HELLO_FAILED) and
// the error lists what it offers.
func NewConn(ctx context.Context, nc net.Conn) (*Conn, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	c := &Conn{nc: nc, pending: map[uint32]*batch{}, done: make(chan struct{})}
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Now()) })
	defer stop()
	r := bufio.NewReader(nc)
	if err := c.write(Hello(c.nextXID(), Version13)); err != nil {
		return nil, fmt.Errorf("send hello: %w", err)
	}
	m, err := ReadMessage(r)
	if err != nil {
		return nil, fmt.Errorf("read hello: %w", orCtx(ctx, err))
	}
	if m.Type == TypeError {
		if e, perr := ParseError(m); perr == nil {
			return nil, fmt.Errorf("hello refused: %w", e)
		}
	}
	if m.Type != TypeHello {
		return nil, fmt.Errorf("first message is of type %d, want a hello", m.Type)
	}
	theirs, err := HelloVersions(m)
	if err != nil {
		return nil, err
	}
	if v, ok := Negotiate([]uint8{Version13}, theirs); !ok || v != Version13 {
		c.write(helloFailed(m.XID))
		return nil, fmt.Errorf("the switch offers OpenFlow wire versions %v, not 1.3 (0x04): "+
			"the bridge's protocols column must allow OpenFlow13", theirs)
	}
	if !stop() {
		return nil, fmt.Errorf("hello: %w", ctx.Err())
	}
	nc.SetDeadline(time.Time{})
	go c.read(r)
	return c, nil
}

// helloFailed is OFPET_HELLO_FAILED/OFPHFC_INCOMPATIBLE with a reason.
func helloFailed(xid uint32) Message {
	body := binary.BigEndian.AppendUint16(nil, 0)
	body = binary.BigEndian.AppendUint16(body, 0)
	body = append(body, "nodenet speaks OpenFlow 1.3 only"...)
	return Message{Version: Version13, Type: TypeError, XID: xid, Body: body}
}

func (c *Conn) nextXID() uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.xid++
	return c.xid
}

// write sends one message with a bounded wait.
func (c *Conn) write(m Message) error {
	b, err := m.Marshal()
	if err != nil {
		return err
	}
	return c.writeBytes(b)
}

func (c *Conn) writeBytes(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.nc.SetWriteDeadline(time.Now().Add(DefaultTimeout))
	_, err := c.nc.Write(b)
	return err
}

// Apply sends the flow mods, in order, then a barrier, and waits for the
// barrier's reply: when it returns nil the switch has applied every one.
// The error joins the switch's errors, each naming its flow mod. When ctx
// ends first the connection is closed, since what the switch did is then
// unknown.
func (c *Conn) Apply(ctx context.Context, mods ...FlowMod) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	b := &batch{mods: map[uint32]FlowMod{}, replied: make(chan struct{})}
	var wire []byte
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return c.err
	}
	for _, m := range mods {
		c.xid++
		enc, err := m.Marshal(c.xid)
		if err != nil {
			c.mu.Unlock()
			return err
		}
		b.mods[c.xid] = m
		wire = append(wire, enc...)
	}
	c.xid++
	b.barrier = c.xid
	for xid := range b.mods {
		c.pending[xid] = b
	}
	c.pending[b.barrier] = b
	c.mu.Unlock()
	barrier, _ := Message{Version: Version13, Type: TypeBarrierRequest, XID: b.barrier}.Marshal()
	if err := c.writeBytes(append(wire, barrier...)); err != nil {
		c.Close()
		return fmt.Errorf("%w: send flow mods: %v", ErrClosed, err)
	}
	select {
	case <-b.replied:
		return errors.Join(b.errs...)
	case <-c.done:
		return c.Err()
	case <-ctx.Done():
		c.Close()
		return fmt.Errorf("openflow: no barrier reply: %w", ctx.Err())
	}
}

// read runs until the connection ends.
func (c *Conn) read(r *bufio.Reader) {
	for {
		m, err := ReadMessage(r)
		if err != nil {
			c.fail(err)
			return
		}
		switch m.Type {
		case TypeEchoRequest:
			if err := c.write(Message{Version: Version13, Type: TypeEchoReply, XID: m.XID, Body: m.Body}); err != nil {
				c.fail(err)
				return
			}
		case TypeError:
			c.gotError(m)
		case TypeBarrierReply:
			c.mu.Lock()
			if b := c.pending[m.XID]; b != nil && b.barrier == m.XID {
				c.finish(b)
			}
			c.mu.Unlock()
		}
	}
}

// gotError records a switch error against its batch. An error no request
// of ours caused has nobody to tell and is dropped.
func (c *Conn) gotError(m Message) {
	e, err := ParseError(m)
	if err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.pending[m.XID]
	if b == nil {
		return
	}
	if mod, ok := b.mods[m.XID]; ok {
		b.errs = append(b.errs, fmt.Errorf("flow mod %s: %w", mod, e))
		return
	}
	// The barrier itself failed: no reply will come.
	b.errs = append(b.errs, fmt.Errorf("barrier: %w", e))
	c.finish(b)
}

// finish ends a batch; c.mu is held.
func (c *Conn) finish(b *batch) {
	for xid := range b.mods {
		delete(c.pending, xid)
	}
	delete(c.pending, b.barrier)
	close(b.replied)
}

// fail ends the session, once, with why.
func (c *Conn) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	c.err = fmt.Errorf("%w: %v", ErrClosed, err)
	close(c.done)
	c.nc.Close()
}

// Close ends the session; requests waiting fail with ErrClosed.
func (c *Conn) Close() error {
	c.fail(errors.New("closed by nodenet"))
	return nil
}

// Done is closed when the session has ended, by either side: for a
// bridge's management socket, ovs-vswitchd exiting or the bridge going.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err says why the session ended (nil while it lasts).
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, DefaultTimeout)
}

// orCtx prefers the context's error to the i/o timeout its deadline caused.
func orCtx(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}
