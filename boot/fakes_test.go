package boot

import (
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
)

// fakeClock is a clock the test advances; every After call is announced on
// waits so the test knows the client is idle.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []fakeTimer
	waits  chan time.Duration
}

type fakeTimer struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), waits: make(chan time.Duration, 16)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	ch := make(chan time.Time, 1)
	c.timers = append(c.timers, fakeTimer{at: c.now.Add(d), ch: ch})
	c.mu.Unlock()
	c.waits <- d
	return ch
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.timers[:0]
	for _, t := range c.timers {
		if !t.at.After(c.now) {
			t.ch <- c.now
		} else {
			kept = append(kept, t)
		}
	}
	c.timers = kept
}

// sent is one packet the client sent, with where it went and from where.
type sent struct {
	msg  *dhcpv4.DHCPv4
	to   string // "255.255.255.255:67" for broadcasts
	from netip.Addr
}

// fakeServer answers the client in memory through answer, which returns the
// reply or nil to stay silent.
type fakeServer struct {
	mu     sync.Mutex
	answer func(req *dhcpv4.DHCPv4) *dhcpv4.DHCPv4
	log    []sent
	seen   chan sent
}

func newFakeServer() *fakeServer { return &fakeServer{seen: make(chan sent, 64)} }

func (s *fakeServer) setAnswer(fn func(*dhcpv4.DHCPv4) *dhcpv4.DHCPv4) {
	s.mu.Lock()
	s.answer = fn
	s.mu.Unlock()
}

// open is the dhcpClient.open seam.
func (s *fakeServer) open(mac net.HardwareAddr) func(netip.Addr) (*nclient4.Client, error) {
	return func(from netip.Addr) (*nclient4.Client, error) {
		conn := &pipeConn{in: make(chan []byte, 16), closed: make(chan struct{})}
		conn.deliver = func(b []byte, to net.Addr) {
			req, err := dhcpv4.FromBytes(b)
			if err != nil {
				return
			}
			s.mu.Lock()
			answer := s.answer
			rec := sent{msg: req, to: to.String(), from: from}
			s.log = append(s.log, rec)
			s.mu.Unlock()
			s.seen <- rec
			if answer == nil {
				return
			}
			if reply := answer(req); reply != nil {
				conn.in <- reply.ToBytes()
			}
		}
		return nclient4.NewWithConn(conn, mac, nclient4.WithTimeout(time.Minute), nclient4.WithRetry(1))
	}
}

// pipeConn is the client end of an in-memory datagram pipe.
type pipeConn struct {
	in      chan []byte
	deliver func([]byte, net.Addr)
	closed  chan struct{}
	once    sync.Once
}

func (p *pipeConn) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case pkt := <-p.in:
		return copy(b, pkt), &net.UDPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 67}, nil
	case <-p.closed:
		return 0, nil, net.ErrClosed
	}
}

func (p *pipeConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	p.deliver(append([]byte(nil), b...), addr)
	return len(b), nil
}

func (p *pipeConn) Close() error                     { p.once.Do(func() { close(p.closed) }); return nil }
func (p *pipeConn) LocalAddr() net.Addr              { return &net.UDPAddr{Port: 68} }
func (p *pipeConn) SetDeadline(time.Time) error      { return nil }
func (p *pipeConn) SetReadDeadline(time.Time) error  { return nil }
func (p *pipeConn) SetWriteDeadline(time.Time) error { return nil }

// pool is a tiny DHCP server policy: it offers and acknowledges addr with a
// 120 s lease, and NAKs every REQUEST when nak is set.
type pool struct {
	addr   net.IP
	server net.IP
	nak    bool
	extra  []dhcpv4.Modifier
}

func (p *pool) answer(req *dhcpv4.DHCPv4) *dhcpv4.DHCPv4 {
	typ := dhcpv4.MessageTypeAck
	switch {
	case req.MessageType() == dhcpv4.MessageTypeDiscover:
		typ = dhcpv4.MessageTypeOffer
	case p.nak:
		typ = dhcpv4.MessageTypeNak
	}
	mods := []dhcpv4.Modifier{
		dhcpv4.WithMessageType(typ),
		dhcpv4.WithServerIP(p.server),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(p.server)),
	}
	if typ != dhcpv4.MessageTypeNak {
		mods = append(mods, dhcpv4.WithYourIP(p.addr),
			dhcpv4.WithOption(dhcpv4.OptSubnetMask(net.CIDRMask(24, 32))),
			dhcpv4.WithOption(dhcpv4.OptRouter(p.server)),
			dhcpv4.WithOption(dhcpv4.OptIPAddressLeaseTime(120*time.Second)))
	}
	reply, err := dhcpv4.NewReplyFromRequest(req, append(mods, p.extra...)...)
	if err != nil {
		panic(err)
	}
	return reply
}
