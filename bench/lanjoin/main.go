// Command lanjoin measures joining and leaving members of one bridge LAN
// with a given number of members already on it, through nodenet's control
// socket or with the shell baseline (`ip link add … veth … && ovs-vsctl
// add-port`). bench/lan.sh runs both, each against its own nodenet daemon
// and Open vSwitch in a fresh namespace.
//
//	lanjoin -mode nodenet -socket S -netns-prefix P -levels 1,100,1000 -samples 20 -out R.jsonl
//	lanjoin -mode shell -db unix:PATH -node NS -netns-prefix P ... -out R.jsonl
//	lanjoin report R.jsonl [DAEMON.log]
//
// Members that fill the LAN go into namespaces P0, P1, … (-per-netns each,
// interfaces e1, e2, …); the timed probes join and leave in namespace
// Pprobe. Filling is timed too and reported apart. Both clients do the same
// work per member: a veth whose peer is made inside the member's namespace,
// both ends up, the member's address and default route, the OVS port, and
// return once ovs-vswitchd applied it.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"nodenet/api"
	"nodenet/lan"
)

// Record is one line of the results file.
type Record struct {
	Client string  `json:"client"`
	Op     string  `json:"op"`    // join, leave, fill
	Level  int     `json:"level"` // members on the LAN besides the probe
	MS     float64 `json:"ms"`
}

const (
	network = "bench"
	cidr    = "10.200.0.0/21"
	gateway = "10.200.0.1"
	bridge  = "br0" // the shell baseline's bridge
)

var probeAddr = netip.MustParseAddr("10.200.7.254")

type options struct {
	mode, socket, db, node, prefix, out string
	levels                              []int
	samples, perNetns                   int
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "report" {
		if err := report(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "lanjoin report:", err)
			os.Exit(1)
		}
		return
	}
	o, err := parse(os.Args[1:])
	if err == nil {
		err = run(o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "lanjoin:", err)
		os.Exit(1)
	}
}

func parse(args []string) (options, error) {
	var o options
	var levels string
	fs := flag.NewFlagSet("lanjoin", flag.ContinueOnError)
	fs.StringVar(&o.mode, "mode", "", "nodenet or shell")
	fs.StringVar(&o.socket, "socket", "", "nodenet's control socket (mode nodenet)")
	fs.StringVar(&o.db, "db", "", "OVSDB remote (mode shell)")
	fs.StringVar(&o.node, "node", "", "the node's namespace, where the bridge is (mode shell)")
	fs.StringVar(&o.prefix, "netns-prefix", "", "member namespaces: PREFIX0, PREFIX1, …, PREFIXprobe")
	fs.StringVar(&o.out, "out", "", "results file (JSON lines, appended)")
	fs.StringVar(&levels, "levels", "1,100,1000", "members already on the LAN when probing")
	fs.IntVar(&o.samples, "samples", 20, "probe joins (and leaves) per level")
	fs.IntVar(&o.perNetns, "per-netns", 25, "filling members per namespace")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	for _, f := range strings.Split(levels, ",") {
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 {
			return o, fmt.Errorf("-levels %q: want increasing counts", levels)
		}
		o.levels = append(o.levels, n)
	}
	if o.mode != "nodenet" && o.mode != "shell" || o.prefix == "" || o.out == "" {
		return o, fmt.Errorf("want -mode nodenet|shell, -netns-prefix and -out")
	}
	return o, nil
}

// client is one way of making members.
type client interface {
	setup() error
	join(nic, netns, ifname string, addr netip.Addr) error
	leave(nic string) error
}

