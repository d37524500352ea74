// Command ovsports measures adding Open vSwitch ports one at a time, each
// call returning only once ovs-vswitchd has applied the port, with one of
// three clients: nodenet's ovsdb.Client, `ovs-vsctl add-port` (the anchor),
// and a minimal raw client that only writes and waits for cur_cfg (the
// floor: what ovsdb-server and ovs-vswitchd cost by themselves). bench/ovs.sh
// runs each against a fresh ovsdb-server and ovs-vswitchd in a namespace.
//
//	ovsports -mode nodenet|vsctl|floor -db unix:PATH -bridge br0 -ports 1000 [-netns NS] -out RESULTS.jsonl
//	ovsports -mode standin -db unix:PATH
//	ovsports report [-goals=false] RESULTS.jsonl
//
// Setup (root row, bridge) is not timed. Every port gets one JSON line with
// its duration, the client's CPU time and the bytes it read during the
// call; a last line per run holds totals. -mode standin plays ovs-vswitchd's
// part in the database (ofport, cur_cfg) without any datapath, so that a
// run against it shows what the client itself costs.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"nodenet/ovsdb"
)

// Record is one line of the results file.
type Record struct {
	Kind   string `json:"kind"` // "port" or "run"
	Client string `json:"client"`

	// kind "port"
	N          int     `json:"n,omitempty"` // 1-based
	Name       string  `json:"name,omitempty"`
	MS         float64 `json:"ms,omitempty"`
	TransactMS float64 `json:"transact_ms,omitempty"` // floor: until the transact reply, the rest is the wait for cur_cfg
	PortCPUMS  float64 `json:"cpu_ms,omitempty"`      // CPU the client used during the call (all its threads; vsctl: its children)
	ReadBytes  int64   `json:"read_bytes,omitempty"`  // nodenet, floor: bytes this process read during the call (rchar: the server's messages)

	// kind "run"
	Ports   int     `json:"ports,omitempty"`
	SetupMS float64 `json:"setup_ms,omitempty"`
	TotalMS float64 `json:"total_ms,omitempty"`     // the timed calls only
	CPUMS   float64 `json:"total_cpu_ms,omitempty"` // user+system of this process and its children, setup included
	Note    string  `json:"note,omitempty"`
	Err     string  `json:"error,omitempty"`
}

// owner marks what the nodenet client makes (external_ids:nodenet).
const owner = "bench"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "report" {
		if err := report(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "ovsports report:", err)
			os.Exit(1)
		}
		return
	}
	os.Exit(measure(os.Args[1:]))
}

type options struct {
	mode       string
	db         string
	bridge     string
	ports      int
	netns      string
	out        string
	timeout    time.Duration
	cpuprofile string
}

// client adds ports; setup runs once before, untimed.
type client interface {
	setup(ctx context.Context) error
	addPort(ctx context.Context, name string, rec *Record) error
	close()
}

func measure(args []string) int {
	var o options
	fs := flag.NewFlagSet("ovsports", flag.ContinueOnError)
	fs.StringVar(&o.mode, "mode", "", "client: nodenet, vsctl or floor; standin: play ovs-vswitchd's part in the database until SIGTERM")
	fs.StringVar(&o.db, "db", "", "ovsdb-server address, unix:PATH")
	fs.StringVar(&o.bridge, "bridge", "br0", "bridge to create (netdev datapath) and add the ports to")
	fs.IntVar(&o.ports, "ports", 1000, "ports to add, p0001 upwards")
	fs.StringVar(&o.netns, "netns", "", "vsctl: run ovs-vsctl with `ip netns exec NS`")
	fs.StringVar(&o.out, "out", "", "append the JSON lines to this file (default: stdout)")
	fs.DurationVar(&o.timeout, "timeout", time.Minute, "bound of one call")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the timed part to this file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.db == "" || o.ports < 1 || fs.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: ovsports -mode nodenet|vsctl|floor|standin -db unix:PATH [-bridge br0] [-ports N] [-netns NS] [-out FILE]")
		return 2
	}
	if o.mode == "standin" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		defer stop()
		if err := runStandin(ctx, o.db); err != nil {
			fmt.Fprintln(os.Stderr, "ovsports standin:", err)
			return 1
		}
		return 0
	}
	var c client
	switch o.mode {
	case "nodenet":
		c = newNodenet(o)
	case "vsctl":
		c = &vsctl{o: o}
	case "floor":
		c = &floor{o: o}
	default:
		fmt.Fprintf(os.Stderr, "ovsports: -mode %q: want nodenet, vsctl or floor\n", o.mode)
		return 2
	}
	out := os.Stdout
	if o.out != "" {
		f, err := os.OpenFile(o.out, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, "ovsports:", err)
			return 1
		}
		defer f.Close()
		out = f
	}
	enc := json.NewEncoder(out)
	run := Record{Kind: "run", Client: o.mode, Note: describe(o)}
	err := runAll(o, c, enc, &run)
	c.close()
	if err != nil {
		run.Err = err.Error()
		fmt.Fprintf(os.Stderr, "ovsports %s: %v\n", o.mode, err)
	}
	run.CPUMS = cpuMS()
	if err := enc.Encode(run); err != nil {
		fmt.Fprintln(os.Stderr, "ovsports:", err)
		return 1
	}
	fmt.Printf("%s: %d ports in %.1f s (setup %.0f ms), client CPU %.1f s\n",
		o.mode, run.Ports, run.TotalMS/1000, run.SetupMS, run.CPUMS/1000)
	if run.Err != "" {
		return 1
	}
	return 0
}

