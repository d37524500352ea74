// Command uplinkstart measures how long a DHCP client takes from process
// start until an interface has an IPv4 global address and an IPv4 default
// route out of it. It runs inside the benchmark's node namespace (started by
// bench/run.sh with `ip netns exec`), never in the machine's own.
//
//	uplinkstart -if up0 -runs 7 -warmup 1 -name LABEL [-daemon] [-reset SH] [-after SH] -- CMD ARGS...
//	uplinkstart report -base nodenet -binary PATH RESULTS.jsonl
//
// Each run: flush the interface's IPv4 addresses and non-kernel routes, set
// it down, run -reset; subscribe to netlink address and route updates; take
// t0 right before starting CMD; re-check the interface after every update
// until it is configured (or -timeout); record the elapsed time. Then read
// VmHWM (peak RSS) of CMD if it still runs, run -after, SIGKILL CMD's
// process group and reap it. The last line printed is a JSON summary.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Summary is the JSON line printed after the runs; `report` reads them back.
type Summary struct {
	Name      string    `json:"name"`
	Runs      []float64 `json:"runs"`
	MedianMS  float64   `json:"median_ms"`
	MinMS     float64   `json:"min_ms"`
	MaxMS     float64   `json:"max_ms"`
	PeakRSSKB int64     `json:"peak_rss_kb"` // max VmHWM over runs; 0: never seen running
	WarmupMS  []float64 `json:"warmup_ms"`
	Failed    int       `json:"failed"`
	Note      string    `json:"note,omitempty"`
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "report" {
		if err := report(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "uplinkstart report:", err)
			os.Exit(1)
		}
		return
	}
	os.Exit(measure(os.Args[1:]))
}

type options struct {
	ifname  string
	runs    int
	warmup  int
	name    string
	note    string
	daemon  bool
	reset   string
	after   string
	timeout time.Duration
	hold    time.Duration
	gap     time.Duration
	logPath string
	cmd     []string
}

