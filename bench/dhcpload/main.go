// Command dhcpload measures how many leases a DHCPv4 server hands out per
// second: full DISCOVER-OFFER-REQUEST-ACK exchanges for N distinct MACs,
// C of them in flight at once, on one UDP socket bound to an interface.
// bench/dhcp.sh runs it against nodenet, dnsmasq and kea-dhcp4, each on
// a fresh LAN of its own.
//
//	dhcpload -iface eth0 -n 2000 -concurrency 16 -server LABEL -out R.jsonl
//	dhcpload report R.jsonl
//
// The client needs no address: it sends from 0.0.0.0:68 to
// 255.255.255.255:67 with the BROADCAST flag set, so every server
// broadcasts its replies, and the socket (bound to the interface) takes
// them in and hands each to its exchange by xid. MACs and xids come from a
// fixed seed: every server sees the same clients.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
)

// Record is one line of the results file: one run against one server.
type Record struct {
	Server      string  `json:"server"`
	Time        string  `json:"time"`
	Leases      int     `json:"leases"` // exchanges asked for
	Concurrency int     `json:"concurrency"`
	Acked       int     `json:"acked"`
	WallS       float64 `json:"wall_s"` // first DISCOVER to last ACK
	PerSecond   float64 `json:"leases_per_s"`
	MedianMS    float64 `json:"median_ms"` // one exchange, first DISCOVER to ACK
	P99MS       float64 `json:"p99_ms"`
	Retransmits int     `json:"retransmits"`
	NAKs        int     `json:"naks"`
	Failures    int     `json:"failures"`     // exchanges that got no ACK
	Duplicates  int     `json:"duplicates"`   // ACKs of an address already ACKed to another MAC
	OutOfRange  int     `json:"out_of_range"` // ACKs of an address outside -cidr
	Stray       int     `json:"stray"`        // replies no exchange was waiting for
	ServerCPUS  float64 `json:"server_cpu_s"` // user+system CPU of -server-pid during the run
	OVSCPUS     float64 `json:"ovs_cpu_s"`    // and of -ovs-pid (ovs-vswitchd)
}

type options struct {
	iface, out, server string
	n, concurrency     int
	tries, maxFailures int
	timeout            time.Duration
	cidr               netip.Prefix
	seed               uint64
	serverPID, ovsPID  int
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "report" {
		if err := report(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "dhcpload report:", err)
			os.Exit(1)
		}
		return
	}
	o, err := parse(os.Args[1:])
	if err == nil {
		err = run(o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "dhcpload:", err)
		os.Exit(1)
	}
}

func parse(args []string) (options, error) {
	var o options
	var cidr string
	fs := flag.NewFlagSet("dhcpload", flag.ContinueOnError)
	fs.StringVar(&o.iface, "iface", "eth0", "interface on the server's LAN")
	fs.StringVar(&o.out, "out", "", "results file (JSON lines, appended)")
	fs.StringVar(&o.server, "server", "", "label of the server under test (nodenet, dnsmasq, kea)")
	fs.IntVar(&o.n, "n", 2000, "exchanges, one per distinct MAC")
	fs.IntVar(&o.concurrency, "concurrency", 16, "exchanges in flight at once")
	fs.DurationVar(&o.timeout, "timeout", 2*time.Second, "wait for a reply before retransmitting")
	fs.IntVar(&o.tries, "tries", 4, "sends of one DISCOVER or REQUEST before the exchange fails")
	fs.IntVar(&o.maxFailures, "max-failures", 10, "stop starting exchanges after this many failed")
	fs.StringVar(&cidr, "cidr", "10.210.0.0/16", "every ACKed address must lie in it")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the MACs and xids")
	fs.IntVar(&o.serverPID, "server-pid", 0, "the server's process, whose CPU time is reported")
	fs.IntVar(&o.ovsPID, "ovs-pid", 0, "ovs-vswitchd's process, whose CPU time is reported")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var err error
	if o.cidr, err = netip.ParsePrefix(cidr); err != nil {
		return o, fmt.Errorf("-cidr: %w", err)
	}
	if o.out == "" || o.server == "" || o.n < 1 || o.concurrency < 1 || o.tries < 1 {
		return o, errors.New("want -out, -server, -n >= 1, -concurrency >= 1 and -tries >= 1")
	}
	return o, nil
}

// client is one simulated DHCP client.
type client struct {
	mac net.HardwareAddr
	xid dhcpv4.TransactionID
}

