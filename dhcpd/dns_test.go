package dhcpd

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"nodenet/internal/testenv"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

var dnsClient = netip.MustParseAddrPort("10.0.0.77:5353")

// dnsTestServer is lan.test on 10.0.0.0/24 with web at .5 and db at .6,
// served without sockets.
func dnsTestServer(t testing.TB) *DNSServer {
	s := &DNSServer{Domain: "lan.test", Addr: netip.MustParseAddr("10.0.0.1"),
		Allowed: netip.MustParsePrefix("10.0.0.0/24")}
	s.SetHost("web", netip.MustParseAddr("10.0.0.5"))
	s.SetHost("DB", netip.MustParseAddr("10.0.0.6"))
	return s
}

// dnsTestQuery builds a query; edns > 0 adds an OPT advertising that size.
func dnsTestQuery(t testing.TB, id uint16, name string, typ dnsmessage.Type, edns int) []byte {
	t.Helper()
	m := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: id, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName(name), Type: typ, Class: dnsmessage.ClassINET}},
	}
	if edns > 0 {
		var h dnsmessage.ResourceHeader
		h.SetEDNS0(edns, dnsmessage.RCodeSuccess, false)
		m.Additionals = append(m.Additionals, dnsmessage.Resource{Header: h, Body: &dnsmessage.OPTResource{}})
	}
	b, err := m.Pack()
	if err != nil {
		t.Fatalf("pack query %s: %v", name, err)
	}
	return b
}

