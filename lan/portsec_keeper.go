package lan

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"nodenet/ovsdb"
	"nodenet/ovsdb/openflow"
)

// Backoff between attempts to reach a bridge's management socket: short,
// since while ovs-vswitchd is away the members' ports are unprotected.
const (
	keeperMinBackoff = 50 * time.Millisecond
	keeperMaxBackoff = time.Second
)

// portSecurity holds one flowKeeper per OVS bridge with secured members.
type portSecurity struct {
	mu      sync.Mutex
	keepers map[string]*flowKeeper
}

// flowKeeper keeps an OpenFlow session with one bridge and its members'
// rules. ovs-vswitchd keeps flows in memory only: when it restarts the
// session drops, and the keeper reconnects and installs every rule again.
type flowKeeper struct {
	bridge, path string
	cache        *ovsdb.Cache
	log          *slog.Logger
	users        int // calls in progress; guarded by portSecurity.mu

	// opMu orders rule changes with their flow mods and with reinstalls,
	// so a reinstall never brings back a rule removed meanwhile.
	opMu  sync.Mutex
	mu    sync.Mutex
	rules map[uint64]portRule
	conn  *openflow.Conn // nil between sessions
	up    chan struct{}  // closed while conn is set
	stop  chan struct{}
}

// acquire returns the bridge's keeper, started if need be, for one call.
func (ps *portSecurity) acquire(m *Manager, bridge string) *flowKeeper {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.keepers == nil {
		ps.keepers = map[string]*flowKeeper{}
	}
	k := ps.keepers[bridge]
	if k == nil {
		k = &flowKeeper{bridge: bridge, path: m.mgmtSocket(bridge), cache: m.OVS.Cache(), log: m.Log,
			rules: map[uint64]portRule{}, up: make(chan struct{}), stop: make(chan struct{})}
		ps.keepers[bridge] = k
		go k.run()
	}
	k.users++
	return k
}

// release ends a call; a keeper with no rule left stops (its bridge may
// be about to go, and with it the socket it would keep dialling).
func (ps *portSecurity) release(k *flowKeeper) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	k.users--
	k.mu.Lock()
	empty := len(k.rules) == 0
	k.mu.Unlock()
	if k.users == 0 && empty {
		close(k.stop)
		delete(ps.keepers, k.bridge)
	}
}

// run keeps a session until stopped, installing every rule on each new one.
func (k *flowKeeper) run() {
	backoff, sessions := keeperMinBackoff, 0
	for {
		ctx, cancel := context.WithTimeout(context.Background(), portsecTimeout)
		c, err := openflow.Dial(ctx, k.path)
		cancel()
		if err != nil {
			select {
			case <-k.stop:
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, keeperMaxBackoff)
			continue
		}
		backoff = keeperMinBackoff
		sessions++
		k.setConn(c)
		n, err := k.reinstall(c)
		switch {
		case err != nil:
			k.log.Error("port security: flows not reinstalled", "bridge", k.bridge, "err", err)
		case sessions > 1:
			k.log.Info("port security: flows reinstalled", "bridge", k.bridge, "members", n)
		}
		select {
		case <-c.Done():
			k.setConn(nil)
			k.log.Warn("port security: OpenFlow session lost, reconnecting", "bridge", k.bridge, "err", c.Err())
		case <-k.stop:
			k.setConn(nil)
			c.Close()
			return
		}
	}
}

func (k *flowKeeper) setConn(c *openflow.Conn) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if c != nil {
		k.conn = c
		close(k.up)
	} else if k.conn != nil {
		k.conn, k.up = nil, make(chan struct{})
	}
}

// reinstall installs every rule on a new session.
func (k *flowKeeper) reinstall(c *openflow.Conn) (int, error) {
	k.opMu.Lock()
	defer k.opMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), portsecTimeout)
	defer cancel()
	k.mu.Lock()
	rules := make([]portRule, 0, len(k.rules))
	for _, r := range k.rules {
		rules = append(rules, r)
	}
	k.mu.Unlock()
	var mods []openflow.FlowMod
	var errs []error
	for _, r := range rules {
		// No waiting: the database keeps a port's number across restarts
		// of ovs-vswitchd (which takes it again), and a port still
		// without one is a Join's, which installs its rule itself.
		iface, ok := k.cache.Interface(r.port)
		if !ok || iface.OFPort <= 0 {
			errs = append(errs, fmt.Errorf("interface %s has no OpenFlow port number", r.port))
			continue
		}
		mods = append(mods, r.flows(uint32(iface.OFPort))...)
	}
	if len(mods) > 0 {
		errs = append(errs, c.Apply(ctx, mods...))
	}
	return len(rules), errors.Join(errs...)
}

// add registers r and installs its flows as mode says.
func (k *flowKeeper) add(ctx context.Context, r portRule, mode installMode) error {
	k.opMu.Lock()
	defer k.opMu.Unlock()
	k.mu.Lock()
	k.rules[r.cookie] = r
	connected := k.conn != nil
	k.mu.Unlock()
	if mode == keepPort && !connected {
		return nil // the keeper's next session installs it
	}
	ofport, err := k.ofport(ctx, r.port)
	if err != nil {
		return err
	}
	mods := r.flows(ofport)
	if mode == freshPort {
		mods = append([]openflow.FlowMod{clearPort(ofport)}, mods...)
	}
	return k.apply(ctx, mods)
}

// remove unregisters r and deletes its flows.
func (k *flowKeeper) remove(ctx context.Context, r portRule) error {
	k.opMu.Lock()
	defer k.opMu.Unlock()
	k.mu.Lock()
	delete(k.rules, r.cookie)
	k.mu.Unlock()
	return k.apply(ctx, []openflow.FlowMod{r.deleteFlows()})
}

// apply sends mods on the current session, waiting for one if need be; a
// session that ends under it is retried on the next, within ctx.
func (k *flowKeeper) apply(ctx context.Context, mods []openflow.FlowMod) error {
	for {
		k.mu.Lock()
		c, up := k.conn, k.up
		k.mu.Unlock()
		if c == nil {
			select {
			case <-up:
				continue
			case <-ctx.Done():
				return fmt.Errorf("no OpenFlow session with %s: %w", k.path, ctx.Err())
			}
		}
		err := c.Apply(ctx, mods...)
		if !errors.Is(err, openflow.ErrClosed) || ctx.Err() != nil {
			return err
		}
		// Let the keeper notice the end before looking again.
		select {
		case <-c.Done():
		case <-ctx.Done():
		}
		k.mu.Lock()
		if k.conn == c {
			k.conn, k.up = nil, make(chan struct{})
		}
		k.mu.Unlock()
	}
}

// ofport is the interface's OpenFlow port number, once ovs-vswitchd has
// given it one.
func (k *flowKeeper) ofport(ctx context.Context, name string) (uint32, error) {
	var port int64
	err := k.cache.WaitFor(ctx, func(c *ovsdb.Cache) bool {
		iface, ok := c.Interface(name)
		port = iface.OFPort
		return ok && port != 0
	})
	if err != nil {
		return 0, fmt.Errorf("interface %s has no OpenFlow port number: %w", name, err)
	}
	if port < 0 {
		return 0, fmt.Errorf("interface %s: ovs-vswitchd could not add it (ofport -1)", name)
	}
	return uint32(port), nil
}
