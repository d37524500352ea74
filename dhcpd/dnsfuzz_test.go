package dhcpd

import (
	"context"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// FuzzDNSHandle feeds arbitrary bytes to Handle: it must not panic, and
// what it answers must parse, carry the query's ID and fit a UDP client.
func FuzzDNSHandle(f *testing.F) {
	for _, q := range []struct {
		name string
		typ  dnsmessage.Type
		edns int
	}{
		{"web.lan.test.", dnsmessage.TypeA, 0},
		{"WEB.lan.test.", dnsmessage.TypeAAAA, 1232},
		{"nope.lan.test.", dnsmessage.TypeA, 4096},
		{"lan.test.", dnsmessage.TypeSOA, 0},
		{"5.0.0.10.in-addr.arpa.", dnsmessage.TypePTR, 0},
		{"9.0.0.10.in-addr.arpa.", dnsmessage.TypePTR, 512},
		{"example.org.", dnsmessage.TypeA, 0},
	} {
		f.Add(dnsTestQuery(f, 1, q.name, q.typ, q.edns), false)
	}
	f.Add([]byte{0, 1, 0x28, 0, 0, 1, 0, 0, 0, 0, 0, 0}, true) // UPDATE, no question
	s := dnsTestServer(f)
	src := netip.MustParseAddrPort("10.0.0.9:1000")
	f.Fuzz(func(t *testing.T, query []byte, tcp bool) {
		resp := s.Handle(context.Background(), query, src, tcp)
		if resp == nil {
			return
		}
		var m dnsmessage.Message
		if err := m.Unpack(resp); err != nil {
			t.Fatalf("response does not parse: %v\n% x", err, resp)
		}
		if binary.BigEndian.Uint16(resp) != binary.BigEndian.Uint16(query) || !m.Response {
			t.Fatalf("response is not one to the query:\n% x", resp)
		}
		if !tcp && len(resp) > dnsMaxUDP {
			t.Fatalf("%d-byte UDP response", len(resp))
		}
	})
}

// FuzzDNSUpstreamAnswer feeds arbitrary upstream answers to the cache: an
// accepted one must be served as a message that parses.
func FuzzDNSUpstreamAnswer(f *testing.F) {
	q := dnsmessage.Question{Name: dnsmessage.MustNewName("www.example.org."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}
	for _, answer := range []func(dnsmessage.Question) dnsmessage.Message{dnsAnswerA(3, 60), dnsAnswerNX(60, 30)} {
		m := answer(q)
		m.Response, m.Questions = true, []dnsmessage.Question{q}
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	// An HTTPS record too short for its priority, in the authority section.
	f.Add([]byte("\x00\x07\x80\x80\x00\x01\x00\x00\x00\x01\x00\x00\x03www\x07example\x03org\x00\x00\x01\x00\x01" +
		"\x00\x00\x41\x30\x30\x00\x01\x51\x76\x00\x00"))
	query := &dnsQuery{id: 7, q: q, limit: 512}
	now := time.Unix(1e9, 0)
	f.Fuzz(func(t *testing.T, answer []byte) {
		e, err := dnsNewEntry(answer, q, now)
		if err != nil {
			return
		}
		for _, edns := range []bool{false, true} {
			query.edns = edns
			resp := e.appendTo(nil, query, now.Add(10*time.Second))
			var m dnsmessage.Message
			if err := m.Unpack(resp); err != nil {
				t.Fatalf("cached answer does not parse: %v\n% x", err, resp)
			}
			if len(resp) > query.limit {
				t.Fatalf("%d-byte answer for a 512-byte client", len(resp))
			}
		}
	})
}