func measure(args []string) int {
	var o options
	fs := flag.NewFlagSet("uplinkstart", flag.ContinueOnError)
	fs.StringVar(&o.ifname, "if", "up0", "interface to watch")
	fs.IntVar(&o.runs, "runs", 7, "measured runs")
	fs.IntVar(&o.warmup, "warmup", 0, "runs before the measured ones, not counted")
	fs.StringVar(&o.name, "name", "", "label of the client")
	fs.StringVar(&o.note, "note", "", "free text copied into the summary")
	fs.BoolVar(&o.daemon, "daemon", false, "the client must still run once configured (its exit is a failure)")
	fs.StringVar(&o.reset, "reset", "", "sh command run before each run, after the interface is cleaned")
	fs.StringVar(&o.after, "after", "", "sh command run once configured, before the client is killed (env NNB_RUN, NNB_PID)")
	fs.DurationVar(&o.timeout, "timeout", 15*time.Second, "bound of one run")
	fs.DurationVar(&o.hold, "hold", 0, "keep the client running this long after it configured the interface")
	fs.DurationVar(&o.gap, "gap", 200*time.Millisecond, "pause between runs")
	fs.StringVar(&o.logPath, "log", "", "append the client's stdout and stderr to this file (default: discard)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	o.cmd = fs.Args()
	if len(o.cmd) == 0 || o.name == "" || o.runs < 1 {
		fmt.Fprintln(os.Stderr, "usage: uplinkstart -if IF -runs N -name LABEL [-daemon] [-reset SH] -- CMD ARGS...")
		return 2
	}
	var logf *os.File
	if o.logPath != "" {
		f, err := os.OpenFile(o.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer f.Close()
		logf = f
	}

	s := Summary{Name: o.name, Runs: []float64{}, WarmupMS: []float64{}, Note: o.note}
	total := o.warmup + o.runs
	for i := 0; i < total; i++ {
		warm := i < o.warmup
		label := fmt.Sprintf("run %d/%d", i-o.warmup+1, o.runs)
		if warm {
			label = fmt.Sprintf("warm-up %d/%d (not counted)", i+1, o.warmup)
		}
		if logf != nil {
			fmt.Fprintf(logf, "\n===== %s %s: %s\n", o.name, label, strings.Join(o.cmd, " "))
		}
		r := runOnce(o, i-o.warmup+1, logf)
		line := fmt.Sprintf("%-16s %-26s", o.name, label)
		if r.err != nil {
			fmt.Printf("%s FAILED after %.1f ms: %v\n", line, ms(r.elapsed), r.err)
			if !warm {
				s.Failed++
			}
		} else {
			rss := "-"
			if r.hwmKB > 0 {
				rss = fmt.Sprintf("%.1f MB", float64(r.hwmKB)/1024)
			}
			fmt.Printf("%s %8.1f ms   peak RSS %s\n", line, ms(r.elapsed), rss)
			if warm {
				s.WarmupMS = append(s.WarmupMS, round1(ms(r.elapsed)))
			} else {
				s.Runs = append(s.Runs, round1(ms(r.elapsed)))
			}
			if r.hwmKB > s.PeakRSSKB {
				s.PeakRSSKB = r.hwmKB
			}
		}
		if i+1 < total {
			time.Sleep(o.gap)
		}
	}
	if len(s.Runs) > 0 {
		sorted := append([]float64(nil), s.Runs...)
		sort.Float64s(sorted)
		s.MinMS, s.MaxMS = sorted[0], sorted[len(sorted)-1]
		n := len(sorted)
		if n%2 == 1 {
			s.MedianMS = sorted[n/2]
		} else {
			s.MedianMS = round1((sorted[n/2-1] + sorted[n/2]) / 2)
		}
	}
	b, _ := json.Marshal(s)
	fmt.Println(string(b))
	if s.Failed > 0 || len(s.Runs) == 0 {
		return 1
	}
	return 0
}

type result struct {
	elapsed time.Duration
	hwmKB   int64
	err     error
}

func runOnce(o options, run int, logf *os.File) (r result) {
	tl := &timeline{w: logf}
	defer func() {
		if r.err != nil {
			tl.printf("FAILED: %v", r.err)
		}
	}()
	link, err := netlink.LinkByName(o.ifname)
	if err != nil {
		return result{err: err}
	}
	idx := link.Attrs().Index
	if err := clean(link); err != nil {
		return result{err: fmt.Errorf("clean %s: %w", o.ifname, err)}
	}
	env := append(os.Environ(), fmt.Sprintf("NNB_RUN=%d", run))
	if o.reset != "" {
		c := exec.Command("/bin/sh", "-c", o.reset)
		c.Env = env
		if out, err := c.CombinedOutput(); err != nil {
			return result{err: fmt.Errorf("reset: %v: %s", err, out)}
		}
	}

	// Subscribe before the client starts: no change can go unseen.
	done := make(chan struct{})
	defer close(done)
	events := make(chan struct{}, 1)
	nlErr := make(chan error, 1)
	poke := func() {
		select {
		case events <- struct{}{}:
		default: // a check is pending anyway; it reads the current state
		}
	}
	onErr := func(err error) {
		select {
		case nlErr <- err:
		default:
		}
	}
	addrCh := make(chan netlink.AddrUpdate, 256)
	routeCh := make(chan netlink.RouteUpdate, 256)
	if err := netlink.AddrSubscribeWithOptions(addrCh, done, netlink.AddrSubscribeOptions{
		ErrorCallback: onErr, ReceiveBufferSize: 1 << 20}); err != nil {
		return result{err: fmt.Errorf("subscribe addresses: %w", err)}
	}
	if err := netlink.RouteSubscribeWithOptions(routeCh, done, netlink.RouteSubscribeOptions{
		ErrorCallback: onErr, ReceiveBufferSize: 1 << 20}); err != nil {
		return result{err: fmt.Errorf("subscribe routes: %w", err)}
	}
	go func() {
		for {
			select {
			case <-done:
				return
			case u, ok := <-addrCh:
				if !ok {
					return
				}
				if u.LinkIndex == idx {
					tl.printf("netlink: %s address %s", newDel(u.NewAddr), u.LinkAddress.String())
				}
				poke()
			case u, ok := <-routeCh:
				if !ok {
					return
				}
				if u.LinkIndex == idx {
					tl.printf("netlink: %s route %s", routeOp(u.Type), u.Route)
				}
				poke()
			}
		}
	}()
	if ok, err := configured(idx); err != nil {
		return result{err: err}
	} else if ok {
		return result{err: errors.New("interface already configured before the client started")}
	}

	cmd := exec.Command(o.cmd[0], o.cmd[1:]...)
	cmd.Env = env
	var pr, pw *os.File
	if logf != nil {
		// The client's output goes through a pipe so that every line gets
		// its time since t0. The write end is an *os.File: Wait does not
		// wait for the copy.
		if pr, pw, err = os.Pipe(); err != nil {
			return result{err: err}
		}
		cmd.Stdout, cmd.Stderr = pw, pw
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}

	t0 := time.Now()
	tl.start(t0)
	err = cmd.Start()
	if pw != nil {
		pw.Close()
	}
	if err != nil {
		if pr != nil {
			pr.Close()
		}
		return result{err: err}
	}
	if pr != nil {
		copied := make(chan struct{})
		go func() {
			defer close(copied)
			sc := bufio.NewScanner(pr)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				tl.printf("| %s", sc.Text())
			}
		}()
		defer func() {
			// After the kill: wait a little for the last lines, then drop
			// the pipe (a child outside the process group may hold it).
			select {
			case <-copied:
			case <-time.After(500 * time.Millisecond):
			}
			pr.Close()
		}()
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	defer func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}()
	watchExit := exited

	deadline := time.NewTimer(o.timeout)
	defer deadline.Stop()
	var exitGrace <-chan time.Time
	poke() // check once right after the start, then after every update
	for {
		select {
		case <-events:
		case err := <-nlErr:
			return result{elapsed: time.Since(t0), err: fmt.Errorf("netlink: %w", err)}
		case <-watchExit:
			if o.daemon {
				return result{elapsed: time.Since(t0), err: fmt.Errorf("daemon exited before configuring: %v", waitErr)}
			}
			// A one-shot client may still be finishing through its script
			// (its children); give them a moment, then give up.
			exitGrace = time.After(2 * time.Second)
			watchExit = nil
			continue
		case <-exitGrace:
			return result{elapsed: time.Since(t0), err: fmt.Errorf("client exited (%v) without configuring %s", waitErr, o.ifname)}
		case <-deadline.C:
			return result{elapsed: time.Since(t0), err: fmt.Errorf("not configured within %s", o.timeout)}
		}
		ok, err := configured(idx)
		if err != nil {
			return result{elapsed: time.Since(t0), err: err}
		}
		if ok {
			r.elapsed = time.Since(t0)
			tl.printf("configured: IPv4 address and default route on %s", o.ifname)
			break
		}
	}
	if o.hold > 0 {
		time.Sleep(o.hold)
	}
	running := true
	select {
	case <-exited:
		running = false
	default:
	}
	if running {
		r.hwmKB = vmHWM(cmd.Process.Pid)
		tl.printf("client still running; VmHWM %d kB", r.hwmKB)
	} else if o.daemon {
		r.err = fmt.Errorf("daemon exited after configuring: %v", waitErr)
		return r
	}
	if o.after != "" {
		c := exec.Command("/bin/sh", "-c", o.after)
		c.Env = append(env, fmt.Sprintf("NNB_PID=%d", cmd.Process.Pid))
		if logf != nil {
			c.Stdout, c.Stderr = logf, logf
		}
		if err := c.Run(); err != nil {
			r.err = fmt.Errorf("after: %w", err)
		}
	}
	return r
}

// timeline writes log lines stamped with the time since the client started.
type timeline struct {
	w  *os.File
	mu sync.Mutex
	t0 time.Time
}

func (t *timeline) start(t0 time.Time) {
	t.mu.Lock()
	t.t0 = t0
	t.mu.Unlock()
}

func (t *timeline) printf(format string, args ...any) {
	if t.w == nil {
		return
	}
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	stamp := "[   before t0]"
	if !t.t0.IsZero() {
		stamp = fmt.Sprintf("[+%9.1f ms]", ms(now.Sub(t.t0)))
	}
	fmt.Fprintf(t.w, "%s %s\n", stamp, fmt.Sprintf(format, args...))
}

func newDel(isNew bool) string {
	if isNew {
		return "new"
	}
	return "del"
}

func routeOp(t uint16) string {
	switch t {
	case unix.RTM_NEWROUTE:
		return "new"
	case unix.RTM_DELROUTE:
		return "del"
	}
	return fmt.Sprint(t)
}

// clean makes the interface look like nobody configured it: no IPv4
// address, no route of its own other than the kernel's, link down.
func clean(link netlink.Link) error {
	idx := link.Attrs().Index
	addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return err
	}
	for i := range addrs {
		if err := netlink.AddrDel(link, &addrs[i]); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			return fmt.Errorf("del %s: %w", addrs[i].IPNet, err)
		}
	}
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4,
		&netlink.Route{LinkIndex: idx, Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_OIF|netlink.RT_FILTER_TABLE)
	if err != nil {
		return err
	}
	for i := range routes {
		if routes[i].Protocol == unix.RTPROT_KERNEL {
			continue
		}
		if err := netlink.RouteDel(&routes[i]); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("del route %s: %w", routes[i], err)
		}
	}
	return netlink.LinkSetDown(link)
}

