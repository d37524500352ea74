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
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

const dnsTypeTSIG = dnsmessage.Type(250)

type dnsFlight struct {
	done  chan struct{}
	entry *dnsEntry // nil: no upstream answered
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
			s.logForward(ctx, question, up, "rcode", dnsmessage.RCode(e.msg[3]&0xf), "expires", e.expires)
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
		ans, err = dnsCopySection(&p, &b, p.AnswerHeader, false)
	}
	if err == nil {
		err = b.StartAuthorities()
	}
	if err == nil {
		auth, err = dnsCopySection(&p, &b, p.AuthorityHeader, true)
	}
	if err == nil {
		err = b.StartAdditionals()
	}
	if err == nil {
		_, err = dnsCopySection(&p, &b, p.AdditionalHeader, true)
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

// dnsCopySection copies one section's records from p to b. Outside the
// answer section (lenient) a record dnsmessage cannot decode, such as an SOA
// whose mailbox label holds a dot, is left out rather than failing it all.
func dnsCopySection(p *dnsmessage.Parser, b *dnsmessage.Builder, next func() (dnsmessage.ResourceHeader, error), lenient bool) (dnsSection, error) {
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
		copied, err := dnsCopyRecord(p, b, h, &sec)
		if err != nil && lenient {
			if _, skip := p.UnknownResource(); skip == nil {
				continue // undecoded: skip it (after a decoded one, this fails)
			}
		}
		if err != nil {
			return sec, err
		}
		if !copied {
			continue
		}
		if sec.n == 0 || h.TTL < sec.minTTL {
			sec.minTTL = h.TTL
		}
		sec.n++
	}
}

// dnsCopyRecord copies the record whose header is h, decoding the types
// dnsmessage knows, so names compressed in their data (RFC 3597 section 4)
// are expanded and the result always parses. OPT and TSIG belong to the
// upstream exchange only: they are dropped.
func dnsCopyRecord(p *dnsmessage.Parser, b *dnsmessage.Builder, h dnsmessage.ResourceHeader, sec *dnsSection) (copied bool, err error) {
	switch h.Type {
	case dnsmessage.TypeA:
		err = dnsCopy(h, p.AResource, b.AResource)
	case dnsmessage.TypeAAAA:
		err = dnsCopy(h, p.AAAAResource, b.AAAAResource)
	case dnsmessage.TypeCNAME:
		err = dnsCopy(h, p.CNAMEResource, b.CNAMEResource)
	case dnsmessage.TypeNS:
		err = dnsCopy(h, p.NSResource, b.NSResource)
	case dnsmessage.TypePTR:
		err = dnsCopy(h, p.PTRResource, b.PTRResource)
	case dnsmessage.TypeMX:
		err = dnsCopy(h, p.MXResource, b.MXResource)
	case dnsmessage.TypeSRV:
		err = dnsCopy(h, p.SRVResource, b.SRVResource)
	case dnsmessage.TypeTXT:
		err = dnsCopy(h, p.TXTResource, b.TXTResource)
	case dnsmessage.TypeSVCB:
		err = dnsCopy(h, p.SVCBResource, b.SVCBResource)
	case dnsmessage.TypeHTTPS:
		err = dnsCopy(h, p.HTTPSResource, b.HTTPSResource)
	case dnsmessage.TypeSOA:
		var r dnsmessage.SOAResource
		if r, err = p.SOAResource(); err == nil {
			if err = b.SOAResource(h, r); err == nil {
				sec.soa, sec.soaTTL = true, min(h.TTL, r.MinTTL)
			}
		}
	case dnsmessage.TypeOPT, dnsTypeTSIG, 3, 4, 7, 8, 9, 14: // and obsolete types with names
		_, err = p.UnknownResource()
		return false, err
	default:
		err = dnsCopy(h, p.UnknownResource, b.UnknownResource)
	}
	return err == nil, err
}

// dnsCopy decodes one record with parse and encodes it with build.
func dnsCopy[R any](h dnsmessage.ResourceHeader, parse func() (R, error), build func(dnsmessage.ResourceHeader, R) error) error {
	r, err := parse()
	if err != nil {
		return err
	}
	return build(h, r)
}
