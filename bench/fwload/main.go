// Command fwload measures new TCP connections through a port forward:
// bench/fw.sh runs it in the "isp" namespace against the node's uplink
// address, with few and with many forwards installed (nodenet's nftables
// maps, and iptables DNAT rules as an anchor). Standard library only.
//
//	fwload -addr 10.99.0.2:8080 -c 8 -d 5s -impl nodenet -forwards 10 -round 1 -out R.jsonl
//	fwload serve -listen :80     # the member's server: accepts, reads until the peer goes
//	fwload report R.jsonl        # the tables, ratios and goals (with fwjoin's join records)
//
// Each worker loops for -d: a blocking socket, connect(2) (timed: SYN out
// to SYN-ACK in, the path through DNAT both ways), then close with
// SO_LINGER 0, so the connection ends with a RST and neither side keeps a
// TIME_WAIT (no port runs out, the node's conntrack entry goes to CLOSE).
// One JSON line per run: connections/s, connect latency median, p90 and
// p99 in µs, errors, and the CPU the machine and (with -cpu-pid) a process
// such as ovs-vswitchd spent meanwhile.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Record is one load run, a line of the results file.
type Record struct {
	Kind        string  `json:"kind"` // "dnat"
	Impl        string  `json:"impl"` // nodenet, iptables
	Forwards    int     `json:"forwards"`
	Round       int     `json:"round"`
	Concurrency int     `json:"concurrency"`
	Seconds     float64 `json:"seconds"`
	Conns       int     `json:"conns"`
	ConnsPerS   float64 `json:"conns_per_s"`
	P10US       float64 `json:"p10_us"`
	MedianUS    float64 `json:"median_us"`
	P90US       float64 `json:"p90_us"`
	P99US       float64 `json:"p99_us"`
	MaxUS       float64 `json:"max_us"`
	Errors      int     `json:"errors"`
	FirstError  string  `json:"first_error,omitempty"`
	CPUBusy     float64 `json:"cpu_busy"`             // share of all CPUs busy during the run
	CPUUS       float64 `json:"cpu_us"`               // the machine's busy CPU time per connection
	PidCPUUS    float64 `json:"pid_cpu_us,omitempty"` // -cpu-pid's CPU per connection
	Load1       float64 `json:"load1"`                // load average (1 min) at the end
}

func main() {
	var err error
	switch {
	case len(os.Args) > 1 && os.Args[1] == "serve":
		err = serve(os.Args[2:])
	case len(os.Args) > 1 && os.Args[1] == "report":
		err = report(os.Args[2:])
	default:
		err = load(os.Args[1:])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fwload:", err)
		os.Exit(1)
	}
}