// configured: an IPv4 global address on the interface and an IPv4 default
// route (main table) out of it.
func configured(idx int) (bool, error) {
	link, err := netlink.LinkByIndex(idx)
	if err != nil {
		return false, err
	}
	addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return false, err
	}
	hasAddr := false
	for _, a := range addrs {
		if a.Scope == unix.RT_SCOPE_UNIVERSE {
			hasAddr = true
			break
		}
	}
	if !hasAddr {
		return false, nil
	}
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4,
		&netlink.Route{LinkIndex: idx, Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_OIF|netlink.RT_FILTER_TABLE)
	if err != nil {
		return false, err
	}
	for _, r := range routes {
		if r.Dst == nil {
			return true, nil
		}
		if ones, _ := r.Dst.Mask.Size(); ones == 0 && r.Dst.IP.To4() != nil && r.Dst.IP.Equal(net.IPv4zero) {
			return true, nil
		}
	}
	return false, nil
}

// vmHWM reads the process's peak resident set size in kB (0 if unknown).
func vmHWM(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb
		}
	}
	return 0
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func round1(f float64) float64 { return math.Round(f*10) / 10 }

// report prints the comparison table from the JSON summaries (one per line;
// other lines are skipped).
func report(args []string) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	base := fs.String("base", "nodenet", "summary name the ratios are taken against")
	binary := fs.String("binary", "", "nodenet binary whose size to print")
	rssOf := fs.String("rss-of", "nodenet", "comma-separated summary names whose peak RSS is nodenet's daemon RSS")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var all []Summary
	for _, path := range fs.Args() {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if !strings.HasPrefix(line, "{") {
				continue
			}
			var s Summary
			if err := json.Unmarshal([]byte(line), &s); err == nil && s.Name != "" {
				all = append(all, s)
			}
		}
		f.Close()
	}
	var baseMed float64
	for _, s := range all {
		if s.Name == *base && len(s.Runs) > 0 {
			baseMed = s.MedianMS
		}
	}
	nameW := len("client")
	for _, s := range all {
		nameW = max(nameW, len(s.Name))
	}
	fmt.Printf("%-*s | %9s | %9s | %9s | %4s | %s\n", nameW, "client", "median ms", "min", "max", "runs", "ratio to "+*base)
	fmt.Printf("%s-|-%s-|-%s-|-%s-|-%s-|-%s\n", strings.Repeat("-", nameW), strings.Repeat("-", 9),
		strings.Repeat("-", 9), strings.Repeat("-", 9), strings.Repeat("-", 4), strings.Repeat("-", 24))
	for _, s := range all {
		runs := fmt.Sprintf("%d", len(s.Runs))
		if s.Failed > 0 {
			runs = fmt.Sprintf("%d+%dF", len(s.Runs), s.Failed)
		}
		if len(s.Runs) == 0 {
			fmt.Printf("%-*s | %9s | %9s | %9s | %4s | %s\n", nameW, s.Name, "FAILED", "-", "-", runs, "-")
			continue
		}
		ratio := "-"
		switch {
		case s.Name == *base:
			ratio = "1.0x (reference)"
		case baseMed > 0:
			ratio = fmt.Sprintf("%s/%s = %s", s.Name, *base, fmtRatio(s.MedianMS/baseMed))
		}
		fmt.Printf("%-*s | %9.1f | %9.1f | %9.1f | %4s | %s\n", nameW, s.Name, s.MedianMS, s.MinMS, s.MaxMS, runs, ratio)
	}
	fmt.Println()
	for _, s := range all {
		if s.Note != "" {
			fmt.Printf("  %-*s  %s\n", nameW, s.Name, s.Note)
		}
	}
	fmt.Println()
	if *binary != "" {
		st, err := os.Stat(*binary)
		if err != nil {
			return err
		}
		fmt.Printf("nodenet binary size: %.1f MB (%d bytes, stripped: -trimpath -ldflags '-s -w', CGO_ENABLED=0)\n",
			float64(st.Size())/(1<<20), st.Size())
	}
	var rss int64
	var from []string
	for _, name := range strings.Split(*rssOf, ",") {
		for _, s := range all {
			if s.Name == name && s.PeakRSSKB > 0 {
				from = append(from, name)
				rss = max(rss, s.PeakRSSKB)
			}
		}
	}
	if rss > 0 {
		fmt.Printf("nodenet daemon peak RSS: %.1f MB (VmHWM %d kB, max over the runs of %s)\n",
			float64(rss)/1024, rss, strings.Join(from, ", "))
	} else {
		fmt.Println("nodenet daemon peak RSS: unknown (no run saw the daemon running)")
	}
	return nil
}

func fmtRatio(r float64) string {
	if r >= 10 {
		return fmt.Sprintf("%.0fx", r)
	}
	if r < 0.1 {
		return fmt.Sprintf("%.3fx", r)
	}
	return fmt.Sprintf("%.1fx", r)
}
