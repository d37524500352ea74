package dhcpd

import (
	"bytes"
	"context"
	"encoding/binary"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// dnsClock is a settable clock for the cache.
type dnsClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *dnsClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *dnsClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// dnsAnswerNX answers NXDOMAIN with an SOA of that TTL and minimum.
func dnsAnswerNX(ttl, minimum uint32) func(dnsmessage.Question) dnsmessage.Message {
	return func(q dnsmessage.Question) dnsmessage.Message {
		m := dnsmessage.Message{Header: dnsmessage.Header{RCode: dnsmessage.RCodeNameError}}
		m.Authorities = []dnsmessage.Resource{{
			Header: dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName("example."), Type: dnsmessage.TypeSOA, Class: dnsmessage.ClassINET, TTL: ttl},
			Body: &dnsmessage.SOAResource{NS: dnsmessage.MustNewName("ns.example."), MBox: dnsmessage.MustNewName("h.example."),
				Serial: 1, Refresh: 1, Retry: 1, Expire: 1, MinTTL: minimum}}}
		return m
	}
}

func dnsForwarder(clock *dnsClock, timeout time.Duration, ups ...*dnsUpstream) *DNSServer {
	s := &DNSServer{Domain: "lan.test", Timeout: timeout, Now: clock.now}
	s.Upstreams = func() []netip.AddrPort {
		var addrs []netip.AddrPort
		for _, u := range ups {
			addrs = append(addrs, u.addr)
		}
		return addrs
	}
	return s
}

func TestDNSForwardCache(t *testing.T) {
	clock := &dnsClock{t: time.Unix(1e9, 0)}
	up := dnsStartUpstream(t, &dnsUpstream{answer: dnsAnswerA(1, 300)})
	s := dnsForwarder(clock, time.Second, up)
	ask := func(id uint16, name string) []byte {
		return s.Handle(context.Background(), dnsTestQuery(t, id, name, dnsmessage.TypeA, 0), dnsClient, false)
	}

	dnsCheck(t, "first", ask(1, "www.Example.org."), "NOERROR rd ra\nq www.Example.org. A\nan www.Example.org. A 300 192.0.2.1")
	up.mu.Lock()
	if !up.lastRD || up.lastQName != "www.example.org." || !up.lastHasOPT {
		t.Errorf("upstream got RD %v, name %q, OPT %v; want RD, lower case, OPT", up.lastRD, up.lastQName, up.lastHasOPT)
	}
	up.mu.Unlock()
	clock.add(100 * time.Second)
	resp := ask(2, "WWW.example.ORG.")
	dnsCheck(t, "cached", resp, "NOERROR rd ra\nq WWW.example.ORG. A\nan WWW.example.ORG. A 200 192.0.2.1")
	if binary.BigEndian.Uint16(resp) != 2 {
		t.Errorf("cached answer has ID %d, want 2", binary.BigEndian.Uint16(resp))
	}
	if udp, _ := up.counts(); udp != 1 {
		t.Errorf("upstream asked %d times for two queries, want 1", udp)
	}
	clock.add(200 * time.Second)
	dnsCheck(t, "expired", ask(3, "www.example.org."), "NOERROR rd ra\nq www.example.org. A\nan www.example.org. A 300 192.0.2.1")
	if udp, _ := up.counts(); udp != 2 {
		t.Errorf("upstream asked %d times after expiry, want 2", udp)
	}
}

func TestDNSNegativeCache(t *testing.T) {
	clock := &dnsClock{t: time.Unix(1e9, 0)}
	nx := dnsStartUpstream(t, &dnsUpstream{answer: dnsAnswerNX(600, 120)})
	nodata := dnsStartUpstream(t, &dnsUpstream{answer: dnsAnswerA(0, 0)})
	for _, tc := range []struct {
		up    *dnsUpstream
		ttl   time.Duration // how long it is cached
		rcode string
	}{
		{nx, 120 * time.Second, "NXDOMAIN"}, // the SOA minimum, below its TTL
		{nodata, 30 * time.Second, "NOERROR"},
	} {
		s := dnsForwarder(clock, time.Second, tc.up)
		ask := func() string {
			resp := s.Handle(context.Background(), dnsTestQuery(t, 1, "nx.example.", dnsmessage.TypeA, 0), dnsClient, false)
			rcode, _, _ := strings.Cut(dnsSummary(t, resp), " ")
			return rcode
		}
		for i, step := range []struct {
			after time.Duration
			calls int
		}{{0, 1}, {tc.ttl - time.Second, 1}, {time.Second, 2}} {
			clock.add(step.after)
			if got := ask(); got != tc.rcode {
				t.Errorf("%s query %d: got %s", tc.rcode, i, got)
			}
			if udp, _ := tc.up.counts(); udp != step.calls {
				t.Errorf("%s query %d: upstream asked %d times, want %d", tc.rcode, i, udp, step.calls)
			}
		}
	}
}

