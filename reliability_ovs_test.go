package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"nodenet/internal/testenv"
	"nodenet/lan"
)

// churn joins and leaves members in a loop until stopped, keeping count of
// what the daemon answered. Every failure must be an API error with a
// code and a sentence, answered in bounded time: never a hang, a reset
// connection or a half-made member.
type churn struct {
	node   *lanNode
	netns  []*testenv.Netns
	joined []bool

	mu        sync.Mutex
	ok, fails int
	codes     map[lan.Code]int
	lastOK    time.Time
	bad       []string
}

const churnTimeout = 30 * time.Second

// outageFor is how long each OVS daemon stays dead: longer than nodenet's
// own OVSDB request timeout, so requests made meanwhile must fail cleanly.
var outageFor = 8 * time.Second

func (c *churn) run(stop <-chan struct{}) {
	for i := 0; ; i = (i + 1) % len(c.netns) {
		select {
		case <-stop:
			return
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), churnTimeout)
		nic := fmt.Sprintf("churn%d", i)
		var err error
		if c.joined[i] {
			err = c.node.c.Leave(ctx, "ov", nic)
			if err == nil || lan.CodeOf(err) == lan.NotFound {
				c.joined[i] = false
			}
		} else {
			_, err = c.node.c.Join(ctx, "ov", nic, nil, lan.JoinOptions{Netns: c.netns[i].Name, Ifname: "eth0"})
			if err == nil || lan.CodeOf(err) == lan.Conflict {
				c.joined[i] = true
			}
		}
		cancel()
		c.record(err)
		if err != nil {
			time.Sleep(100 * time.Millisecond)
		}
	}
}

func (c *churn) record(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil {
		c.ok++
		c.lastOK = time.Now()
		return
	}
	c.fails++
	code := lan.CodeOf(err)
	c.codes[code]++
	if code == "" || !strings.Contains(err.Error(), " ") {
		c.bad = append(c.bad, err.Error())
	}
}

// recovered waits until an operation succeeds after since; it returns how
// long that took.
func (c *churn) recovered(t *testing.T, since time.Time, what string) time.Duration {
	t.Helper()
	var took time.Duration
	testenv.Eventually(t, 60*time.Second, "join/leave working again after "+what, func() error {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.lastOK.After(since) {
			took = c.lastOK.Sub(since)
			return nil
		}
		return fmt.Errorf("no success since %s (%d failures so far)", since.Format(time.TimeOnly), c.fails)
	})
	return took
}

// TestOVSRestartsUnderLoad kills ovsdb-server, then ovs-vswitchd, with
// SIGKILL while members join and leave, and starts them again as a
// supervisor would. nodenet recovers by itself: no member is lost, the
// members that stayed still reach their gateway, every failure during an
// outage is a clean API error, and OVS ends with exactly the members'
// ports.
func TestOVSRestartsUnderLoad(t *testing.T) {
	node := startLANNode(t)
	node.create(t, "ov", "10.88.0.0/24", "10.88.0.1")
	var stable []*testenv.Netns
	for i := range 4 {
		ns := testenv.NewNetns(t)
		node.join(t, "ov", fmt.Sprintf("stable%d", i), ns)
		ping(t, ns, "10.88.0.1")
		stable = append(stable, ns)
	}
	c := &churn{node: node, codes: map[lan.Code]int{}}
	for range 6 {
		c.netns = append(c.netns, testenv.NewNetns(t))
		c.joined = append(c.joined, false)
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() { c.run(stop); close(done) }()

	outage := func(what string, kill func(), start func(testing.TB)) {
		time.Sleep(time.Second)
		kill()
		down := time.Now()
		time.Sleep(outageFor)
		start(t)
		back := time.Now()
		took := c.recovered(t, back, what)
		// After ovsdb-server returns, ovs-vswitchd's own reconnect backoff
		// (up to 8 s) decides when configuration is applied again.
		t.Logf("%s down %v; first join/leave answered %v after it was back", what, back.Sub(down).Round(time.Millisecond), took.Round(time.Millisecond))
		for _, ns := range stable {
			ping(t, ns, "10.88.0.1")
		}
	}
	outage("ovsdb-server", node.ovs.KillDB, node.ovs.StartDB)
	outage("ovs-vswitchd", node.ovs.KillVswitchd, node.ovs.StartVswitchd)
	time.Sleep(time.Second)
	close(stop)
	<-done

	c.mu.Lock()
	t.Logf("join/leave under the outages: %d answered, %d failed %v", c.ok, c.fails, c.codes)
	for _, b := range c.bad {
		t.Errorf("not a clean API error: %s", b)
	}
	c.mu.Unlock()
	info, err := node.c.Get(context.Background(), "ov")
	if err != nil {
		t.Fatal(err)
	}
	hosts := map[string]bool{}
	for _, m := range info.Members {
		hosts[m.HostIfname] = true
	}
	for i := range stable {
		if _, err := node.c.Member(context.Background(), "ov", fmt.Sprintf("stable%d", i)); err != nil {
			t.Errorf("member stable%d lost: %v", i, err)
		}
	}
	for i, ns := range c.netns {
		_, err := node.c.Member(context.Background(), "ov", fmt.Sprintf("churn%d", i))
		if c.joined[i] != (err == nil) {
			t.Errorf("churn%d: joined %v by its answers, daemon says %v", i, c.joined[i], err)
		}
		if c.joined[i] {
			ping(t, ns, "10.88.0.1")
		}
	}
	br := node.vsctl(t, "list-br")
	if ports := strings.Fields(node.vsctl(t, "list-ports", br)); len(ports) != len(info.Members) {
		t.Errorf("OVS ports %v for %d members", ports, len(info.Members))
	} else {
		for _, p := range ports {
			if !hosts[p] {
				t.Errorf("OVS port %s belongs to no member", p)
			}
		}
	}
	if code, body, _ := node.d.Do(http.MethodGet, "/v1/status", nil); code != http.StatusOK {
		t.Errorf("status after the outages: %d %s", code, body)
	}
}
