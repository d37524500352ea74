package dhcpd

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	"golang.org/x/sys/unix"
)

const (
	dnsTTL         = 60   // of local records and the SOA; also the SOA minimum
	dnsMaxUDP      = 1232 // our EDNS payload size (DNS flag day 2020): no IP fragments
	dnsMaxTCPConns = 64
	dnsMaxForwards = 256 // concurrent forwarded misses; more are dropped so clients retry
	dnsTCPIdle     = 10 * time.Second
)

// DNSServer answers DNS for one LAN on its gateway address. Set the fields
// before the first call of any method.
type DNSServer struct {
	Domain    string                  // the LAN's domain without trailing dot, e.g. "lan1.internal"
	Addr      netip.Addr              // the gateway address to listen on
	Port      int                     // 0 means 53 (tests use a high port)
	Device    string                  // when set, sockets are bound to this interface (SO_BINDTODEVICE) so queries arriving on any other interface (an uplink) never reach them
	Allowed   netip.Prefix            // when valid, queries whose source is outside it are dropped silently (defence in depth: never an open resolver)
	Upstreams func() []netip.AddrPort // resolvers to forward to (port 53 usually); called per forward; nil or empty: SERVFAIL for non-local names
	Log       *slog.Logger            // nil: discard
	Timeout   time.Duration           // per upstream attempt; 0 means 1s. Total forward time bounded by ~2*Timeout, then SERVFAIL.
	Now       func() time.Time        // clock for the cache; nil: time.Now

	once     sync.Once
	setupErr error
	log      *slog.Logger
	zone     string // lower-cased Domain with the trailing dot; "" serves no zone
	zoneName dnsmessage.Name
	revZone  string // the in-addr.arpa zone covering Allowed; "" when none
	revName  dnsmessage.Name
	soa      dnsmessage.SOAResource

	mu     sync.RWMutex
	byName map[string]netip.Addr // label -> address
	byAddr map[netip.Addr]string // address -> label, for PTR

	cache dnsCache

	run      sync.Mutex // guards what Start sets up and Close tears down
	ctx      context.Context
	cancel   context.CancelFunc
	udp      *net.UDPConn
	tcp      net.Listener
	conns    map[net.Conn]struct{}
	fwdSlots chan struct{}
	tcpSlots chan struct{}
	wg       sync.WaitGroup
}

// setup derives the zone data once; SetHost and Handle may run before Start.
func (s *DNSServer) setup() {
	s.log = s.Log
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.byName = map[string]netip.Addr{}
	s.byAddr = map[netip.Addr]string{}
	if s.Allowed.IsValid() && s.Allowed.Addr().Is4() && s.Allowed.Bits() >= 8 {
		s.revZone = dnsReverseZone(s.Allowed)
		s.revName, _ = dnsmessage.NewName(s.revZone)
	}
	domain := strings.ToLower(strings.TrimSuffix(s.Domain, "."))
	if domain == "" {
		return
	}
	zone, err1 := dnsmessage.NewName(domain + ".")
	ns, err2 := dnsmessage.NewName("ns." + domain + ".")
	mbox, err3 := dnsmessage.NewName("hostmaster." + domain + ".")
	if err := errors.Join(err1, err2, err3); err != nil {
		s.setupErr = fmt.Errorf("dns domain %q: %w", s.Domain, err)
		return
	}
	s.zone, s.zoneName = domain+".", zone
	s.soa = dnsmessage.SOAResource{NS: ns, MBox: mbox, Serial: 1,
		Refresh: 3600, Retry: 600, Expire: 86400, MinTTL: dnsTTL}
}

// Start binds UDP and TCP on Addr:Port and serves them in goroutines.
func (s *DNSServer) Start() error {
	s.once.Do(s.setup)
	if s.setupErr != nil {
		return s.setupErr
	}
	s.run.Lock()
	defer s.run.Unlock()
	if s.cancel != nil {
		return fmt.Errorf("dns %s: already started", s.Domain)
	}
	if !s.Addr.IsValid() {
		return fmt.Errorf("dns %s: no address to listen on", s.Domain)
	}
	port := s.Port
	if port == 0 {
		port = 53
	}
	addr := netip.AddrPortFrom(s.Addr, uint16(port)).String()
	lc := net.ListenConfig{Control: s.bindToDevice}
	pc, err := lc.ListenPacket(context.Background(), "udp", addr)
	if err != nil {
		return fmt.Errorf("dns %s: listen udp %s: %w", s.Domain, addr, err)
	}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		pc.Close()
		return fmt.Errorf("dns %s: listen tcp %s: %w", s.Domain, addr, err)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.udp, s.tcp = pc.(*net.UDPConn), ln
	s.conns = map[net.Conn]struct{}{}
	s.fwdSlots = make(chan struct{}, dnsMaxForwards)
	s.tcpSlots = make(chan struct{}, dnsMaxTCPConns)
	// One UDP reader taking batches: a second reader on the same socket cost
	// 1.6x the CPU per query on a 2-CPU node (bench/dns.sh), its syscalls
	// making the runtime hand processors back and forth.
	s.wg.Add(2)
	go s.serveUDP(s.udp)
	go s.serveTCP(ln)
	return nil
}