var dnsRCodeNames = map[dnsmessage.RCode]string{0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL",
	3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED", 16: "BADVERS"}

// dnsSummary renders a response as text, one line per question and record,
// so tests compare got and want as strings.
func dnsSummary(t testing.TB, resp []byte) string {
	t.Helper()
	if resp == nil {
		return "<nil>"
	}
	var m dnsmessage.Message
	if err := m.Unpack(resp); err != nil {
		t.Fatalf("response does not parse: %v", err)
	}
	rcode := m.RCode
	for _, r := range m.Additionals {
		if r.Header.Type == dnsmessage.TypeOPT {
			rcode = r.Header.ExtendedRCode(rcode)
		}
	}
	var b strings.Builder
	b.WriteString(dnsRCodeNames[rcode])
	for _, f := range []struct {
		on   bool
		name string
	}{{m.Authoritative, "aa"}, {m.Truncated, "tc"}, {m.RecursionDesired, "rd"}, {m.RecursionAvailable, "ra"}} {
		if f.on {
			b.WriteString(" " + f.name)
		}
	}
	for _, q := range m.Questions {
		fmt.Fprintf(&b, "\nq %s %s", q.Name, strings.TrimPrefix(q.Type.String(), "Type"))
	}
	for _, sec := range []struct {
		name string
		rrs  []dnsmessage.Resource
	}{{"an", m.Answers}, {"ns", m.Authorities}, {"ar", m.Additionals}} {
		for _, r := range sec.rrs {
			h := r.Header
			fmt.Fprintf(&b, "\n%s %s %s ", sec.name, h.Name, strings.TrimPrefix(h.Type.String(), "Type"))
			switch body := r.Body.(type) {
			case *dnsmessage.AResource:
				fmt.Fprintf(&b, "%d %s", h.TTL, netip.AddrFrom4(body.A))
			case *dnsmessage.PTRResource:
				fmt.Fprintf(&b, "%d %s", h.TTL, body.PTR)
			case *dnsmessage.SOAResource:
				fmt.Fprintf(&b, "%d %s %s %d", h.TTL, body.NS, body.MBox, body.MinTTL)
			case *dnsmessage.OPTResource:
				fmt.Fprintf(&b, "size=%d", h.Class)
			default:
				fmt.Fprintf(&b, "%d %T", h.TTL, body)
			}
		}
	}
	return b.String()
}

func dnsCheck(t testing.TB, what string, resp []byte, want string) {
	t.Helper()
	if got := dnsSummary(t, resp); got != want {
		t.Errorf("%s:\ngot:\n%s\nwant:\n%s", what, got, want)
	}
}

const dnsSOA = "ns lan.test. SOA 60 ns.lan.test. hostmaster.lan.test. 60"

func TestDNSLocal(t *testing.T) {
	s := dnsTestServer(t)
	for _, tc := range []struct {
		name string
		typ  dnsmessage.Type
		want string
	}{
		{"web.lan.test.", dnsmessage.TypeA, "NOERROR aa rd ra\nq web.lan.test. A\nan web.lan.test. A 60 10.0.0.5"},
		{"WeB.LAN.Test.", dnsmessage.TypeA, "NOERROR aa rd ra\nq WeB.LAN.Test. A\nan WeB.LAN.Test. A 60 10.0.0.5"},
		{"db.lan.test.", dnsmessage.TypeALL, "NOERROR aa rd ra\nq db.lan.test. ALL\nan db.lan.test. A 60 10.0.0.6"},
		{"web.lan.test.", dnsmessage.TypeAAAA, "NOERROR aa rd ra\nq web.lan.test. AAAA\n" + dnsSOA},
		{"nope.lan.test.", dnsmessage.TypeA, "NXDOMAIN aa rd ra\nq nope.lan.test. A\n" + dnsSOA},
		{"a.web.lan.test.", dnsmessage.TypeA, "NXDOMAIN aa rd ra\nq a.web.lan.test. A\n" + dnsSOA},
		{"lan.test.", dnsmessage.TypeA, "NOERROR aa rd ra\nq lan.test. A\n" + dnsSOA},
		{"lan.test.", dnsmessage.TypeSOA, "NOERROR aa rd ra\nq lan.test. SOA\nan lan.test. SOA 60 ns.lan.test. hostmaster.lan.test. 60"},
		{"5.0.0.10.in-addr.arpa.", dnsmessage.TypePTR, "NOERROR aa rd ra\nq 5.0.0.10.in-addr.arpa. PTR\nan 5.0.0.10.in-addr.arpa. PTR 60 web.lan.test."},
		{"5.0.0.10.IN-ADDR.ARPA.", dnsmessage.TypePTR, "NOERROR aa rd ra\nq 5.0.0.10.IN-ADDR.ARPA. PTR\nan 5.0.0.10.IN-ADDR.ARPA. PTR 60 web.lan.test."},
		{"5.0.0.10.in-addr.arpa.", dnsmessage.TypeA, "NOERROR aa rd ra\nq 5.0.0.10.in-addr.arpa. A\nns 0.0.10.in-addr.arpa. SOA 60 ns.lan.test. hostmaster.lan.test. 60"},
		{"9.0.0.10.in-addr.arpa.", dnsmessage.TypePTR, "NXDOMAIN aa rd ra\nq 9.0.0.10.in-addr.arpa. PTR\nns 0.0.10.in-addr.arpa. SOA 60 ns.lan.test. hostmaster.lan.test. 60"},
		{"x.0.0.10.in-addr.arpa.", dnsmessage.TypePTR, "NXDOMAIN aa rd ra\nq x.0.0.10.in-addr.arpa. PTR\nns 0.0.10.in-addr.arpa. SOA 60 ns.lan.test. hostmaster.lan.test. 60"},
		{"0.0.10.in-addr.arpa.", dnsmessage.TypeSOA, "NOERROR aa rd ra\nq 0.0.10.in-addr.arpa. SOA\nan 0.0.10.in-addr.arpa. SOA 60 ns.lan.test. hostmaster.lan.test. 60"},
		// Not ours and no upstreams: SERVFAIL, not NXDOMAIN.
		{"9.1.0.10.in-addr.arpa.", dnsmessage.TypePTR, "SERVFAIL rd ra\nq 9.1.0.10.in-addr.arpa. PTR"},
		{"example.org.", dnsmessage.TypeA, "SERVFAIL rd ra\nq example.org. A"},
		{"example.org.", dnsmessage.TypeAXFR, "REFUSED rd ra\nq example.org. AXFR"},
	} {
		resp := s.Handle(context.Background(), dnsTestQuery(t, 7, tc.name, tc.typ, 0), dnsClient, false)
		if len(resp) < 2 || binary.BigEndian.Uint16(resp) != 7 {
			t.Errorf("%s %v: ID not echoed: % x", tc.name, tc.typ, resp)
		}
		dnsCheck(t, tc.name+" "+tc.typ.String(), resp, tc.want)
	}
}

func TestDNSMalformed(t *testing.T) {
	s := dnsTestServer(t)
	query := dnsTestQuery(t, 9, "web.lan.test.", dnsmessage.TypeA, 0)
	with := func(edit func(m *dnsmessage.Message)) []byte {
		var m dnsmessage.Message
		if err := m.Unpack(query); err != nil {
			t.Fatal(err)
		}
		edit(&m)
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	twoQuestions := with(func(m *dnsmessage.Message) { m.Questions = append(m.Questions, m.Questions[0]) })
	noQuestion := with(func(m *dnsmessage.Message) { m.Questions = nil })
	notify := with(func(m *dnsmessage.Message) { m.OpCode = 4 })
	response := with(func(m *dnsmessage.Message) { m.Response = true })
	chaos := with(func(m *dnsmessage.Message) { m.Questions[0].Class = dnsmessage.ClassCHAOS })
	badVersion := dnsTestQuery(t, 9, "web.lan.test.", dnsmessage.TypeA, 1232)
	badVersion[len(badVersion)-5] = 1 // the OPT's version byte

	for _, tc := range []struct {
		what  string
		query []byte
		src   netip.AddrPort
		want  string
	}{
		{"short", query[:11], dnsClient, "<nil>"},
		{"cut in the question", query[:len(query)-3], dnsClient, "FORMERR rd ra"},
		{"two questions", twoQuestions, dnsClient, "FORMERR rd ra"},
		{"no question", noQuestion, dnsClient, "FORMERR rd ra"},
		{"opcode NOTIFY", notify, dnsClient, "NOTIMP rd ra"},
		{"a response", response, dnsClient, "<nil>"},
		{"class CHAOS", chaos, dnsClient, "REFUSED rd ra\nq web.lan.test. A"},
		{"EDNS version 1", badVersion, dnsClient, "BADVERS rd ra\nq web.lan.test. A\nar . OPT size=1232"},
		{"outside Allowed", query, netip.MustParseAddrPort("192.0.2.1:53"), "<nil>"},
	} {
		dnsCheck(t, tc.what, s.Handle(context.Background(), tc.query, tc.src, false), tc.want)
	}
}

func TestDNSEDNSAndTruncation(t *testing.T) {
	long := strings.Repeat("a", 60) + "." + strings.Repeat("b", 60) + "." + strings.Repeat("c", 60)
	s := &DNSServer{Domain: long}
	name := strings.Repeat("d", 40) + "." + long + "."
	soa := fmt.Sprintf("ns %s. SOA 60 ns.%[1]s. hostmaster.%[1]s. 60", long)

	// The NXDOMAIN's SOA repeats the long domain three times: over 512 bytes.
	udp := s.Handle(context.Background(), dnsTestQuery(t, 1, name, dnsmessage.TypeA, 0), dnsClient, false)
	dnsCheck(t, "UDP without EDNS", udp, "NXDOMAIN aa tc rd ra\nq "+name+" A")
	tcp := s.Handle(context.Background(), dnsTestQuery(t, 1, name, dnsmessage.TypeA, 0), dnsClient, true)
	dnsCheck(t, "TCP", tcp, "NXDOMAIN aa rd ra\nq "+name+" A\n"+soa)
	edns := s.Handle(context.Background(), dnsTestQuery(t, 1, name, dnsmessage.TypeA, 4096), dnsClient, false)
	dnsCheck(t, "UDP with EDNS", edns, "NXDOMAIN aa rd ra\nq "+name+" A\n"+soa+"\nar . OPT size=1232")
	small := s.Handle(context.Background(), dnsTestQuery(t, 1, name, dnsmessage.TypeA, 600), dnsClient, false)
	dnsCheck(t, "UDP with EDNS 600", small, "NXDOMAIN aa tc rd ra\nq "+name+" A\nar . OPT size=1232")
}

func TestDNSHosts(t *testing.T) {
	s := dnsTestServer(t)
	ask := func(name string, typ dnsmessage.Type) string {
		resp := s.Handle(context.Background(), dnsTestQuery(t, 1, name, typ, 0), dnsClient, false)
		_, rest, _ := strings.Cut(dnsSummary(t, resp), "\nan ")
		return rest
	}
	s.SetHost("web", netip.MustParseAddr("10.0.0.8")) // moved
	s.SetHost("www", netip.MustParseAddr("10.0.0.8")) // a second name, say its DHCP hostname
	s.SetHost("bad.name", netip.MustParseAddr("10.0.0.9"))
	s.SetHost("v6", netip.MustParseAddr("fd00::1"))
	for _, c := range []struct{ got, want string }{
		{ask("web.lan.test.", dnsmessage.TypeA), "web.lan.test. A 60 10.0.0.8"},
		{ask("5.0.0.10.in-addr.arpa.", dnsmessage.TypePTR), ""},
		{ask("8.0.0.10.in-addr.arpa.", dnsmessage.TypePTR), "8.0.0.10.in-addr.arpa. PTR 60 www.lan.test."},
		{ask("9.0.0.10.in-addr.arpa.", dnsmessage.TypePTR), ""},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
	s.RemoveHost("WWW")
	if got, want := ask("8.0.0.10.in-addr.arpa.", dnsmessage.TypePTR), "8.0.0.10.in-addr.arpa. PTR 60 web.lan.test."; got != want {
		t.Errorf("after RemoveHost(WWW): got %q, want %q", got, want)
	}
	s.RemoveHost("web")
	if got := ask("web.lan.test.", dnsmessage.TypeA); got != "" {
		t.Errorf("after RemoveHost(web): got %q", got)
	}
}

// dnsFreePort finds a port free for both UDP and TCP on 127.0.0.1.
func dnsFreePort(t testing.TB) int {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		pc.Close()
		if err == nil {
			ln.Close()
			return port
		}
	}
	t.Fatal("no free port on 127.0.0.1")
	return 0
}

// dnsUpstream is a fake resolver on 127.0.0.1 (UDP and TCP on one port).
type dnsUpstream struct {
	addr     netip.AddrPort
	answer   func(q dnsmessage.Question) dnsmessage.Message // rcode and records; nil: never answer
	truncate bool                                           // UDP answers carry TC and no records
	delay    time.Duration

	mu         sync.Mutex
	udp, tcp   int // queries received
	lastRD     bool
	lastQName  string
	lastHasOPT bool
}

func (u *dnsUpstream) counts() (udp, tcp int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.udp, u.tcp
}

func dnsStartUpstream(t testing.TB, u *dnsUpstream) *dnsUpstream {
	t.Helper()
	port := dnsFreePort(t)
	pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close(); ln.Close() })
	u.addr = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	go func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp := u.respond(buf[:n], false); resp != nil {
				pc.WriteTo(resp, from)
			}
		}
	}()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if req := dnsReadTCP(c); req != nil {
					if resp := u.respond(req, true); resp != nil {
						c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(resp))), resp...))
					}
				}
			}()
		}
	}()
	return u
}

