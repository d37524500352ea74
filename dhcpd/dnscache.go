package dhcpd

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

const (
	dnsCacheEntries = 10000
	dnsCacheBytes   = 8 << 20
	dnsMaxTTL       = 86400    // positive answers
	dnsMaxNegTTL    = 3 * 3600 // negative answers (RFC 2308 suggests 1-3 hours)
	dnsNoSOATTL     = 30       // negative answers without an SOA to say how long
	dnsEvictSample  = 8
	dnsTypeTSIG     = dnsmessage.Type(250)
)

// dnsEntry is an upstream answer as it is served to any client: question
// lower-cased, no OPT; appendTo patches ID, flags, question case and TTLs.
type dnsEntry struct {
	msg     []byte
	ttlOffs []uint16 // where each record's TTL is in msg
	ttls    []uint32 // and its value when stored
	stored  time.Time
	expires time.Time
}

// dnsCache holds forwarded answers by dnsKey, and the forwards in flight so
// identical concurrent misses share one upstream exchange.
type dnsCache struct {
	mu      sync.RWMutex
	entries map[string]*dnsEntry
	bytes   int

	flightMu sync.Mutex
	flights  map[string]*dnsFlight
}

type dnsFlight struct {
	done  chan struct{}
	entry *dnsEntry // nil: no upstream answered
}

func (c *dnsCache) get(key []byte, now time.Time) *dnsEntry {
	c.mu.RLock()
	e := c.entries[string(key)]
	c.mu.RUnlock()
	if e == nil || !now.Before(e.expires) {
		return nil
	}
	return e
}

// put stores e; when over the bounds it evicts, from a small random sample,
// the entries that expire first (expired ones included).
func (c *dnsCache) put(key string, e *dnsEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[string]*dnsEntry{}
	}
	if old := c.entries[key]; old != nil {
		c.bytes -= len(old.msg)
	}
	c.entries[key] = e
	c.bytes += len(e.msg)
	for len(c.entries) > dnsCacheEntries || c.bytes > dnsCacheBytes {
		var victim string
		var first time.Time
		n := 0
		for k, e := range c.entries {
			if n == 0 || e.expires.Before(first) {
				victim, first = k, e.expires
			}
			if n++; n == dnsEvictSample {
				break
			}
		}
		c.bytes -= len(c.entries[victim].msg)
		delete(c.entries, victim)
	}
}

// appendTo appends e as the answer to q, aged by the time since it was stored.
func (e *dnsEntry) appendTo(out []byte, q *dnsQuery, now time.Time) []byte {
	start := len(out)
	out = append(out, e.msg...)
	m := out[start:]
	binary.BigEndian.PutUint16(m, q.id)
	m[2] = 0x80 // QR, opcode QUERY, not authoritative
	if q.rd {
		m[2] |= 0x01
	}
	m[3] = 0x80 | m[3]&0x0f // RA, the stored rcode
	// The stored question is q's lower-cased, so only letters change.
	for i, c := range q.q.Name.Data[:q.q.Name.Length] {
		if c != '.' {
			m[13+i] = c
		}
	}
	age := uint32(max(now.Sub(e.stored), 0) / time.Second)
	for i, off := range e.ttlOffs {
		binary.BigEndian.PutUint32(m[off:], e.ttls[i]-min(age, e.ttls[i]))
	}
	if q.edns {
		out = append(out, 0, 0, byte(dnsmessage.TypeOPT), byte(dnsMaxUDP>>8), byte(dnsMaxUDP&0xff), 0, 0, 0, 0, 0, 0)
		m = out[start:]
		binary.BigEndian.PutUint16(m[10:], binary.BigEndian.Uint16(m[10:])+1)
	}
	if len(m) <= q.limit {
		return out
	}
	// Too big for the client: header, question (and OPT) with TC set.
	qend := 12 + int(q.q.Name.Length) + 1 + 4
	if q.q.Name.Length == 1 {
		qend-- // the root is one zero byte
	}
	out = out[:start+qend]
	m = out[start:]
	m[2] |= 0x02
	clear(m[6:12])
	if q.edns {
		out = append(out, 0, 0, byte(dnsmessage.TypeOPT), byte(dnsMaxUDP>>8), byte(dnsMaxUDP&0xff), 0, 0, 0, 0, 0, 0)
		out[start+11] = 1
	}
	return out
}