// clients returns n distinct locally administered unicast MACs (02:…) and
// distinct xids, the same for a given seed.
func clients(n int, seed uint64) []client {
	r := rand.New(rand.NewPCG(seed, 0x6468_6370)) // "dhcp"
	macs := map[[6]byte]bool{}
	xids := map[uint32]bool{}
	out := make([]client, 0, n)
	for len(out) < n {
		var m [6]byte
		m[0] = 0x02
		for i := 1; i < 6; i++ {
			m[i] = byte(r.Uint32())
		}
		x := r.Uint32()
		if macs[m] || xids[x] {
			continue
		}
		macs[m], xids[x] = true, true
		var xid dhcpv4.TransactionID
		xid[0], xid[1], xid[2], xid[3] = byte(x>>24), byte(x>>16), byte(x>>8), byte(x)
		out = append(out, client{mac: net.HardwareAddr(m[:]), xid: xid})
	}
	return out
}

// generator owns the socket and routes replies to the waiting exchange.
type generator struct {
	conn    net.PacketConn
	dst     net.Addr
	timeout time.Duration
	tries   int

	mu      sync.Mutex
	pending map[dhcpv4.TransactionID]chan *dhcpv4.DHCPv4
	stray   int
}

// result is what one exchange ended with.
type result struct {
	addr        netip.Addr
	mac         string
	latency     time.Duration
	done        time.Time
	retransmits int
	naks        int
	err         error
}

func run(o options) error {
	// server4's helper: SO_BROADCAST, SO_REUSEADDR (and REUSEPORT),
	// SO_BINDTODEVICE, bound to 0.0.0.0:68.
	conn, err := server4.NewIPv4UDPConn(o.iface, &net.UDPAddr{Port: dhcpv4.ClientPort})
	if err != nil {
		return fmt.Errorf("socket on %s: %w", o.iface, err)
	}
	defer conn.Close()
	g := &generator{
		conn:    conn,
		dst:     &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ServerPort},
		timeout: o.timeout,
		tries:   o.tries,
		pending: map[dhcpv4.TransactionID]chan *dhcpv4.DHCPv4{},
	}
	go g.read()

	cs := clients(o.n, o.seed)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	work := make(chan client)
	results := make(chan result, o.n)
	var wg sync.WaitGroup
	for range o.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range work {
				results <- g.exchange(c)
			}
		}()
	}
	serverCPU0, ovsCPU0 := cpuTime(o.serverPID), cpuTime(o.ovsPID)
	start := time.Now()
	go func() {
		defer close(work)
		for _, c := range cs {
			select {
			case work <- c:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(results) }()

	rec := Record{Server: o.server, Time: start.UTC().Format(time.RFC3339), Leases: o.n, Concurrency: o.concurrency}
	var lat []float64
	var last time.Time
	var firstErr error
	owner := map[netip.Addr]string{}
	for r := range results {
		rec.Retransmits += r.retransmits
		rec.NAKs += r.naks
		if r.err != nil {
			rec.Failures++
			if firstErr == nil {
				firstErr = r.err
			}
			if rec.Failures > o.maxFailures {
				stop()
			}
			continue
		}
		rec.Acked++
		lat = append(lat, ms(r.latency))
		if r.done.After(last) {
			last = r.done
		}
		if !o.cidr.Contains(r.addr) {
			rec.OutOfRange++
		}
		if m, ok := owner[r.addr]; ok && m != r.mac {
			rec.Duplicates++
		}
		owner[r.addr] = r.mac
	}
	if rec.Acked > 0 {
		wall := last.Sub(start)
		rec.WallS = wall.Seconds()
		rec.PerSecond = float64(rec.Acked) / wall.Seconds()
		rec.MedianMS = quantile(lat, 0.5)
		rec.P99MS = quantile(lat, 0.99)
	}
	rec.ServerCPUS = (cpuTime(o.serverPID) - serverCPU0).Seconds()
	rec.OVSCPUS = (cpuTime(o.ovsPID) - ovsCPU0).Seconds()
	g.mu.Lock()
	rec.Stray = g.stray
	g.mu.Unlock()
	if err := appendRecord(o.out, rec); err != nil {
		return err
	}
	fmt.Printf("%s: %d/%d leases in %.2f s: %.0f leases/s, exchange median %.1f ms p99 %.1f ms; "+
		"%d retransmits, %d NAKs, %d failed, %d duplicate and %d out-of-range addresses, %d stray replies; "+
		"CPU %.2f s server, %.2f s ovs-vswitchd\n",
		rec.Server, rec.Acked, rec.Leases, rec.WallS, rec.PerSecond, rec.MedianMS, rec.P99MS,
		rec.Retransmits, rec.NAKs, rec.Failures, rec.Duplicates, rec.OutOfRange, rec.Stray, rec.ServerCPUS, rec.OVSCPUS)
	switch {
	case rec.Acked < rec.Leases:
		return fmt.Errorf("%s: %d of %d exchanges got no ACK (first: %v)", o.server, rec.Leases-rec.Acked, rec.Leases, firstErr)
	case rec.Duplicates > 0 || rec.OutOfRange > 0:
		return fmt.Errorf("%s: %d addresses ACKed to two MACs, %d outside %s", o.server, rec.Duplicates, rec.OutOfRange, o.cidr)
	}
	return nil
}

// read hands every reply to the exchange waiting for its xid; a reply
// nobody waits for (a late answer to a retransmission) is counted.
func (g *generator) read() {
	buf := make([]byte, 4096)
	for {
		n, _, err := g.conn.ReadFrom(buf)
		if err != nil {
			return // closed at the end of the run
		}
		p, err := dhcpv4.FromBytes(buf[:n])
		g.mu.Lock()
		var ch chan *dhcpv4.DHCPv4
		if err == nil && p.OpCode == dhcpv4.OpcodeBootReply {
			ch = g.pending[p.TransactionID]
		}
		if ch == nil {
			g.stray++
		}
		g.mu.Unlock()
		if ch != nil {
			select {
			case ch <- p:
			default: // the exchange has enough to read
			}
		}
	}
}

var errNoReply = errors.New("no reply")

// exchange runs DISCOVER-OFFER-REQUEST-ACK for one client; a NAK starts
// over from DISCOVER, as a real client does.
func (g *generator) exchange(c client) result {
	replies := make(chan *dhcpv4.DHCPv4, 8)
	g.mu.Lock()
	g.pending[c.xid] = replies
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		delete(g.pending, c.xid)
		g.mu.Unlock()
	}()

	res := result{mac: c.mac.String()}
	start := time.Now()
	discover, err := dhcpv4.NewDiscovery(c.mac, dhcpv4.WithTransactionID(c.xid), dhcpv4.WithBroadcast(true))
	if err != nil {
		res.err = err
		return res
	}
	for attempt := 0; attempt < g.tries; attempt++ {
		offer, err := g.roundTrip(discover, c, replies, &res, dhcpv4.MessageTypeOffer)
		if err != nil {
			res.err = fmt.Errorf("%s: DISCOVER: %w", c.mac, err)
			return res
		}
		request, err := dhcpv4.NewRequestFromOffer(offer, dhcpv4.WithBroadcast(true))
		if err != nil {
			res.err = err
			return res
		}
		ack, err := g.roundTrip(request, c, replies, &res, dhcpv4.MessageTypeAck, dhcpv4.MessageTypeNak)
		if err != nil {
			res.err = fmt.Errorf("%s: REQUEST %s: %w", c.mac, offer.YourIPAddr, err)
			return res
		}
		if ack.MessageType() == dhcpv4.MessageTypeNak {
			res.naks++
			continue
		}
		res.done = time.Now()
		res.latency = res.done.Sub(start)
		res.addr, _ = netip.AddrFromSlice(ack.YourIPAddr.To4())
		return res
	}
	res.err = fmt.Errorf("%s: NAKed %d times", c.mac, res.naks)
	return res
}