func (u *dnsUpstream) respond(req []byte, tcp bool) []byte {
	var m dnsmessage.Message
	if m.Unpack(req) != nil || len(m.Questions) != 1 {
		return nil
	}
	u.mu.Lock()
	if tcp {
		u.tcp++
	} else {
		u.udp++
	}
	u.lastRD, u.lastQName, u.lastHasOPT = m.RecursionDesired, m.Questions[0].Name.String(), len(m.Additionals) > 0
	u.mu.Unlock()
	if u.answer == nil {
		return nil
	}
	time.Sleep(u.delay)
	resp := u.answer(m.Questions[0])
	resp.ID, resp.Response, resp.RecursionDesired, resp.RecursionAvailable = m.ID, true, true, true
	resp.Questions = m.Questions
	if u.truncate && !tcp {
		resp.Truncated, resp.Answers, resp.Authorities = true, nil, nil
	}
	b, _ := resp.Pack()
	return b
}

func dnsReadTCP(c net.Conn) []byte {
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var n [2]byte
	if _, err := c.Read(n[:]); err != nil {
		return nil
	}
	msg := make([]byte, binary.BigEndian.Uint16(n[:]))
	for got := 0; got < len(msg); {
		k, err := c.Read(msg[got:])
		if err != nil {
			return nil
		}
		got += k
	}
	return msg
}