func run(o options) error {
	var c client = &nodenetClient{api: api.NewClient(o.socket)}
	if o.mode == "shell" {
		c = &shellClient{db: o.db, node: o.node, hosts: map[string]string{}}
	}
	out, err := os.OpenFile(o.out, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	enc := json.NewEncoder(out)
	if err := c.setup(); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	// The shell baseline's addresses (nodenet picks its own, the same way):
	// fillers from .0.2 up, the probe one no filler reaches.
	addr := netip.MustParseAddr(gateway).Next()
	filled := 0
	for _, level := range o.levels {
		start := time.Now()
		for ; filled < level; filled++ {
			nic := fmt.Sprintf("f%d", filled+1)
			ns := fmt.Sprintf("%s%d", o.prefix, filled/o.perNetns)
			t0 := time.Now()
			if err := c.join(nic, ns, fmt.Sprintf("e%d", filled+1), addr); err != nil {
				return fmt.Errorf("fill %s: %w", nic, err)
			}
			enc.Encode(Record{Client: o.mode, Op: "fill", Level: filled, MS: ms(time.Since(t0))})
			addr = addr.Next()
		}
		fmt.Printf("%s: %d members on the LAN (filled in %.1f s); probing %d joins and leaves\n",
			o.mode, level, time.Since(start).Seconds(), o.samples)
		for s := 0; s < o.samples; s++ {
			t0 := time.Now()
			if err := c.join("probe", o.prefix+"probe", "p0", probeAddr); err != nil {
				return fmt.Errorf("probe join at %d: %w", level, err)
			}
			enc.Encode(Record{Client: o.mode, Op: "join", Level: level, MS: ms(time.Since(t0))})
			t0 = time.Now()
			if err := c.leave("probe"); err != nil {
				return fmt.Errorf("probe leave at %d: %w", level, err)
			}
			enc.Encode(Record{Client: o.mode, Op: "leave", Level: level, MS: ms(time.Since(t0))})
		}
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// nodenetClient joins through the control socket; the daemon picks the
// member's address (the next free one, as the baseline's counter does).
type nodenetClient struct{ api *api.Client }

func (c *nodenetClient) setup() error {
	return c.api.Create(context.Background(), network, lan.Bridge,
		lan.Settings{Network: lan.IPSettings{CIDR: cidr, Gateway: gateway}})
}

func (c *nodenetClient) join(nic, netns, ifname string, _ netip.Addr) error {
	_, err := c.api.Join(context.Background(), network, nic, nil, lan.JoinOptions{Netns: netns, Ifname: ifname})
	return err
}

func (c *nodenetClient) leave(nic string) error {
	return c.api.Leave(context.Background(), network, nic)
}

// shellClient is what a node agent without nodenet runs: one shell per
// member, ip(8) and ovs-vsctl (which waits for ovs-vswitchd by default).
type shellClient struct {
	db, node string
	hosts    map[string]string // nic -> host-side veth
	next     int
}

func (c *shellClient) setup() error {
	gw := gateway + "/" + strings.Split(cidr, "/")[1]
	return sh(fmt.Sprintf("ovs-vsctl --db=%s add-br %s -- set Bridge %s datapath_type=netdev &&"+
		" ip -n %s addr add %s dev %s && ip -n %s link set %s up", c.db, bridge, bridge, c.node, gw, bridge, c.node, bridge))
}

func (c *shellClient) join(nic, netns, ifname string, addr netip.Addr) error {
	c.next++
	host := fmt.Sprintf("bv%d", c.next)
	c.hosts[nic] = host
	bits := strings.Split(cidr, "/")[1]
	return sh(fmt.Sprintf("ip -n %[1]s link add %[2]s type veth peer name %[3]s netns %[4]s &&"+
		" ip -n %[1]s link set %[2]s up && ip -n %[4]s addr add %[5]s/%[6]s dev %[3]s &&"+
		" ip -n %[4]s link set %[3]s up && ip -n %[4]s route replace default via %[7]s &&"+
		" ovs-vsctl --db=%[8]s add-port %[9]s %[2]s",
		c.node, host, ifname, netns, addr, bits, gateway, c.db, bridge))
}

func (c *shellClient) leave(nic string) error {
	host := c.hosts[nic]
	delete(c.hosts, nic)
	return sh(fmt.Sprintf("ovs-vsctl --db=%s del-port %s %s && ip -n %s link del %s", c.db, bridge, host, c.node, host))
}

func sh(script string) error {
	out, err := exec.Command("sh", "-c", script).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", script, err, out)
	}
	return nil
}