// forward answers q through the cache or the upstreams; SERVFAIL when no
// upstream answered in time.
func (s *DNSServer) forward(ctx context.Context, q *dnsQuery, out []byte) []byte {
	if e := s.resolve(ctx, q); e != nil {
		return e.appendTo(out, q, s.now())
	}
	return s.build(out, q, &dnsReply{rcode: dnsmessage.RCodeServerFailure})
}

// resolve returns the entry for q, asking the upstreams once for all the
// identical queries that miss at the same time.
func (s *DNSServer) resolve(ctx context.Context, q *dnsQuery) *dnsEntry {
	c := &s.cache
	key := string(q.key)
	c.flightMu.Lock()
	if e := c.get(q.key, s.now()); e != nil {
		c.flightMu.Unlock()
		return e
	}
	if f, ok := c.flights[key]; ok {
		c.flightMu.Unlock()
		select {
		case <-f.done:
			return f.entry
		case <-ctx.Done():
			return nil
		}
	}
	if c.flights == nil {
		c.flights = map[string]*dnsFlight{}
	}
	f := &dnsFlight{done: make(chan struct{})}
	c.flights[key] = f
	c.flightMu.Unlock()

	f.entry = s.exchange(ctx, q)
	if f.entry != nil && f.entry.expires.After(f.entry.stored) {
		c.put(key, f.entry)
	}
	c.flightMu.Lock()
	delete(c.flights, key)
	c.flightMu.Unlock()
	close(f.done)
	return f.entry
}

// exchange asks the upstreams in order until one answers NOERROR or
// NXDOMAIN, within twice the Timeout in all.
func (s *DNSServer) exchange(ctx context.Context, q *dnsQuery) *dnsEntry {
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, 2*timeout)
	defer cancel()
	var ups []netip.AddrPort
	if s.Upstreams != nil {
		ups = s.Upstreams()
	}
	question := dnsmessage.Question{Type: q.q.Type, Class: q.q.Class}
	question.Name.Length = uint8(copy(question.Name.Data[:], q.key[:len(q.key)-4]))
	id := uint16(rand.Uint32())
	req, err := dnsUpstreamQuery(id, question)
	if err != nil {
		return nil // not reached: the name was parsed
	}
	err = errors.New("no upstreams")
	for _, up := range ups {
		var resp []byte
		resp, err = dnsExchange(ctx, up, req, timeout)
		var e *dnsEntry
		if err == nil {
			e, err = dnsNewEntry(resp, question, s.now())
		}
		if err == nil {
			s.logForward(ctx, question, up, "expires", e.expires)
			return e
		}
		err = fmt.Errorf("upstream %s: %w", up, err)
		if ctx.Err() != nil {
			break
		}
	}
	s.logForward(ctx, question, netip.AddrPort{}, "err", err)
	return nil
}

func (s *DNSServer) logForward(ctx context.Context, q dnsmessage.Question, up netip.AddrPort, args ...any) {
	if !s.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	args = append([]any{"domain", s.Domain, "name", q.Name.String(), "type", q.Type, "upstream", up}, args...)
	s.log.Debug("dns forward", args...)
}

func dnsUpstreamQuery(id uint16, q dnsmessage.Question) ([]byte, error) {
	b := dnsmessage.NewBuilder(make([]byte, 0, 64), dnsmessage.Header{ID: id, RecursionDesired: true})
	err := b.StartQuestions()
	if err == nil {
		err = b.Question(q)
	}
	if err == nil {
		err = b.StartAdditionals()
	}
	if err == nil {
		var h dnsmessage.ResourceHeader
		h.SetEDNS0(dnsMaxUDP, dnsmessage.RCodeSuccess, false)
		err = b.OPTResource(h, dnsmessage.OPTResource{})
	}
	if err != nil {
		return nil, err
	}
	return b.Finish()
}