// roundTrip sends p and waits for a reply of one of the wanted types to
// this client, retransmitting p on every timeout up to g.tries sends.
func (g *generator) roundTrip(p *dhcpv4.DHCPv4, c client, replies chan *dhcpv4.DHCPv4, res *result, want ...dhcpv4.MessageType) (*dhcpv4.DHCPv4, error) {
	b := p.ToBytes()
	t := time.NewTimer(g.timeout)
	defer t.Stop()
	for sent := 0; sent < g.tries; {
		if _, err := g.conn.WriteTo(b, g.dst); err != nil {
			return nil, fmt.Errorf("send: %w", err)
		}
		if sent++; sent > 1 {
			res.retransmits++
		}
		t.Reset(g.timeout)
	wait:
		for {
			select {
			case r := <-replies:
				if slices.Equal(r.ClientHWAddr, c.mac) && slices.Contains(want, r.MessageType()) {
					return r, nil
				}
				// A late OFFER while waiting for the ACK, or a duplicate.
			case <-t.C:
				break wait
			}
		}
	}
	return nil, fmt.Errorf("%w after %d sends %v apart", errNoReply, g.tries, g.timeout)
}

func appendRecord(path string, rec Record) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if err := json.NewEncoder(f).Encode(rec); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// cpuTime is the user+system time process pid has used so far (0 for pid
// 0 or when it cannot be read). The generator runs in another network
// namespace than the server, but in the same PID namespace.
func cpuTime(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the parenthesized command: state ppid … utime stime.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const clkTck = 100 // USER_HZ on every Linux architecture Go supports here
	return time.Duration(utime+stime) * time.Second / clkTck
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func quantile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[int(q*float64(len(s)-1)+0.5)]
}