// dnsAnswerA answers every question with count A records of that TTL.
func dnsAnswerA(count int, ttl uint32) func(dnsmessage.Question) dnsmessage.Message {
	return func(q dnsmessage.Question) dnsmessage.Message {
		var m dnsmessage.Message
		for i := range count {
			m.Answers = append(m.Answers, dnsmessage.Resource{
				Header: dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: ttl},
				Body:   &dnsmessage.AResource{A: [4]byte{192, 0, 2, byte(i + 1)}}})
		}
		return m
	}
}

// dnsStart starts s on 127.0.0.1 at a free high port and returns its address.
func dnsStart(t testing.TB, s *DNSServer) string {
	t.Helper()
	s.Addr = netip.MustParseAddr("127.0.0.1")
	var err error
	for range 5 { // another test may take the port in between
		s.Port = dnsFreePort(t)
		if err = s.Start(); err == nil {
			t.Cleanup(func() { s.Close() })
			return fmt.Sprintf("127.0.0.1:%d", s.Port)
		}
	}
	t.Fatalf("start: %v", err)
	return ""
}

// dnsAskUDP sends query and returns the answer, nil after a timeout.
func dnsAskUDP(t testing.TB, addr string, query []byte, timeout time.Duration) []byte {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write(query); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	if err != nil {
		return nil
	}
	return buf[:n]
}

