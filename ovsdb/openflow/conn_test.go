package openflow

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

// fakeSwitch is the switch's end of a pipe: the test reads what the
// client sent and writes what the switch answers.
type fakeSwitch struct {
	t  *testing.T
	nc net.Conn
	r  *bufio.Reader
}

func (s *fakeSwitch) read() Message {
	s.t.Helper()
	s.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	m, err := ReadMessage(s.r)
	if err != nil {
		s.t.Fatalf("switch read: %v", err)
	}
	return m
}

func (s *fakeSwitch) send(m Message) {
	s.t.Helper()
	b, err := m.Marshal()
	if err != nil {
		s.t.Fatal(err)
	}
	s.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := s.nc.Write(b); err != nil {
		s.t.Fatalf("switch write: %v", err)
	}
}

// ovsHello is Open vSwitch 3.1's hello with an empty protocols column:
// header version 1.5, bitmap 1.0 to 1.5.
func ovsHello(xid uint32) Message {
	m := Hello(xid, 1, 2, 3, 4, 5, 6)
	return m
}

// connect runs the handshake against a fake switch sending hello.
func connect(t *testing.T, hello Message) (*Conn, *fakeSwitch, error) {
	t.Helper()
	client, sw := net.Pipe()
	t.Cleanup(func() { client.Close(); sw.Close() })
	s := &fakeSwitch{t: t, nc: sw, r: bufio.NewReader(sw)}
	type result struct {
		c   *Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := NewConn(ctx, client)
		done <- result{c, err}
	}()
	if m := s.read(); m.Type != TypeHello || m.Version != Version13 {
		t.Fatalf("client's first message: %+v", m)
	}
	s.send(hello)
	r := <-done
	if r.c != nil {
		t.Cleanup(func() { r.c.Close() })
	}
	return r.c, s, r.err
}

func TestConnHandshake(t *testing.T) {
	c, _, err := connect(t, ovsHello(1))
	if err != nil {
		t.Fatal(err)
	}
	if c.Err() != nil {
		t.Errorf("fresh session: %v", c.Err())
	}
	// An old switch without a bitmap, header version 1.3: also fine.
	if _, _, err := connect(t, Message{Version: Version13, Type: TypeHello, XID: 1}); err != nil {
		t.Errorf("hello without bitmap: %v", err)
	}
}

// A switch allowing only OpenFlow 1.0 (protocols=OpenFlow10) is told
// OFPET_HELLO_FAILED and the error says what to change.
func TestConnHandshakeNoCommonVersion(t *testing.T) {
	client, sw := net.Pipe()
	defer client.Close()
	defer sw.Close()
	s := &fakeSwitch{t: t, nc: sw, r: bufio.NewReader(sw)}
	errc := make(chan error, 1)
	go func() {
		_, err := NewConn(context.Background(), client)
		errc <- err
	}()
	s.read()
	s.send(Hello(1, 1))
	m := s.read()
	e, err := ParseError(m)
	if err != nil || e.Type != 0 || e.Code != 0 {
		t.Errorf("switch got %+v (%v), want OFPET_HELLO_FAILED/OFPHFC_INCOMPATIBLE", m, err)
	}
	err = <-errc
	if err == nil || !strings.Contains(err.Error(), "protocols column must allow OpenFlow13") || !strings.Contains(err.Error(), "[1]") {
		t.Errorf("got %v", err)
	}
}

func TestConnHandshakeRefused(t *testing.T) {
	refusal := Message{Version: Version13, Type: TypeError, XID: 1, Body: []byte{0, 0, 0, 1}}
	_, _, err := connect(t, refusal)
	if err == nil || !strings.Contains(err.Error(), "OFPET_HELLO_FAILED/OFPHFC_EPERM") {
		t.Errorf("got %v", err)
	}
}

// Apply sends its flow mods and a barrier in one go; an error for one of
// them names it, and comes back once the barrier is answered.
func TestConnApply(t *testing.T) {
	c, s, err := connect(t, ovsHello(1))
	if err != nil {
		t.Fatal(err)
	}
	good := FlowMod{Command: Add, Cookie: testCookie, Priority: 90, Match: Match{InPort: 3}}
	bad := FlowMod{Command: Add, Cookie: testCookie, Priority: 100, Output: []uint32{0}, Match: Match{InPort: 3}}
	errc := make(chan error, 1)
	go func() { errc <- c.Apply(context.Background(), good, bad) }()
	m1, m2, barrier := s.read(), s.read(), s.read()
	if m1.Type != TypeFlowMod || m2.Type != TypeFlowMod || barrier.Type != TypeBarrierRequest {
		t.Fatalf("switch got types %d %d %d", m1.Type, m2.Type, barrier.Type)
	}
	if m1.XID == m2.XID || m2.XID == barrier.XID {
		t.Errorf("xids not distinct: %d %d %d", m1.XID, m2.XID, barrier.XID)
	}
	// Echo is answered meanwhile, with the request's xid and data.
	s.send(Message{Version: Version13, Type: TypeEchoRequest, XID: 777, Body: []byte("ping")})
	if echo := s.read(); echo.Type != TypeEchoReply || echo.XID != 777 || string(echo.Body) != "ping" {
		t.Errorf("echo reply: %+v", echo)
	}
	// An error no request of ours caused is dropped.
	s.send(Message{Version: Version13, Type: TypeError, XID: 12345, Body: []byte{0, 1, 0, 1}})
	s.send(Message{Version: Version13, Type: TypeError, XID: m2.XID,
		Body: binary.BigEndian.AppendUint32([]byte{0, 2, 0, 4}, 0)})
	s.send(Message{Version: Version13, Type: TypeBarrierReply, XID: barrier.XID})
	err = <-errc
	var oe *Error
	if !errors.As(err, &oe) || oe.Type != 2 || oe.Code != 4 {
		t.Fatalf("Apply: %v, want OFPBAC_BAD_OUT_PORT", err)
	}
	if !strings.Contains(err.Error(), "flow mod add cookie=0x6e6e000000000001,priority=100,in_port=3 actions=output:0: OpenFlow error OFPET_BAD_ACTION/OFPBAC_BAD_OUT_PORT") {
		t.Errorf("error does not name the flow mod: %v", err)
	}
	// The session goes on.
	go func() { errc <- c.Apply(context.Background(), good) }()
	s.read()
	b := s.read()
	s.send(Message{Version: Version13, Type: TypeBarrierReply, XID: b.XID})
	if err := <-errc; err != nil {
		t.Errorf("second Apply: %v", err)
	}
}

// The switch going away ends the session: Done closes, waiting and later
// requests fail with ErrClosed.
func TestConnClosedBySwitch(t *testing.T) {
	c, s, err := connect(t, ovsHello(1))
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- c.Apply(context.Background(), FlowMod{Command: Add, Match: Match{InPort: 1}}) }()
	s.read()
	s.read()
	s.nc.Close()
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed")
	}
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Errorf("waiting Apply: %v", err)
	}
	if err := c.Apply(context.Background(), FlowMod{}); !errors.Is(err, ErrClosed) {
		t.Errorf("later Apply: %v", err)
	}
}

// A switch that never answers the barrier: Apply gives up with its
// context and closes the session, whose state is unknown.
func TestConnApplyTimeout(t *testing.T) {
	c, s, err := connect(t, ovsHello(1))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			if _, err := ReadMessage(s.r); err != nil {
				return
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err = c.Apply(ctx, FlowMod{Command: Add, Match: Match{InPort: 1}})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Apply: %v", err)
	}
	select {
	case <-c.Done():
	case <-time.After(time.Second):
		t.Error("session not closed after the timeout")
	}
}