// dnsExchange sends req to up over UDP, and again over TCP when the answer
// was truncated.
func dnsExchange(ctx context.Context, up netip.AddrPort, req []byte, timeout time.Duration) ([]byte, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", up.String())
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	conn.SetDeadline(time.Now().Add(timeout))
	if _, err := conn.Write(req); err != nil {
		return nil, err
	}
	buf := make([]byte, 4096)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return nil, err
		}
		if !dnsMatches(buf[:n], req) {
			continue // stale or forged: keep waiting for ours
		}
		if buf[2]&0x02 == 0 {
			return buf[:n], nil
		}
		return dnsExchangeTCP(ctx, up, req, timeout)
	}
}

func dnsExchangeTCP(ctx context.Context, up netip.AddrPort, req []byte, timeout time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", up.String())
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := conn.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(req))), req...)); err != nil {
		return nil, err
	}
	br := bufio.NewReader(conn)
	var n [2]byte
	if _, err := io.ReadFull(br, n[:]); err != nil {
		return nil, err
	}
	resp := make([]byte, binary.BigEndian.Uint16(n[:]))
	if _, err := io.ReadFull(br, resp); err != nil {
		return nil, err
	}
	if !dnsMatches(resp, req) {
		return nil, errors.New("tcp answer does not match the query")
	}
	return resp, nil
}

// dnsMatches reports whether resp answers req: same ID, QR set, and the
// same question, the name up to case (req's question ends right before its
// 11-byte OPT).
func dnsMatches(resp, req []byte) bool {
	qend := len(req) - 11
	if len(resp) < qend || resp[0] != req[0] || resp[1] != req[1] || resp[2]&0x80 == 0 ||
		binary.BigEndian.Uint16(resp[4:]) != 1 || string(resp[qend-4:qend]) != string(req[qend-4:qend]) {
		return false
	}
	for i := 12; i < qend-4; i++ {
		if c := resp[i]; c != req[i] && !('A' <= c && c <= 'Z' && c+'a'-'A' == req[i]) {
			return false
		}
	}
	return true
}

// dnsNewEntry rebuilds an upstream answer to q as a cache entry. Only
// NOERROR and NXDOMAIN are answers; anything else means the next upstream.
func dnsNewEntry(resp []byte, q dnsmessage.Question, now time.Time) (*dnsEntry, error) {
	var p dnsmessage.Parser
	h, err := p.Start(resp)
	if err != nil {
		return nil, err
	}
	if h.RCode != dnsmessage.RCodeSuccess && h.RCode != dnsmessage.RCodeNameError {
		return nil, fmt.Errorf("answered %v", h.RCode)
	}
	b := dnsmessage.NewBuilder(make([]byte, 0, len(resp)), dnsmessage.Header{Response: true, RCode: h.RCode})
	b.EnableCompression()
	var ans, auth dnsSection
	err = p.SkipAllQuestions()
	if err == nil {
		err = b.StartQuestions()
	}
	if err == nil {
		err = b.Question(q)
	}
	if err == nil {
		err = b.StartAnswers()
	}
	if err == nil {
		ans, err = dnsCopySection(&p, &b, p.AnswerHeader)
	}
	if err == nil {
		err = b.StartAuthorities()
	}
	if err == nil {
		auth, err = dnsCopySection(&p, &b, p.AuthorityHeader)
	}
	if err == nil {
		err = b.StartAdditionals()
	}
	if err == nil {
		_, err = dnsCopySection(&p, &b, p.AdditionalHeader)
	}
	e := &dnsEntry{stored: now}
	if err == nil {
		e.msg, err = b.Finish()
	}
	if err == nil && len(e.msg) > 65535-11 {
		err = errors.New("answer too long")
	}
	if err == nil {
		err = e.findTTLs()
	}
	if err != nil {
		return nil, fmt.Errorf("bad answer: %w", err)
	}
	ttl := uint32(dnsNoSOATTL)
	switch {
	case h.RCode == dnsmessage.RCodeSuccess && ans.n > 0:
		ttl = min(ans.minTTL, dnsMaxTTL)
	case auth.soa:
		ttl = min(auth.soaTTL, dnsMaxNegTTL) // RFC 2308 section 5
	}
	e.expires = now.Add(time.Duration(ttl) * time.Second)
	return e, nil
}