func TestDNSSockets(t *testing.T) {
	up := dnsStartUpstream(t, &dnsUpstream{answer: dnsAnswerA(1, 60)})
	s := &DNSServer{Domain: "lan.test", Allowed: netip.MustParsePrefix("127.0.0.0/8"),
		Upstreams: func() []netip.AddrPort { return []netip.AddrPort{up.addr} }}
	s.SetHost("web", netip.MustParseAddr("127.0.0.5"))
	addr := dnsStart(t, s)
	if err := s.Start(); err == nil {
		t.Error("a second Start succeeded")
	}

	local := "NOERROR aa rd ra\nq web.lan.test. A\nan web.lan.test. A 60 127.0.0.5"
	forwarded := "NOERROR rd ra\nq example.org. A\nan example.org. A 60 192.0.2.1"
	dnsCheck(t, "UDP local", dnsAskUDP(t, addr, dnsTestQuery(t, 1, "web.lan.test.", dnsmessage.TypeA, 0), 2*time.Second), local)
	dnsCheck(t, "UDP forwarded", dnsAskUDP(t, addr, dnsTestQuery(t, 2, "example.org.", dnsmessage.TypeA, 0), 2*time.Second), forwarded)

	// Two queries on one connection, sent before reading either answer.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var frames []byte
	for i, name := range []string{"web.lan.test.", "example.org."} {
		q := dnsTestQuery(t, uint16(10+i), name, dnsmessage.TypeA, 0)
		frames = append(binary.BigEndian.AppendUint16(frames, uint16(len(q))), q...)
	}
	if _, err := c.Write(frames); err != nil {
		t.Fatal(err)
	}
	got := map[uint16]string{}
	for range 2 {
		resp := dnsReadTCP(c)
		if resp == nil {
			t.Fatal("TCP: no answer")
		}
		got[binary.BigEndian.Uint16(resp)] = dnsSummary(t, resp)
	}
	if got[10] != local || got[11] != forwarded {
		t.Errorf("TCP answers:\n%s\n%s\nwant:\n%s\n%s", got[10], got[11], local, forwarded)
	}
	c.Close()

	if out, err := exec.Command("dig", "-v").CombinedOutput(); err == nil {
		for _, args := range [][]string{{}, {"+tcp"}} {
			args = append(args, "+short", "+time=2", "+tries=1", "-p", fmt.Sprint(s.Port), "@127.0.0.1", "web.lan.test", "A")
			out, err := exec.Command("dig", args...).CombinedOutput()
			if got := strings.TrimSpace(string(out)); err != nil || got != "127.0.0.5" {
				t.Errorf("dig %v: %q, %v", args, got, err)
			}
		}
	} else {
		t.Logf("no dig (%v %s): cross-check skipped", err, out)
	}

	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatalf("UDP port still taken after Close: %v", err)
	}
	pc.Close()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("TCP port still taken after Close: %v", err)
	}
	ln.Close()
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// A burst queued before the reader wakes is answered in batches: every
// query gets its own answer at its own source, garbage in between is
// dropped without costing the queries after it.
func TestDNSUDPBurst(t *testing.T) {
	up := dnsStartUpstream(t, &dnsUpstream{answer: dnsAnswerA(1, 60)})
	s := &DNSServer{Domain: "lan.test",
		Upstreams: func() []netip.AddrPort { return []netip.AddrPort{up.addr} }}
	s.SetHost("web", netip.MustParseAddr("10.0.0.5"))
	addr, err := net.ResolveUDPAddr("udp", dnsStart(t, s))
	if err != nil {
		t.Fatal(err)
	}
	const clients, perClient = 2, dnsUDPBatch + dnsUDPBatch/2
	conns := make([]*net.UDPConn, clients)
	for c := range conns {
		if conns[c], err = net.DialUDP("udp", nil, addr); err != nil {
			t.Fatal(err)
		}
		defer conns[c].Close()
		conns[c].SetReadBuffer(1 << 20)
	}
	for i := range perClient {
		for c, conn := range conns {
			name := "web.lan.test."
			if i%8 == 7 {
				name = "example.org."
			}
			conn.Write(dnsTestQuery(t, uint16(c<<8|i), name, dnsmessage.TypeA, 0))
			if i%16 == 0 {
				conn.Write([]byte("not dns"))
			}
		}
	}
	buf := make([]byte, 65535)
	for c, conn := range conns {
		seen := map[uint16]bool{}
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		for len(seen) < perClient {
			n, err := conn.Read(buf)
			if err != nil {
				t.Fatalf("client %d: %d of %d answers: %v", c, len(seen), perClient, err)
			}
			id := binary.BigEndian.Uint16(buf[:n])
			if int(id>>8) != c || seen[id] {
				t.Fatalf("client %d: answer with id %#x (another client's, or twice)", c, id)
			}
			seen[id] = true
			if !strings.Contains(dnsSummary(t, buf[:n]), "NOERROR") {
				t.Errorf("client %d, id %#x: %s", c, id, dnsSummary(t, buf[:n]))
			}
		}
	}
}