func runAll(o options, c client, enc *json.Encoder, run *Record) error {
	t0 := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	err := c.setup(ctx)
	cancel()
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	run.SetupMS = ms(time.Since(t0))
	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	var total time.Duration
	progress := max(o.ports/10, 1)
	for i := 1; i <= o.ports; i++ {
		name := fmt.Sprintf("p%04d", i)
		rec := Record{Kind: "port", Client: o.mode, N: i, Name: name}
		ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
		cpu0, read0 := cpuMS(), readBytes()
		start := time.Now()
		err := c.addPort(ctx, name, &rec)
		d := time.Since(start)
		rec.PortCPUMS = cpuMS() - cpu0
		if o.mode != "vsctl" {
			rec.ReadBytes = readBytes() - read0
		}
		cancel()
		if err != nil {
			return fmt.Errorf("port %d (%s): %w", i, name, err)
		}
		total += d
		rec.MS = ms(d)
		if err := enc.Encode(rec); err != nil {
			return err
		}
		run.Ports, run.TotalMS = i, ms(total)
		if i%progress == 0 {
			fmt.Printf("%s: %4d ports, last %.1f ms\n", o.mode, i, rec.MS)
		}
	}
	return nil
}

func describe(o options) string {
	switch o.mode {
	case "nodenet":
		return "ovsdb.Client.EnsurePort (type internal), bridge by EnsureRoot+EnsureBridge"
	case "vsctl":
		return "exec " + strings.Join(vsctlArgs(o, "add-port", o.bridge, "pN", "--", "set", "Interface", "pN", "type=internal"), " ")
	default:
		return "one ovsdb.Conn, one monitor of Open_vSwitch.cur_cfg; per port one transact (2 inserts, 2 mutates, select next_cfg) and the wait for cur_cfg"
	}
}

// nodenet is nodenet's own client.
type nodenet struct {
	o options
	c *ovsdb.Client
}

func newNodenet(o options) *nodenet {
	c := &ovsdb.Client{Addr: o.db}
	c.Start()
	return &nodenet{o: o, c: c}
}

func (n *nodenet) setup(ctx context.Context) error {
	if err := n.c.EnsureRoot(ctx); err != nil {
		return err
	}
	_, err := n.c.EnsureBridge(ctx, ovsdb.BridgeSpec{Name: n.o.bridge, DatapathType: "netdev", Owner: owner})
	return err
}

func (n *nodenet) addPort(ctx context.Context, name string, _ *Record) error {
	iface, err := n.c.EnsurePort(ctx, ovsdb.PortSpec{Bridge: n.o.bridge, Name: name, Type: "internal", Owner: owner})
	if err != nil {
		return err
	}
	if iface.OFPort <= 0 {
		return fmt.Errorf("ofport %d after EnsurePort", iface.OFPort)
	}
	return nil
}

func (n *nodenet) close() { n.c.Close() }

// vsctl execs ovs-vsctl for every call, waiting for ovs-vswitchd (its default).
type vsctl struct{ o options }

func vsctlArgs(o options, args ...string) []string {
	cmd := []string{"ovs-vsctl", "--db=" + o.db}
	if o.netns != "" {
		cmd = append([]string{"ip", "netns", "exec", o.netns}, cmd...)
	}
	return append(cmd, args...)
}

func (v *vsctl) run(ctx context.Context, args ...string) error {
	argv := vsctlArgs(v.o, args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
	}
	if len(out) > 0 {
		// ovs-vsctl reports an interface ovs-vswitchd could not add and exits 0.
		return fmt.Errorf("%s: %s", strings.Join(argv, " "), strings.TrimSpace(string(out)))
	}
	return nil
}

func (v *vsctl) setup(ctx context.Context) error {
	if err := v.run(ctx, "init"); err != nil {
		return err
	}
	return v.run(ctx, "add-br", v.o.bridge, "--", "set", "Bridge", v.o.bridge, "datapath_type=netdev")
}

func (v *vsctl) addPort(ctx context.Context, name string, _ *Record) error {
	return v.run(ctx, "add-port", v.o.bridge, name, "--", "set", "Interface", name, "type=internal")
}

func (v *vsctl) close() {}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// cpuMS is the user+system time of this process and its waited-for children.
func cpuMS() float64 {
	var total time.Duration
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if syscall.Getrusage(who, &ru) == nil {
			total += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
	}
	return ms(total)
}

// readBytes is what this process has read with read(2) and the like, sockets
// included (rchar in /proc/self/io); 0 when unknown.
func readBytes() int64 {
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "rchar: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

var errNoRoot = errors.New("no Open_vSwitch row")