// dnsSection sums up the records dnsCopySection copied.
type dnsSection struct {
	n      int
	minTTL uint32
	soa    bool
	soaTTL uint32 // min(SOA TTL, SOA minimum): how long a negative answer lasts
}

// dnsCopySection copies one section's records from p to b, decoding those
// whose data may hold compressed names (RFC 3597 section 4), dropping OPT
// and TSIG, which belong to the upstream exchange only.
func dnsCopySection(p *dnsmessage.Parser, b *dnsmessage.Builder, next func() (dnsmessage.ResourceHeader, error)) (dnsSection, error) {
	var sec dnsSection
	for {
		h, err := next()
		if err == dnsmessage.ErrSectionDone {
			return sec, nil
		}
		if err != nil {
			return sec, err
		}
		if h.TTL >= 1<<31 {
			h.TTL = 0 // RFC 2181 section 8
		}
		h.TTL = min(h.TTL, dnsMaxTTL)
		switch h.Type {
		case dnsmessage.TypeCNAME:
			var r dnsmessage.CNAMEResource
			if r, err = p.CNAMEResource(); err == nil {
				err = b.CNAMEResource(h, r)
			}
		case dnsmessage.TypeNS:
			var r dnsmessage.NSResource
			if r, err = p.NSResource(); err == nil {
				err = b.NSResource(h, r)
			}
		case dnsmessage.TypePTR:
			var r dnsmessage.PTRResource
			if r, err = p.PTRResource(); err == nil {
				err = b.PTRResource(h, r)
			}
		case dnsmessage.TypeMX:
			var r dnsmessage.MXResource
			if r, err = p.MXResource(); err == nil {
				err = b.MXResource(h, r)
			}
		case dnsmessage.TypeSRV:
			var r dnsmessage.SRVResource
			if r, err = p.SRVResource(); err == nil {
				err = b.SRVResource(h, r)
			}
		case dnsmessage.TypeSOA:
			var r dnsmessage.SOAResource
			if r, err = p.SOAResource(); err == nil {
				err = b.SOAResource(h, r)
				sec.soa, sec.soaTTL = true, min(h.TTL, r.MinTTL)
			}
		case dnsmessage.TypeOPT, dnsTypeTSIG, 3, 4, 7, 8, 9, 14: // and obsolete types with names
			_, err = p.UnknownResource()
			if err != nil {
				return sec, err
			}
			continue
		default:
			var r dnsmessage.UnknownResource
			if r, err = p.UnknownResource(); err == nil {
				err = b.UnknownResource(h, r)
			}
		}
		if err != nil {
			return sec, err
		}
		if sec.n == 0 || h.TTL < sec.minTTL {
			sec.minTTL = h.TTL
		}
		sec.n++
	}
}

// findTTLs notes where each record's TTL is, so a hit only patches bytes.
func (e *dnsEntry) findTTLs() error {
	m := e.msg
	count := func(i int) int { return int(binary.BigEndian.Uint16(m[i:])) }
	off := 12
	for range count(4) {
		if off = dnsSkipName(m, off); off < 0 {
			return errors.New("bad question")
		}
		off += 4
	}
	for range count(6) + count(8) + count(10) {
		if off = dnsSkipName(m, off); off < 0 || off+10 > len(m) {
			return errors.New("bad record")
		}
		e.ttlOffs = append(e.ttlOffs, uint16(off+4))
		e.ttls = append(e.ttls, binary.BigEndian.Uint32(m[off+4:]))
		off += 10 + count(off+8)
	}
	return nil
}

// dnsSkipName returns the offset after the name at off, or -1.
func dnsSkipName(m []byte, off int) int {
	for off < len(m) {
		switch c := int(m[off]); {
		case c == 0:
			return off + 1
		case c&0xc0 == 0xc0:
			return off + 2
		default:
			off += 1 + c
		}
	}
	return -1
}