func load(args []string) error {
	fs := flag.NewFlagSet("fwload", flag.ContinueOnError)
	addr := fs.String("addr", "10.99.0.2:8080", "where to connect (IPv4:port)")
	conc := fs.Int("c", 8, "workers, each one connection at a time")
	dur := fs.Duration("d", 5*time.Second, "how long")
	impl := fs.String("impl", "", "label: what forwards (nodenet, iptables)")
	fwds := fs.Int("forwards", 0, "label: forwards installed")
	round := fs.Int("round", 0, "label: round")
	out := fs.String("out", "", "results file (JSON lines, appended); stdout when empty")
	check := fs.Bool("check", false, "fail on any error (a check run before measuring)")
	pid := fs.Int("cpu-pid", 0, "also report this process's CPU per connection (e.g. ovs-vswitchd)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ap, err := netip.ParseAddrPort(*addr)
	if err != nil || !ap.Addr().Is4() || *conc < 1 || *dur <= 0 {
		return fmt.Errorf("want -addr IPv4:port, -c >= 1, -d > 0")
	}
	sa := &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}

	type result struct {
		lat   []time.Duration
		errs  int
		first error
	}
	results := make([]result, *conc)
	cpu0, _ := cpuTimes()
	pid0 := pidCPU(*pid)
	start := time.Now()
	deadline := start.Add(*dur)
	var wg sync.WaitGroup
	for w := range results {
		wg.Add(1)
		go func(r *result) {
			defer wg.Done()
			r.lat = make([]time.Duration, 0, 1<<14)
			for time.Now().Before(deadline) {
				d, err := connectOnce(sa)
				if err != nil {
					r.errs++
					if r.first == nil {
						r.first = err
					}
					continue
				}
				r.lat = append(r.lat, d)
			}
		}(&results[w])
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu1, _ := cpuTimes()
	pid1 := pidCPU(*pid)

	rec := Record{Kind: "dnat", Impl: *impl, Forwards: *fwds, Round: *round, Concurrency: *conc,
		Seconds: elapsed.Seconds()}
	var all []time.Duration
	for _, r := range results {
		all = append(all, r.lat...)
		rec.Errors += r.errs
		if r.first != nil && rec.FirstError == "" {
			rec.FirstError = r.first.Error()
		}
	}
	slices.Sort(all)
	rec.Conns = len(all)
	rec.ConnsPerS = float64(len(all)) / elapsed.Seconds()
	rec.P10US = us(quantileD(all, 0.1))
	rec.MedianUS = us(quantileD(all, 0.5))
	rec.P90US = us(quantileD(all, 0.9))
	rec.P99US = us(quantileD(all, 0.99))
	if len(all) > 0 {
		rec.MaxUS = us(all[len(all)-1])
	}
	if total := cpu1.total - cpu0.total; total > 0 {
		rec.CPUBusy = 1 - float64(cpu1.idle-cpu0.idle)/float64(total)
		if len(all) > 0 {
			busy := float64(total-(cpu1.idle-cpu0.idle)) / clockTicks
			rec.CPUUS = busy * 1e6 / float64(len(all))
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		rec.Load1, _ = strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	}
	if *pid != 0 && len(all) > 0 && pid0 >= 0 && pid1 >= pid0 {
		rec.PidCPUUS = float64(pid1-pid0) * 1e6 / clockTicks / float64(len(all))
	}

	line, _ := json.Marshal(rec)
	fmt.Printf("%s/%d c=%d: %d conns in %.1f s (%.0f/s), connect median %.0f µs p99 %.0f µs, %d errors%s\n",
		rec.Impl, rec.Forwards, rec.Concurrency, rec.Conns, rec.Seconds, rec.ConnsPerS, rec.MedianUS, rec.P99US,
		rec.Errors, firstErr(rec.FirstError))
	if *out != "" {
		f, err := os.OpenFile(*out, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return err
		}
		_, err = f.Write(append(line, '\n'))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	if rec.Conns == 0 {
		return fmt.Errorf("no connection made%s", firstErr(rec.FirstError))
	}
	if *check && rec.Errors > 0 {
		return fmt.Errorf("%d failed connections%s", rec.Errors, firstErr(rec.FirstError))
	}
	return nil
}

func firstErr(s string) string {
	if s == "" {
		return ""
	}
	return " (first: " + s + ")"
}

// connectOnce times one blocking connect(2) and closes the socket with a
// RST. The SYN is retried once (TCP_SYNCNT 1: about 3 s) before it counts
// as an error.
func connectOnce(sa *syscall.SockaddrInet4) (time.Duration, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("socket: %w", err)
	}
	defer syscall.Close(fd)
	if err := syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_SYNCNT, 1); err != nil {
		return 0, fmt.Errorf("TCP_SYNCNT: %w", err)
	}
	t0 := time.Now()
	for {
		err = syscall.Connect(fd, sa)
		// A signal (Go's runtime sends some) interrupts the wait; calling
		// connect again waits on for the same handshake.
		if err == syscall.EINTR || err == syscall.EALREADY {
			continue
		}
		if err == syscall.EISCONN {
			err = nil
		}
		break
	}
	d := time.Since(t0)
	if err != nil {
		return 0, fmt.Errorf("connect: %w", err)
	}
	if err := syscall.SetsockoptLinger(fd, syscall.SOL_SOCKET, syscall.SO_LINGER, &syscall.Linger{Onoff: 1, Linger: 0}); err != nil {
		return 0, fmt.Errorf("SO_LINGER: %w", err)
	}
	return d, nil
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

func quantileD(s []time.Duration, q float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	return s[int(q*float64(len(s)-1)+0.5)]
}

// clockTicks is USER_HZ, the unit of /proc's CPU times (100 on Linux).
const clockTicks = 100

type cpuSample struct{ total, idle uint64 }

// cpuTimes reads the machine's CPU times from /proc/stat (idle includes
// iowait).
func cpuTimes() (cpuSample, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuSample{}, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return cpuSample{}, fmt.Errorf("/proc/stat: %q", line)
	}
	var s cpuSample
	for i, v := range f[1:] {
		n, _ := strconv.ParseUint(v, 10, 64)
		if i >= 8 { // guest times are in user already
			break
		}
		s.total += n
		if i == 3 || i == 4 {
			s.idle += n
		}
	}
	return s, nil
}

// pidCPU is a process's utime+stime in clock ticks, its threads included
// (-1 when unknown).
func pidCPU(pid int) int64 {
	if pid == 0 {
		return -1
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return -1
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return u + st
}

// serve is the member's server: it accepts and reads until the client
// goes (the load generator resets every connection).
func serve(args []string) error {
	fs := flag.NewFlagSet("fwload serve", flag.ContinueOnError)
	listen := fs.String("listen", ":80", "TCP address to listen on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp4", *listen)
	if err != nil {
		return err
	}
	fmt.Printf("fwload: serving on %s\n", ln.Addr())
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		ln.Close()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			// ECONNABORTED and the like: the client reset it in the queue.
			time.Sleep(time.Millisecond)
			continue
		}
		go func() {
			io.Copy(io.Discard, c)
			c.Close()
		}()
	}
}
