package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"nodenet/api"
	"nodenet/internal/testenv"
	"nodenet/lan"
)

// loadStats gathers one kind of operation's latencies and failures.
type loadStats struct {
	mu        sync.Mutex
	latencies map[string][]time.Duration
	conflicts int
	failures  []string
}

func (s *loadStats) add(kind string, took time.Duration, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case err == nil:
		s.latencies[kind] = append(s.latencies[kind], took)
	case lan.CodeOf(err) == lan.Conflict:
		s.conflicts++
	default:
		s.failures = append(s.failures, fmt.Sprintf("%s: %v", kind, err))
	}
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// TestAPILoad: 200 API clients, each on its own connection, join and leave
// members on 20 LANs for 60 s (NODENET_LOAD_SECONDS). Pairs of clients
// share a member name on purpose, so some joins meet the other's member:
// those conflicts are the only errors allowed. Afterwards nothing is
// left: no member, port or link. p50/p99 latencies are reported.
func TestAPILoad(t *testing.T) {
	const clients, lans = 200, 20
	duration := 60 * time.Second
	if s, err := strconv.Atoi(os.Getenv("NODENET_LOAD_SECONDS")); err == nil && s > 0 {
		duration = time.Duration(s) * time.Second
	}
	node := startLANNode(t)
	for i := range lans {
		node.create(t, fmt.Sprintf("load%d", i), fmt.Sprintf("10.%d.%d.0/24", 100+i/10, i%10), "")
	}
	stats := &loadStats{latencies: map[string][]time.Duration{}}
	deadline := time.Now().Add(duration)
	var wg sync.WaitGroup
	for c := range clients {
		ns := testenv.NewNetns(t)
		client := newClient(node.d) // one connection pool per client
		network := fmt.Sprintf("load%d", c%lans)
		// Clients c and c+lans (of each 2*lans) share a network and a name.
		nic := fmt.Sprintf("m%d", c/(2*lans))
		ifname := fmt.Sprintf("eth%d", c)
		wg.Go(func() { loadClient(client, stats, network, nic, ns, ifname, deadline) })
	}
	wg.Wait()

	for _, f := range stats.failures {
		t.Errorf("unintended error: %s", f)
	}
	for _, kind := range []string{"join", "leave"} {
		ds := stats.latencies[kind]
		t.Logf("%s: %d answered, p50 %v, p99 %v, max %v", kind, len(ds),
			percentile(ds, 0.5).Round(time.Millisecond), percentile(ds, 0.99).Round(time.Millisecond), percentile(ds, 1).Round(time.Millisecond))
	}
	t.Logf("%d clients, %d LANs, %v: %d intended conflicts, %d other errors",
		clients, lans, duration, stats.conflicts, len(stats.failures))
	if len(stats.latencies["join"]) == 0 {
		t.Fatal("no join answered")
	}
	for i := range lans {
		info, err := node.c.Get(context.Background(), fmt.Sprintf("load%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if len(info.Members) != 0 {
			t.Errorf("load%d: members left: %v", i, info.Members)
		}
	}
	for _, br := range strings.Fields(node.vsctl(t, "list-br")) {
		if ports := node.vsctl(t, "list-ports", br); ports != "" {
			t.Errorf("bridge %s: ports left: %s", br, ports)
		}
	}
	if out := node.ns.Run(t, "ip", "-o", "link", "show"); strings.Contains(out, ": nnv") {
		t.Errorf("member links left:\n%s", out)
	}
}

// loadClient joins and leaves its member until deadline; it always ends
// with its member gone.
func loadClient(c *api.Client, stats *loadStats, network, nic string, ns *testenv.Netns, ifname string, deadline time.Time) {
	joined := false
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		start := time.Now()
		if !joined {
			_, err := c.Join(ctx, network, nic, nil, lan.JoinOptions{Netns: ns.Name, Ifname: ifname})
			stats.add("join", time.Since(start), err)
			joined = err == nil
		} else {
			err := c.Leave(ctx, network, nic)
			stats.add("leave", time.Since(start), err)
			joined = err != nil
		}
		cancel()
	}
	if joined {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		stats.add("leave", 0, c.Leave(ctx, network, nic))
		cancel()
	}
}
