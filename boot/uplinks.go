// Package boot brings a node's uplinks up and keeps them up: NIC discovery,
// the DHCP client lifecycle, static ip= configuration, carrier watch, routes
// and resolv.conf.
package boot

import (
	"context"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"nodenet/cmdline"
	"nodenet/links"
)

// baseMetric is the default route metric of the first uplink; each further
// uplink gets the next one, so every uplink has its own default route and
// the kernel prefers them in discovery order.
const baseMetric = 100

// Uplinks discovers the node's uplinks and keeps each one configured.
type Uplinks struct {
	Config     cmdline.Config
	StateDir   string // leases are kept under StateDir/uplinks
	ResolvConf string // "" leaves resolv.conf alone
	Log        *slog.Logger
	// SetHostname applies the ip= hostname field; tests leave it a no-op.
	SetHostname func(string) error
	// OnChange is called after any uplink's address, routes or DNS changed.
	OnChange func()
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Held reports NICs that something else holds (a passthrough LAN):
	// never adopted, whatever the flags say. Nil: none.
	Held func(name string) bool
	// CarriedBy names the bridge port that carried a NIC when nodenet last
	// ran (a vlan trunk on an uplink): an uplink adopted while that port
	// exists keeps its addresses there instead of on the NIC. Nil: none.
	CarriedBy func(name string) string

	mu         sync.Mutex
	ready      chan struct{} // closed once the links present at start were seen
	byIndex    map[int]*uplink
	anyClaimed bool // the interface-less static ip= entry went to a NIC

	resolvMu      sync.Mutex
	resolvWritten []byte
}

// defaultDHCPTimeout is how long an uplink retries quickly without a lease.
const defaultDHCPTimeout = 30 * time.Second

func (m *Uplinks) dhcpTimeout() time.Duration {
	if m.Config.DHCPTimeout > 0 {
		return m.Config.DHCPTimeout
	}
	return defaultDHCPTimeout
}

func (m *Uplinks) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// Run handles every link that exists or appears until ctx ends. Uplinks are
// brought up in parallel, one goroutine each. It returns once every uplink
// goroutine has stopped; addresses and routes stay in place.
func (m *Uplinks) Run(ctx context.Context) error {
	m.init()
	updates, err := links.Subscribe(ctx)
	if err != nil {
		close(m.readyCh()) // nothing to wait for
		return err
	}
	// Adopt what is there now before anyone asks Manages: the LAN manager
	// waits for Ready, so it knows the uplinks when it reconciles.
	present, err := links.List()
	if err != nil {
		m.Log.Error("list links", "err", err)
	}
	for _, l := range present {
		m.handle(ctx, l)
	}
	close(m.readyCh())
	for l := range updates {
		m.handle(ctx, l)
	}
	for _, u := range m.sorted() {
		u.moveMu.Lock()
		u.stopWorker()
		u.moveMu.Unlock()
	}
	return ctx.Err()
}

// Ready is closed once the uplinks among the links present when Run
// started are adopted.
func (m *Uplinks) Ready() <-chan struct{} { return m.readyCh() }

func (m *Uplinks) readyCh() chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ready == nil {
		m.ready = make(chan struct{})
	}
	return m.ready
}

func (m *Uplinks) init() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byIndex == nil {
		m.byIndex = map[int]*uplink{}
	}
	if m.Log == nil {
		m.Log = slog.Default()
	}
	if m.SetHostname == nil {
		m.SetHostname = func(string) error { return nil }
	}
	m.bringUpLoopback()
}

// bringUpLoopback: in an initramfs nobody else will.
func (m *Uplinks) bringUpLoopback() {
	if lo, err := net.InterfaceByName("lo"); err == nil && lo.Flags&net.FlagUp == 0 {
		if err := links.SetUp(lo.Index); err != nil {
			m.Log.Warn("bring up lo", "err", err)
		}
	}
}

func (m *Uplinks) handle(ctx context.Context, l links.Link) {
	m.mu.Lock()
	u := m.byIndex[l.Index]
	m.mu.Unlock()
	switch {
	case l.Deleted && u != nil:
		m.stop(u)
	case u != nil:
		u.setCarrier(l.Carrier)
	case !l.Deleted:
		if !m.rename(l) {
			m.adopt(ctx, l)
		}
	}
}