// Close must not wait out a forward to a silent upstream.
func TestDNSCloseDuringForward(t *testing.T) {
	silent := dnsStartUpstream(t, &dnsUpstream{})
	s := &DNSServer{Domain: "lan.test", Timeout: 5 * time.Second,
		Upstreams: func() []netip.AddrPort { return []netip.AddrPort{silent.addr} }}
	addr := dnsStart(t, s)
	dnsAskUDP(t, addr, dnsTestQuery(t, 1, "example.org.", dnsmessage.TypeA, 0), 100*time.Millisecond)
	start := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 4*time.Second { // the forward would take 10 s
		t.Errorf("Close took %v", took)
	}
}

func TestDNSSocketsDropOutsiders(t *testing.T) {
	s := &DNSServer{Domain: "lan.test", Allowed: netip.MustParsePrefix("10.0.0.0/24")}
	s.SetHost("web", netip.MustParseAddr("10.0.0.5"))
	addr := dnsStart(t, s)
	if resp := dnsAskUDP(t, addr, dnsTestQuery(t, 1, "web.lan.test.", dnsmessage.TypeA, 0), 300*time.Millisecond); resp != nil {
		t.Errorf("127.0.0.1 is outside Allowed but got: %s", dnsSummary(t, resp))
	}
}

