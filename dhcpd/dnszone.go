package dhcpd

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"

	"golang.org/x/net/dns/dnsmessage"
)

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