// bindToDevice keeps queries that arrive on any other interface (an uplink)
// away from the sockets, whatever the address they were sent to.
func (s *DNSServer) bindToDevice(network, address string, rc syscall.RawConn) error {
	if s.Device == "" {
		return nil
	}
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, s.Device)
	})
	if err = errors.Join(err, serr); err != nil {
		return fmt.Errorf("bind %s to device %s: %w", network, s.Device, err)
	}
	return nil
}

// Close stops serving, closes the sockets and waits for the goroutines.
func (s *DNSServer) Close() error {
	s.run.Lock()
	if s.cancel == nil {
		s.run.Unlock()
		return nil
	}
	s.cancel()
	s.cancel = nil
	err := errors.Join(s.udp.Close(), s.tcp.Close())
	for c := range s.conns {
		c.Close()
	}
	s.run.Unlock()
	s.wg.Wait()
	if err != nil {
		return fmt.Errorf("dns %s: close: %w", s.Domain, err)
	}
	return nil
}

// goForward forwards q in a goroutine and passes the response (after a
// prefix of that many bytes; nil for none) to send; false when too many
// forwards are in flight.
func (s *DNSServer) goForward(q *dnsQuery, prefix int, send func([]byte)) bool {
	select {
	case s.fwdSlots <- struct{}{}:
	default:
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() { <-s.fwdSlots }()
		send(s.forward(s.ctx, q, make([]byte, prefix, 512)))
	}()
	return true
}

func (s *DNSServer) serveTCP(ln net.Listener) {
	defer s.wg.Done()
	for {
		c, err := ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			time.Sleep(10 * time.Millisecond) // e.g. out of file descriptors
			continue
		}
		select {
		case s.tcpSlots <- struct{}{}:
		default:
			c.Close() // over the limit: refuse rather than queue
			continue
		}
		s.run.Lock()
		if s.ctx.Err() != nil { // Close ran since Accept
			s.run.Unlock()
			c.Close()
			<-s.tcpSlots
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.run.Unlock()
		go s.serveConn(c)
	}
}

// serveConn reads length-framed queries until the client is idle for
// dnsTCPIdle; forwarded answers may overtake later local ones (RFC 7766).
func (s *DNSServer) serveConn(c net.Conn) {
	var pending sync.WaitGroup
	var wmu sync.Mutex
	defer func() {
		pending.Wait()
		s.run.Lock()
		delete(s.conns, c)
		s.run.Unlock()
		c.Close()
		<-s.tcpSlots
		s.wg.Done()
	}()
	src := c.RemoteAddr().(*net.TCPAddr).AddrPort()
	send := func(b []byte) {
		if b == nil {
			return
		}
		binary.BigEndian.PutUint16(b, uint16(len(b)-2))
		wmu.Lock()
		defer wmu.Unlock()
		c.SetWriteDeadline(time.Now().Add(dnsTCPIdle))
		c.Write(b)
	}
	br := bufio.NewReader(c)
	in := make([]byte, 65535)
	out := make([]byte, 2, 512)
	for {
		c.SetReadDeadline(time.Now().Add(dnsTCPIdle))
		var n [2]byte
		if _, err := io.ReadFull(br, n[:]); err != nil {
			return
		}
		msg := in[:binary.BigEndian.Uint16(n[:])]
		if _, err := io.ReadFull(br, msg); err != nil {
			return
		}
		resp, fwd := s.respond(out[:2], msg, src, true)
		if fwd != nil {
			pending.Add(1)
			if !s.goForward(fwd, 2, func(b []byte) { send(b); pending.Done() }) {
				pending.Done()
				resp = s.forward(s.ctx, fwd, out[:2])
			}
		}
		send(resp)
	}
}

func (s *DNSServer) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}