func TestDNSDevice(t *testing.T) {
	s := &DNSServer{Domain: "lan.test", Device: "lo"}
	s.SetHost("web", netip.MustParseAddr("10.0.0.5"))
	s.Addr, s.Port = netip.MustParseAddr("127.0.0.1"), dnsFreePort(t)
	if err := s.Start(); errors.Is(err, syscall.EPERM) && !testenv.Integration() {
		t.Skipf("SO_BINDTODEVICE not permitted: %v", err)
	} else if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	resp := dnsAskUDP(t, fmt.Sprintf("127.0.0.1:%d", s.Port), dnsTestQuery(t, 1, "web.lan.test.", dnsmessage.TypeA, 0), 2*time.Second)
	dnsCheck(t, "bound to lo", resp, "NOERROR aa rd ra\nq web.lan.test. A\nan web.lan.test. A 60 10.0.0.5")

	bad := &DNSServer{Domain: "lan.test", Device: "nnt-nosuch0", Addr: netip.MustParseAddr("127.0.0.1"), Port: dnsFreePort(t)}
	err := bad.Start()
	if err == nil {
		bad.Close()
		t.Fatal("Start bound to a missing device")
	}
	if !strings.Contains(err.Error(), "nnt-nosuch0") || !strings.Contains(err.Error(), "127.0.0.1") {
		t.Errorf("error does not name the device and address: %v", err)
	}
}

// BenchmarkDNSRespond measures what a UDP reader does inline per query.
func BenchmarkDNSRespond(b *testing.B) {
	up := dnsStartUpstream(b, &dnsUpstream{answer: dnsAnswerA(2, 3600)})
	s := dnsTestServer(b)
	s.Upstreams = func() []netip.AddrPort { return []netip.AddrPort{up.addr} }
	cached := dnsTestQuery(b, 1, "www.example.org.", dnsmessage.TypeA, 1232)
	s.Handle(context.Background(), cached, dnsClient, false)
	for _, bc := range []struct {
		name  string
		query []byte
	}{
		{"local", dnsTestQuery(b, 1, "web.lan.test.", dnsmessage.TypeA, 0)},
		{"nxdomain", dnsTestQuery(b, 1, "nope.lan.test.", dnsmessage.TypeA, 1232)},
		{"ptr", dnsTestQuery(b, 1, "5.0.0.10.in-addr.arpa.", dnsmessage.TypePTR, 0)},
		{"cached", cached},
	} {
		b.Run(bc.name, func(b *testing.B) {
			out := make([]byte, 0, dnsMaxUDP)
			b.ReportAllocs()
			for b.Loop() {
				if resp, fwd := s.respond(out[:0], bc.query, dnsClient, false); resp == nil || fwd != nil {
					b.Fatal("no inline answer")
				}
			}
		})
	}
}