// rename applies ifname=<name>:<mac>. The renamed link comes back as a new
// event under its new name, and is adopted then.
func (m *Uplinks) rename(l links.Link) bool {
	for _, r := range m.Config.Renames {
		if l.MAC.String() == r.MAC.String() && l.Name != r.Name {
			if err := links.Rename(l.Index, r.Name); err != nil {
				m.Log.Error("ifname=", "link", l.Name, "name", r.Name, "err", err)
				return false
			}
			m.Log.Info("renamed", "from", l.Name, "to", r.Name)
			return true
		}
	}
	return false
}

func (m *Uplinks) adopt(ctx context.Context, l links.Link) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var anyEntry *cmdline.IPConfig
	if e := interfacelessEntry(m.Config); e != nil && !(e.Static() && m.anyClaimed) {
		anyEntry = e
	}
	r, ip, why := decide(m.Config, l, l.Physical(), anyEntry)
	if m.Held != nil && m.Held(l.Name) {
		r, why = roleNone, "held by a passthrough network"
	}
	m.Log.Debug("link seen", "link", l.Name, "role", r, "why", why)
	switch r {
	case roleNone:
		return
	case roleLinkUp:
		if err := links.SetUp(l.Index); err != nil {
			m.Log.Error("bring up", "link", l.Name, "err", err)
		}
		return
	}
	if anyEntry != nil && why == "ip=" && ip.Static() {
		m.anyClaimed = true
	}
	u := &uplink{
		m: m, index: l.Index, name: l.Name, mac: l.MAC.String(), metric: m.freeMetric(),
		ip: ip, parent: ctx, carrierCh: make(chan bool, 1), state: "starting",
		dev: l.Index, devName: l.Name,
	}
	if dev, idx := m.carrier(l.Name); dev != "" {
		u.dev, u.devName = idx, dev
	}
	m.byIndex[l.Index] = u
	m.Log.Info("uplink", "uplink", u.name, "mac", u.mac, "source", r, "metric", u.metric, "why", why, "device", u.devName)
	u.start()
}

// carrier is the existing port that carried nic before, if any.
func (m *Uplinks) carrier(nic string) (string, int) {
	if m.CarriedBy == nil {
		return "", 0
	}
	dev := m.CarriedBy(nic)
	if dev == "" {
		return "", 0
	}
	idx, err := links.IndexOf(dev)
	if err != nil {
		return "", 0
	}
	return dev, idx
}

// Manages reports whether nodenet runs name as an uplink.
func (m *Uplinks) Manages(name string) bool { return m.byName(name) != nil }

func (m *Uplinks) byName(name string) *uplink {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, u := range m.byIndex {
		if u.name == name {
			return u
		}
	}
	return nil
}

func (m *Uplinks) freeMetric() int {
	used := map[int]bool{}
	for _, u := range m.byIndex {
		used[u.metric] = true
	}
	metric := baseMetric
	for used[metric] {
		metric++
	}
	return metric
}

// stop ends an uplink whose link disappeared.
func (m *Uplinks) stop(u *uplink) {
	u.moveMu.Lock()
	u.stopWorker()
	u.moveMu.Unlock()
	m.mu.Lock()
	delete(m.byIndex, u.index)
	m.mu.Unlock()
	m.Log.Info("uplink gone", "uplink", u.name)
	m.changed()
}

func (m *Uplinks) sorted() []*uplink {
	m.mu.Lock()
	all := make([]*uplink, 0, len(m.byIndex))
	for _, u := range m.byIndex {
		all = append(all, u)
	}
	m.mu.Unlock()
	slices.SortFunc(all, func(a, b *uplink) int { return a.metric - b.metric })
	return all
}

func (m *Uplinks) snapshot() []view {
	var out []view
	for _, u := range m.sorted() {
		out = append(out, u.view())
	}
	return out
}

// Status reports every uplink, in metric order.
func (m *Uplinks) Status() []UplinkStatus {
	out := []UplinkStatus{}
	for _, u := range m.sorted() {
		out = append(out, u.status())
	}
	return out
}

func (m *Uplinks) changed() {
	m.updateResolvConf()
	if m.OnChange != nil {
		m.OnChange()
	}
}

// SetHostname sets the kernel hostname; the daemon wires it in.
func SetHostname(name string) error { return unix.Sethostname([]byte(name)) }

func mustMAC(s string) net.HardwareAddr {
	mac, _ := net.ParseMAC(s)
	return mac
}
