// Command fwjoin installs and removes port forwards through nodenet's
// control socket (the Go client, api.NewClient) and times probe Joins, for
// bench/fw.sh.
//
//	fwjoin fill  -socket S -network N -netns NS -prefix f -members K -forwards F -base 20000
//	fwjoin leave -socket S -network N -prefix f -members K
//	fwjoin probe -socket S -network N -netns NS -installed F -round R -samples 7 -port 8090 -out R.jsonl
//	fwjoin count -socket S [-want F]
//
// fill joins members PREFIX1…PREFIXK (veths into NS, named like the
// member) with F forwards spread over them, host ports BASE, BASE+1, …,
// each to the member's port 80 (no forward when F is 0). probe joins and
// leaves a member "probe" SAMPLES times with one forward (PORT=80) and as
// many times without any, each call timed, and appends one JSON line per
// call to the results file (fwload report reads them).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	"nodenet/api"
	"nodenet/lan"
)

type record struct {
	Kind      string  `json:"kind"` // "join"
	Op        string  `json:"op"`   // join, join-nofwd, leave, leave-nofwd
	Installed int     `json:"installed"`
	Round     int     `json:"round"`
	MS        float64 `json:"ms"`
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: fwjoin fill|leave|probe|count -socket S ...")
		os.Exit(2)
	}
	fs := flag.NewFlagSet("fwjoin "+os.Args[1], flag.ExitOnError)
	socket := fs.String("socket", api.DefaultSocket, "nodenet's control socket")
	network := fs.String("network", "bench", "the LAN")
	netns := fs.String("netns", "", "members' namespace (fill, probe)")
	prefix := fs.String("prefix", "f", "members' names: PREFIX1, PREFIX2, … (fill, leave)")
	members := fs.Int("members", 1, "members (fill, leave)")
	forwards := fs.Int("forwards", 0, "forwards spread over the members (fill)")
	base := fs.Int("base", 20000, "first host port (fill)")
	installed := fs.Int("installed", 0, "label: forwards installed besides the probe's (probe)")
	round := fs.Int("round", 0, "label: round (probe)")
	samples := fs.Int("samples", 10, "probe joins with a forward, and as many without (probe)")
	port := fs.Int("port", 8090, "the probe's host port (probe)")
	out := fs.String("out", "", "results file, JSON lines appended (probe)")
	want := fs.Int("want", -1, "fail unless the firewall holds this many forwards (count)")
	fs.Parse(os.Args[2:])

	c := api.NewClient(*socket)
	var err error
	switch os.Args[1] {
	case "fill":
		err = fill(c, *network, *netns, *prefix, *members, *forwards, *base)
	case "leave":
		err = leave(c, *network, *prefix, *members)
	case "probe":
		err = probe(c, *network, *netns, *installed, *round, *samples, *port, *out)
	case "count":
		err = count(c, *want)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fwjoin:", err)
		os.Exit(1)
	}
}

func fill(c *api.Client, network, netns, prefix string, members, forwards, base int) error {
	if members < 1 || forwards < 0 || base+forwards > 65536 {
		return fmt.Errorf("fill: want -members >= 1 and host ports (-base + -forwards) <= 65535")
	}
	per := (forwards + members - 1) / members
	start := time.Now()
	next := 0
	for i := 1; i <= members; i++ {
		var ports lan.PortForwards
		for k := 0; k < per && next < forwards; k++ {
			if ports == nil {
				ports = lan.PortForwards{}
			}
			ports[strconv.Itoa(base+next)] = 80
			next++
		}
		nic := prefix + strconv.Itoa(i)
		if _, err := c.Join(context.Background(), network, nic, ports, lan.JoinOptions{Netns: netns}); err != nil {
			return fmt.Errorf("join %s with %d forwards: %w", nic, len(ports), err)
		}
	}
	span := ""
	if forwards > 0 {
		span = fmt.Sprintf(" (host ports %d-%d)", base, base+forwards-1)
	}
	fmt.Printf("fwjoin: %d members joined with %d forwards%s in %.2f s\n", members, forwards, span, time.Since(start).Seconds())
	return nil
}

func leave(c *api.Client, network, prefix string, members int) error {
	start := time.Now()
	for i := 1; i <= members; i++ {
		nic := prefix + strconv.Itoa(i)
		if err := c.Leave(context.Background(), network, nic); err != nil {
			return fmt.Errorf("leave %s: %w", nic, err)
		}
	}
	fmt.Printf("fwjoin: %d members left in %.2f s\n", members, time.Since(start).Seconds())
	return nil
}

// probe times joins and leaves of one member, with one forward and with
// none, alternating which goes first.
func probe(c *api.Client, network, netns string, installed, round, samples, port int, out string) error {
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	enc := json.NewEncoder(f)
	ctx := context.Background()
	one := func(ports lan.PortForwards, suffix string) error {
		t0 := time.Now()
		if _, err := c.Join(ctx, network, "probe", ports, lan.JoinOptions{Netns: netns}); err != nil {
			return fmt.Errorf("probe join (%d forwards installed): %w", installed, err)
		}
		joined := time.Since(t0)
		t0 = time.Now()
		if err := c.Leave(ctx, network, "probe"); err != nil {
			return fmt.Errorf("probe leave (%d forwards installed): %w", installed, err)
		}
		left := time.Since(t0)
		enc.Encode(record{Kind: "join", Op: "join" + suffix, Installed: installed, Round: round, MS: ms(joined)})
		return enc.Encode(record{Kind: "join", Op: "leave" + suffix, Installed: installed, Round: round, MS: ms(left)})
	}
	withFwd := lan.PortForwards{strconv.Itoa(port): 80}
	for s := 0; s < samples; s++ {
		first, second := withFwd, lan.PortForwards(nil)
		if s%2 == 1 {
			first, second = second, first
		}
		for _, p := range []lan.PortForwards{first, second} {
			suffix := ""
			if p == nil {
				suffix = "-nofwd"
			}
			if err := one(p, suffix); err != nil {
				return err
			}
		}
	}
	return nil
}

func count(c *api.Client, want int) error {
	st, err := c.Status(context.Background())
	if err != nil {
		return err
	}
	if st.Firewall == nil {
		return fmt.Errorf("the daemon reports no firewall")
	}
	fmt.Printf("fwjoin: firewall %s: %d LANs, %d port forwards\n", st.Firewall.Table, st.Firewall.LANs, st.Firewall.Forwards)
	if want >= 0 && st.Firewall.Forwards != want {
		return fmt.Errorf("the firewall holds %d forwards, want %d", st.Firewall.Forwards, want)
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