// An SOA whose mailbox has a dot in its first label ("first.last") is legal
// but beyond dnsmessage: the answer is kept without it.
func TestDNSUndecodableSOA(t *testing.T) {
	q := dnsmessage.Question{Name: dnsmessage.MustNewName("nx.example."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}
	m := dnsAnswerNX(600, 120)(q)
	m.Response, m.Questions = true, []dnsmessage.Question{q}
	m.Authorities[0].Body.(*dnsmessage.SOAResource).MBox = dnsmessage.MustNewName("first-last.example.")
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	b[bytes.Index(b, []byte("first-last"))+5] = '.'
	now := time.Unix(1e9, 0)
	e, err := dnsNewEntry(b, q, now)
	if err != nil {
		t.Fatalf("answer refused: %v", err)
	}
	if got, want := e.expires.Sub(now), dnsNoSOATTL*time.Second; got != want {
		t.Errorf("cached for %v, want %v (no SOA left to say)", got, want)
	}
	dnsCheck(t, "served", e.appendTo(nil, &dnsQuery{id: 1, q: q, limit: 512}, now), "NXDOMAIN ra\nq nx.example. A")
}

func TestDNSForwardFailures(t *testing.T) {
	clock := &dnsClock{t: time.Unix(1e9, 0)}
	silent := dnsStartUpstream(t, &dnsUpstream{})
	servfail := dnsStartUpstream(t, &dnsUpstream{answer: func(dnsmessage.Question) dnsmessage.Message {
		return dnsmessage.Message{Header: dnsmessage.Header{RCode: dnsmessage.RCodeServerFailure}}
	}})
	good := dnsStartUpstream(t, &dnsUpstream{answer: dnsAnswerA(1, 60)})
	query := dnsTestQuery(t, 1, "example.org.", dnsmessage.TypeA, 0)

	s := dnsForwarder(clock, 50*time.Millisecond, silent, silent, silent)
	start := time.Now()
	dnsCheck(t, "silent upstreams", s.Handle(context.Background(), query, dnsClient, false), "SERVFAIL rd ra\nq example.org. A")
	// Generous: only a hang fails it (the machine may be busy), not a slow run.
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("SERVFAIL took %v, want about 2*Timeout", took)
	}
	s.Handle(context.Background(), query, dnsClient, false)
	// The fake upstream counts in its own goroutine: give it time to read
	// the last query.
	deadline := time.Now().Add(2 * time.Second)
	udp, _ := silent.counts()
	for ; udp < 4 && time.Now().Before(deadline); udp, _ = silent.counts() {
		time.Sleep(10 * time.Millisecond)
	}
	if udp != 4 {
		t.Errorf("silent upstream asked %d times, want 4 (two per query, SERVFAIL not cached)", udp)
	}

	s = dnsForwarder(clock, 200*time.Millisecond, servfail, good)
	dnsCheck(t, "SERVFAIL then good", s.Handle(context.Background(), query, dnsClient, false),
		"NOERROR rd ra\nq example.org. A\nan example.org. A 60 192.0.2.1")

	s = dnsForwarder(clock, time.Second)
	dnsCheck(t, "no upstreams", s.Handle(context.Background(), query, dnsClient, false), "SERVFAIL rd ra\nq example.org. A")
}

func TestDNSForwardTruncation(t *testing.T) {
	clock := &dnsClock{t: time.Unix(1e9, 0)}
	up := dnsStartUpstream(t, &dnsUpstream{answer: dnsAnswerA(40, 60), truncate: true})
	s := dnsForwarder(clock, time.Second, up)
	resp := s.Handle(context.Background(), dnsTestQuery(t, 1, "many.example.", dnsmessage.TypeA, 0), dnsClient, true)
	if got := strings.Count(dnsSummary(t, resp), "\nan "); got != 40 {
		t.Errorf("over TCP: %d answers, want 40", got)
	}
	if udp, tcp := up.counts(); udp != 1 || tcp != 1 {
		t.Errorf("upstream asked %d times over UDP and %d over TCP, want 1 and 1", udp, tcp)
	}
	// 40 A records exceed 512 bytes but fit in 1232.
	udp := s.Handle(context.Background(), dnsTestQuery(t, 1, "many.example.", dnsmessage.TypeA, 0), dnsClient, false)
	dnsCheck(t, "cached, UDP without EDNS", udp, "NOERROR tc rd ra\nq many.example. A")
	edns := s.Handle(context.Background(), dnsTestQuery(t, 1, "many.example.", dnsmessage.TypeA, 1232), dnsClient, false)
	if got := strings.Count(dnsSummary(t, edns), "\nan "); got != 40 || len(edns) > 1232 {
		t.Errorf("UDP with EDNS: %d answers in %d bytes, want 40 in at most 1232", got, len(edns))
	}
}

func TestDNSForwardCoalesces(t *testing.T) {
	clock := &dnsClock{t: time.Unix(1e9, 0)}
	up := dnsStartUpstream(t, &dnsUpstream{answer: dnsAnswerA(1, 60), delay: 100 * time.Millisecond})
	s := dnsForwarder(clock, time.Second, up)
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Go(func() {
			resp := s.Handle(context.Background(), dnsTestQuery(t, uint16(i), "slow.example.", dnsmessage.TypeA, 0), dnsClient, false)
			if !strings.Contains(dnsSummary(t, resp), "an slow.example. A 60 192.0.2.1") {
				t.Errorf("query %d: %s", i, dnsSummary(t, resp))
			}
		})
	}
	wg.Wait()
	if udp, _ := up.counts(); udp != 1 {
		t.Errorf("upstream asked %d times for 5 concurrent queries, want 1", udp)
	}
}
