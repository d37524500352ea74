package dhcpd

import (
	"bufio"
	"bytes"
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
	dnsUDPReaders  = 2
	dnsMaxTCPConns = 64
	dnsMaxForwards = 256 // concurrent forwarded misses; more are dropped so clients retry
	dnsTCPIdle     = 10 * time.Second
)

// DNSServer answers DNS for one LAN on its gateway address.
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

// SetHost makes name.Domain resolve to addr (and addr back to it), replacing
// an older address of name. Names that are not one DNS label, and addresses
// other than IPv4, are ignored.
func (s *DNSServer) SetHost(name string, addr netip.Addr) {
	s.once.Do(s.setup)
	label, addr := strings.ToLower(name), addr.Unmap()
	if !dnsValidLabel(label) || len(label)+1+len(s.zone) > 254 || !addr.Is4() {
		s.log.Debug("dns: host not recorded", "domain", s.Domain, "name", name, "addr", addr)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.byName[label]; ok && old != addr {
		s.unlinkAddr(label, old)
	}
	s.byName[label] = addr
	s.byAddr[addr] = label
}

// RemoveHost forgets name and its address.
func (s *DNSServer) RemoveHost(name string) {
	s.once.Do(s.setup)
	label := strings.ToLower(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if addr, ok := s.byName[label]; ok {
		delete(s.byName, label)
		s.unlinkAddr(label, addr)
	}
}

// unlinkAddr points addr's PTR away from label: to another name that still
// has addr (a member name and its DHCP hostname may share one), or nowhere.
func (s *DNSServer) unlinkAddr(label string, addr netip.Addr) {
	if s.byAddr[addr] != label {
		return
	}
	delete(s.byAddr, addr)
	for other, a := range s.byName {
		if a == addr && other != label {
			s.byAddr[addr] = other
			return
		}
	}
}

func dnsValidLabel(l string) bool {
	if len(l) == 0 || len(l) > 63 {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
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
	s.wg.Add(dnsUDPReaders + 1)
	for range dnsUDPReaders {
		go s.serveUDP(s.udp)
	}
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

// serveUDP answers local names and cache hits inline; misses are forwarded
// in their own goroutine so a slow upstream never delays local answers.
func (s *DNSServer) serveUDP(conn *net.UDPConn) {
	defer s.wg.Done()
	in := make([]byte, 65535)
	out := make([]byte, 0, dnsMaxUDP)
	for {
		n, src, err := conn.ReadFromUDPAddrPort(in)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil || src.Port() == 0 {
			continue
		}
		resp, fwd := s.respond(out[:0], in[:n], src, false)
		if fwd != nil {
			s.goForward(fwd, 0, func(b []byte) {
				if b != nil {
					conn.WriteToUDPAddrPort(b, src)
				}
			})
			continue
		}
		if resp != nil {
			conn.WriteToUDPAddrPort(resp, src)
			out = resp[:0]
		}
	}
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
		if s.ctx.Err() != nil {
			s.run.Unlock()
			c.Close()
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

// dnsQuery is what an answer depends on, copied out of the request so a
// forward can outlive the read buffer.
type dnsQuery struct {
	id    uint16
	rd    bool
	q     dnsmessage.Question // as asked: answers echo its case
	edns  bool
	limit int    // the largest response the client takes
	key   []byte // the cache key (dnsKey), set for a forward
}

// dnsReply is a response made here rather than taken from the cache.
type dnsReply struct {
	rcode      dnsmessage.RCode // may be extended (BADVERS)
	opcode     dnsmessage.OpCode
	aa         bool
	noQuestion bool
	a          netip.Addr       // A answer when valid
	ptr        dnsmessage.Name  // PTR answer when Length > 0
	soa        *dnsmessage.Name // zone whose SOA goes in the authority section, or the answer with soaAnswer
	soaAnswer  bool
}

const (
	dnsBadVers  = dnsmessage.RCode(16)
	dnsTypeIXFR = dnsmessage.Type(251)
	dnsKeyMax   = 255 + 4
)

var dnsArpa = []byte(".in-addr.arpa.")

// Handle answers one query from src: locally, from the cache or through the
// upstreams. Nil means send nothing.
func (s *DNSServer) Handle(ctx context.Context, query []byte, src netip.AddrPort, tcp bool) []byte {
	resp, fwd := s.respond(nil, query, src, tcp)
	if fwd != nil {
		return s.forward(ctx, fwd, nil)
	}
	return resp
}

// respond appends the response to out, unless it needs the upstreams: then
// it returns the query to forward.
func (s *DNSServer) respond(out, msg []byte, src netip.AddrPort, tcp bool) ([]byte, *dnsQuery) {
	s.once.Do(s.setup)
	if s.Allowed.IsValid() && !s.Allowed.Contains(src.Addr().Unmap()) {
		return nil, nil
	}
	var p dnsmessage.Parser
	h, err := p.Start(msg)
	if err != nil || h.Response {
		return nil, nil
	}
	q := dnsQuery{id: h.ID, rd: h.RecursionDesired, limit: 512}
	if tcp {
		q.limit = 65535
	}
	if h.OpCode != 0 {
		return s.build(out, &q, &dnsReply{rcode: dnsmessage.RCodeNotImplemented, opcode: h.OpCode, noQuestion: true}), nil
	}
	if rcode := q.parse(&p); rcode != dnsmessage.RCodeSuccess {
		return s.build(out, &q, &dnsReply{rcode: rcode, noQuestion: rcode == dnsmessage.RCodeFormatError}), nil
	}
	var kbuf [dnsKeyMax]byte
	key := dnsKey(kbuf[:0], &q.q)
	if r, ok := s.local(&q, key[:q.q.Name.Length]); ok {
		return s.build(out, &q, &r), nil
	}
	if q.q.Type == dnsmessage.TypeAXFR || q.q.Type == dnsTypeIXFR {
		return s.build(out, &q, &dnsReply{rcode: dnsmessage.RCodeRefused}), nil
	}
	now := s.now()
	if e := s.cache.get(key, now); e != nil {
		return e.appendTo(out, &q, now), nil
	}
	fwd := q
	fwd.key = append([]byte(nil), key...)
	return nil, &fwd
}

// parse reads the one question and the EDNS OPT record, if any.
func (q *dnsQuery) parse(p *dnsmessage.Parser) dnsmessage.RCode {
	question, err := p.Question()
	if err != nil {
		return dnsmessage.RCodeFormatError
	}
	if _, err := p.Question(); err != dnsmessage.ErrSectionDone {
		return dnsmessage.RCodeFormatError
	}
	if p.SkipAllAnswers() != nil || p.SkipAllAuthorities() != nil {
		return dnsmessage.RCodeFormatError
	}
	var version uint32
	for {
		h, err := p.AdditionalHeader()
		if err == dnsmessage.ErrSectionDone {
			break
		}
		if err != nil {
			return dnsmessage.RCodeFormatError
		}
		if h.Type == dnsmessage.TypeOPT {
			if q.edns {
				return dnsmessage.RCodeFormatError // RFC 6891 6.1.1
			}
			q.edns = true
			q.limit = max(q.limit, min(int(h.Class), dnsMaxUDP))
			version = h.TTL >> 16 & 0xff
		}
		if p.SkipAdditional() != nil {
			return dnsmessage.RCodeFormatError
		}
	}
	q.q = question
	if version != 0 {
		return dnsBadVers
	}
	return dnsmessage.RCodeSuccess
}

// dnsKey appends the cache key of q: its lower-cased name, type and class.
func dnsKey(buf []byte, q *dnsmessage.Question) []byte {
	for _, c := range q.Name.Data[:q.Name.Length] {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf = append(buf, c)
	}
	buf = binary.BigEndian.AppendUint16(buf, uint16(q.Type))
	return binary.BigEndian.AppendUint16(buf, uint16(q.Class))
}

// local answers names of the LAN's own zones (Domain and the reverse zone
// of Allowed), which must never reach an upstream.
func (s *DNSServer) local(q *dnsQuery, lname []byte) (r dnsReply, ok bool) {
	switch {
	case s.zone != "" && dnsInZone(lname, s.zone):
		r, ok = s.localName(q, lname), true
	case bytes.HasSuffix(lname, dnsArpa):
		r, ok = s.localReverse(q, lname)
	}
	if ok && q.q.Class != dnsmessage.ClassINET && q.q.Class != dnsmessage.ClassANY {
		r = dnsReply{rcode: dnsmessage.RCodeRefused}
	}
	return r, ok
}

func (s *DNSServer) localName(q *dnsQuery, lname []byte) dnsReply {
	r := dnsReply{aa: true, soa: &s.zoneName}
	if len(lname) == len(s.zone) {
		// The apex exists: NXDOMAIN here would deny every name below it (RFC 8020).
		r.soaAnswer = q.q.Type == dnsmessage.TypeSOA || q.q.Type == dnsmessage.TypeALL
		return r
	}
	label := lname[:len(lname)-len(s.zone)-1]
	s.mu.RLock()
	addr, ok := s.byName[string(label)]
	s.mu.RUnlock()
	switch {
	case !ok:
		r.rcode = dnsmessage.RCodeNameError
	case q.q.Type == dnsmessage.TypeA || q.q.Type == dnsmessage.TypeALL:
		r.a, r.soa = addr, nil
	}
	return r
}

// localReverse answers PTR for recorded addresses and NXDOMAIN for the rest
// of Allowed; other reverse names go upstream.
func (s *DNSServer) localReverse(q *dnsQuery, lname []byte) (dnsReply, bool) {
	r := dnsReply{aa: true, soa: &s.revName}
	isPTR := q.q.Type == dnsmessage.TypePTR || q.q.Type == dnsmessage.TypeALL
	if addr, ok := dnsParseReverse(lname); ok {
		inLAN := s.revZone != "" && s.Allowed.Contains(addr)
		s.mu.RLock()
		label, recorded := s.byAddr[addr]
		s.mu.RUnlock()
		switch {
		case recorded && s.zone != "" && isPTR:
			r.ptr, r.soa = dnsJoinName(label, s.zone), nil
		case recorded && s.zone != "" && !inLAN:
			zone, _ := dnsmessage.NewName(dnsReverseZone(netip.PrefixFrom(addr, 24)))
			r.soa = &zone
		case recorded && s.zone != "":
		case inLAN:
			r.rcode = dnsmessage.RCodeNameError
		default:
			return r, false
		}
		return r, true
	}
	if s.revZone == "" || !dnsInZone(lname, s.revZone) {
		return r, false
	}
	if len(lname) == len(s.revZone) {
		r.soaAnswer = q.q.Type == dnsmessage.TypeSOA || q.q.Type == dnsmessage.TypeALL
		return r, true
	}
	if s.Allowed.Bits()%8 != 0 {
		return r, false // the zone is wider than Allowed
	}
	r.rcode = dnsmessage.RCodeNameError
	return r, true
}

// dnsInZone reports whether name (lower-cased, with the trailing dot) is
// zone or below it.
func dnsInZone(name []byte, zone string) bool {
	if len(name) == len(zone) {
		return string(name) == zone
	}
	n := len(name) - len(zone)
	return n > 0 && name[n-1] == '.' && string(name[n:]) == zone
}

// dnsParseReverse reads "d.c.b.a.in-addr.arpa." as a.b.c.d.
func dnsParseReverse(name []byte) (netip.Addr, bool) {
	rest, ok := bytes.CutSuffix(name, dnsArpa)
	if !ok {
		return netip.Addr{}, false
	}
	var ip [4]byte
	for i := 3; i >= 0; i-- {
		label := rest
		if dot := bytes.IndexByte(rest, '.'); dot >= 0 {
			label, rest = rest[:dot], rest[dot+1:]
		} else {
			rest = nil
		}
		if (rest == nil) != (i == 0) || len(label) == 0 || len(label) > 3 || len(label) > 1 && label[0] == '0' {
			return netip.Addr{}, false
		}
		n := 0
		for _, c := range label {
			if c < '0' || c > '9' {
				return netip.Addr{}, false
			}
			n = n*10 + int(c-'0')
		}
		if n > 255 {
			return netip.Addr{}, false
		}
		ip[i] = byte(n)
	}
	return netip.AddrFrom4(ip), true
}

// dnsReverseZone names the in-addr.arpa zone of the whole octets of p.
func dnsReverseZone(p netip.Prefix) string {
	a := p.Masked().Addr().As4()
	var b strings.Builder
	for i := p.Bits()/8 - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "%d.", a[i])
	}
	return b.String() + "in-addr.arpa."
}

func dnsJoinName(label, zone string) dnsmessage.Name {
	var n dnsmessage.Name
	n.Length = uint8(copy(n.Data[copy(n.Data[:], label+"."):], zone) + len(label) + 1)
	return n
}

// build appends r for q to out; over the client's limit it appends the
// truncated form (TC, no records) so the client retries over TCP.
func (s *DNSServer) build(out []byte, q *dnsQuery, r *dnsReply) []byte {
	start := len(out)
	msg, err := s.encode(out, q, r, false)
	if err == nil && len(msg)-start > q.limit {
		msg, err = s.encode(out[:start], q, r, true)
	}
	if err != nil {
		return nil // not reached: every name here was parsed or validated
	}
	return msg
}

func (s *DNSServer) encode(out []byte, q *dnsQuery, r *dnsReply, truncate bool) ([]byte, error) {
	b := dnsmessage.NewBuilder(out, dnsmessage.Header{ID: q.id, Response: true, OpCode: r.opcode,
		Authoritative: r.aa, Truncated: truncate, RecursionDesired: q.rd, RecursionAvailable: true,
		RCode: r.rcode & 0xf})
	err := b.StartQuestions()
	if err == nil && !r.noQuestion {
		err = b.Question(q.q)
	}
	if err == nil {
		err = b.StartAnswers()
	}
	if err == nil && !truncate {
		err = s.encodeRecords(&b, q, r)
	}
	if err == nil {
		err = b.StartAdditionals()
	}
	if err == nil && q.edns {
		var h dnsmessage.ResourceHeader
		h.SetEDNS0(dnsMaxUDP, r.rcode, false)
		err = b.OPTResource(h, dnsmessage.OPTResource{})
	}
	if err != nil {
		return nil, err
	}
	return b.Finish()
}

func (s *DNSServer) encodeRecords(b *dnsmessage.Builder, q *dnsQuery, r *dnsReply) error {
	h := dnsmessage.ResourceHeader{Name: q.q.Name, Class: dnsmessage.ClassINET, TTL: dnsTTL}
	var err error
	switch {
	case r.a.IsValid():
		err = b.AResource(h, dnsmessage.AResource{A: r.a.As4()})
	case r.ptr.Length > 0:
		err = b.PTRResource(h, dnsmessage.PTRResource{PTR: r.ptr})
	case r.soa != nil && r.soaAnswer:
		err = b.SOAResource(dnsmessage.ResourceHeader{Name: *r.soa, Class: dnsmessage.ClassINET, TTL: dnsTTL}, s.soa)
	}
	if err == nil {
		err = b.StartAuthorities()
	}
	if err == nil && r.soa != nil && !r.soaAnswer {
		err = b.SOAResource(dnsmessage.ResourceHeader{Name: *r.soa, Class: dnsmessage.ClassINET, TTL: dnsTTL}, s.soa)
	}
	return err
}

func (s *DNSServer) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}
