package boot

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"golang.org/x/sys/unix"

	"nodenet/cmdline"
	"nodenet/internal/fsutil"
	"nodenet/links"
)

// uplink is one NIC nodenet keeps up, by DHCP or from an ip= flag.
type uplink struct {
	m      *Uplinks
	index  int
	name   string
	mac    string
	metric int
	ip     cmdline.IPConfig // Method dhcp or a static entry

	// parent is Run's context; each worker (run) gets a child of it, so a
	// move can stop one worker and start the next.
	parent context.Context
	// moveMu serializes moves and stop: they swap the worker.
	moveMu sync.Mutex

	carrierCh chan bool

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
	// dev and devName are where the uplink's addresses, routes and DHCP
	// sockets live: the NIC itself, or the bridge port that carries it
	// (a vlan trunk on this NIC; see carry.go).
	dev     int
	devName string
	carrier bool
	state   string
	lease   *Lease
	routes  []links.Route // what nodenet installed, to remove exactly those
	lastErr error
}

// view is the part of an uplink others (resolv.conf, status) read.
type view struct {
	metric int
	dns    []netip.Addr
	domain string
}

func (u *uplink) view() view {
	u.mu.Lock()
	defer u.mu.Unlock()
	v := view{metric: u.metric}
	switch {
	case u.ip.Static():
		v.dns = u.ip.DNS
	case u.lease != nil:
		v.dns, v.domain = u.lease.DNS(), u.lease.Domain()
	}
	return v
}

// setCarrier records the carrier and wakes the DHCP client when it changed.
func (u *uplink) setCarrier(up bool) {
	u.mu.Lock()
	changed := u.carrier != up
	u.carrier = up
	u.mu.Unlock()
	if !changed {
		return
	}
	u.m.Log.Info("uplink carrier", "uplink", u.name, "carrier", up)
	for {
		select {
		case u.carrierCh <- up:
			return
		default:
			// Full: the client is busy; only the latest value matters.
			select {
			case <-u.carrierCh:
			default:
			}
		}
	}
}

// device is the interface that holds the uplink's addresses.
func (u *uplink) device() (int, string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.dev, u.devName
}

// setMTU sets the NIC's MTU, and its carrier's when one carries it.
func (u *uplink) setMTU(mtu int) error {
	if err := links.SetMTU(u.index, mtu); err != nil {
		return err
	}
	if dev, _ := u.device(); dev != u.index {
		return links.SetMTU(dev, mtu)
	}
	return nil
}

// start runs a new worker on the uplink's device.
func (u *uplink) start() {
	ctx, cancel := context.WithCancel(u.parent)
	done := make(chan struct{})
	u.mu.Lock()
	u.cancel, u.done = cancel, done
	u.mu.Unlock()
	go u.run(ctx, done)
}

// stopWorker ends the worker and waits for it. Addresses and routes stay.
func (u *uplink) stopWorker() {
	u.mu.Lock()
	cancel, done := u.cancel, u.done
	u.mu.Unlock()
	cancel()
	<-done
}

func (u *uplink) run(ctx context.Context, done chan struct{}) {
	defer close(done)
	if err := u.prepare(); err != nil {
		u.report("error", nil, err)
		return
	}
	if u.ip.Static() {
		u.runStatic(ctx)
		return
	}
	u.runDHCP(ctx)
}

// prepare brings the link up with its MTU and hostname before any packet.
func (u *uplink) prepare() error {
	if mtu := u.m.Config.MTUFor(u.name); mtu > 0 {
		if err := u.setMTU(mtu); err != nil {
			return err
		}
	}
	if err := links.SetUp(u.index); err != nil {
		return err
	}
	if l, err := links.ByIndex(u.index); err == nil {
		u.setCarrier(l.Carrier)
	}
	if u.ip.Hostname != "" {
		if err := u.m.SetHostname(u.ip.Hostname); err != nil {
			u.m.Log.Warn("set hostname", "uplink", u.name, "hostname", u.ip.Hostname, "err", err)
		}
	}
	return nil
}

func (u *uplink) runDHCP(ctx context.Context) {
	// Drop the event prepare queued, then read the carrier: an event after
	// the read is still queued, one before it is in the value read.
	select {
	case <-u.carrierCh:
	default:
	}
	u.mu.Lock()
	up := u.carrier
	u.mu.Unlock()
	_, devName := u.device()
	c := &dhcpClient{
		ifname:   devName,
		mac:      mustMAC(u.mac),
		now:      u.m.now,
		after:    time.After,
		open:     openDHCP(devName, mustMAC(u.mac)),
		tries:    tryTimeouts,
		patience: u.m.dhcpTimeout(),
		bind:     u.bind,
		unbind:   u.unbind,
		report:   func(s dhcpState, l *Lease, err error) { u.report(string(s), l, err) },
		carrier:  u.carrierCh,
		lease:    u.loadLease(),
	}
	c.run(ctx, up)
}

// bind installs a lease: address with the lease's lifetime, routes with the
// uplink's metric, MTU; then saves it so a restart renews instead of
// starting over.
func (u *uplink) bind(old, l *Lease) error {
	addr := l.Address()
	dev, _ := u.device()
	if old != nil && old.Address() != addr {
		if err := links.DelAddr(dev, old.Address()); err != nil {
			return err
		}
	}
	if mtu := l.MTU(); mtu > 0 && u.m.Config.MTUFor(u.name) == 0 {
		if err := u.setMTU(mtu); err != nil {
			return err
		}
	}
	valid := l.Expiry().Sub(u.m.now())
	if err := links.ReplaceAddr(dev, links.Addr{Prefix: addr, Valid: valid}); err != nil {
		return err
	}
	if err := u.installRoutes(l.Routes(), addr.Addr()); err != nil {
		return err
	}
	if err := u.saveLease(l); err != nil {
		u.m.Log.Error("save lease", "uplink", u.name, "err", err)
	}
	u.mu.Lock()
	u.lease = l
	u.mu.Unlock()
	u.m.Log.Info("uplink bound", "uplink", u.name, "address", addr, "server", l.Server(),
		"lease", l.Duration(), "routes", len(u.routes), "uptime", uptime())
	u.m.changed()
	return nil
}

// unbind removes a lease that is no longer ours: its address, its routes and
// its saved copy.
func (u *uplink) unbind(old *Lease) {
	u.removeRoutes(u.routes)
	dev, _ := u.device()
	if err := links.DelAddr(dev, old.Address()); err != nil {
		u.m.Log.Error("remove address", "uplink", u.name, "err", err)
	}
	if err := os.Remove(u.leasePath()); err != nil && !os.IsNotExist(err) {
		u.m.Log.Error("remove saved lease", "uplink", u.name, "err", err)
	}
	u.mu.Lock()
	u.lease, u.routes = nil, nil
	u.mu.Unlock()
	u.m.Log.Info("uplink unbound", "uplink", u.name, "address", old.Address())
	u.m.changed()
}

// installRoutes makes the routes nodenet owns on this link exactly specs.
func (u *uplink) installRoutes(specs []RouteSpec, src netip.Addr) error {
	var want []links.Route
	dev, _ := u.device()
	for _, s := range specs {
		r := links.Route{Dst: s.Dst, Gateway: s.Gateway, Metric: u.metric}
		if src.Is4() == s.Dst.Addr().Is4() {
			r.Src = src
		}
		if err := links.ReplaceRoute(dev, r); err != nil {
			return err
		}
		want = append(want, r)
	}
	var stale []links.Route
	for _, r := range u.routes {
		if !slices.Contains(want, r) {
			stale = append(stale, r)
		}
	}
	u.removeRoutes(stale)
	u.mu.Lock()
	u.routes = want
	u.mu.Unlock()
	return nil
}

func (u *uplink) removeRoutes(rs []links.Route) {
	dev, _ := u.device()
	for _, r := range rs {
		if err := links.DelRoute(dev, r); err != nil {
			u.m.Log.Error("remove route", "uplink", u.name, "err", err)
		}
	}
}

func (u *uplink) leasePath() string {
	return filepath.Join(u.m.StateDir, "uplinks", u.name+".json")
}

func (u *uplink) saveLease(l *Lease) error {
	b, err := l.marshal(u.name)
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(u.leasePath(), b, 0o600)
}

// loadLease returns the saved lease when it is for this NIC and still valid.
func (u *uplink) loadLease() *Lease {
	b, err := os.ReadFile(u.leasePath())
	if err != nil {
		return nil
	}
	l, mac, err := unmarshalLease(b)
	switch {
	case err != nil:
		u.m.Log.Warn("ignore saved lease", "uplink", u.name, "err", err)
		return nil
	case mac != u.mac:
		u.m.Log.Info("ignore saved lease of another NIC", "uplink", u.name, "lease_mac", mac)
		return nil
	case !u.m.now().Before(l.Expiry()):
		u.m.Log.Info("saved lease expired", "uplink", u.name, "address", l.Address())
		return nil
	}
	u.mu.Lock()
	u.lease = l
	u.mu.Unlock()
	return l
}

// report records the state and logs it when it, or the error, changed.
func (u *uplink) report(state string, _ *Lease, err error) {
	u.mu.Lock()
	stateChanged := u.state != state
	errChanged := fmt.Sprint(err) != fmt.Sprint(u.lastErr)
	u.state = state
	if err != nil || stateChanged {
		u.lastErr = err
	}
	u.mu.Unlock()
	switch {
	case err != nil && errChanged:
		u.m.Log.Warn("uplink", "uplink", u.name, "state", state, "err", err)
	case stateChanged:
		u.m.Log.Info("uplink", "uplink", u.name, "state", state)
	}
}

func (u *uplink) status() UplinkStatus {
	u.mu.Lock()
	st := UplinkStatus{
		Name: u.name, MAC: u.mac, Source: "dhcp", State: u.state, Carrier: u.carrier,
		Metric: u.metric, Lease: leaseTimes(u.lease),
	}
	if u.lastErr != nil {
		st.LastError = u.lastErr.Error()
	}
	for _, r := range u.routes {
		if r.Dst.Bits() == 0 && r.Gateway.IsValid() && st.Gateway == "" {
			st.Gateway = r.Gateway.String()
		}
	}
	u.mu.Unlock()
	if u.ip.Static() {
		st.Source = "static"
	}
	v := u.view()
	st.Domain = v.domain
	for _, d := range v.dns {
		st.DNS = append(st.DNS, d.String())
	}
	if l, err := links.ByIndex(u.index); err == nil {
		st.MTU = l.MTU
	}
	dev, devName := u.device()
	if dev != u.index {
		st.CarriedBy = devName
	}
	addrs, _ := links.Addrs(dev)
	st.Addresses = []string{}
	for _, a := range addrs {
		st.Addresses = append(st.Addresses, a.String())
	}
	return st
}

// firstCarrierWait bounds how long an uplink that never had a carrier waits
// for one before it sends DHCP anyway.
const firstCarrierWait = 5 * time.Second

// openDHCP opens the client for one exchange: before an address is bound a
// raw socket (the interface has no address to send from), after it a UDP
// socket on the leased address, which renewals are unicast from.
func openDHCP(ifname string, mac []byte) func(from netip.Addr) (*nclient4.Client, error) {
	opts := []nclient4.ClientOpt{nclient4.WithTimeout(time.Minute), nclient4.WithRetry(1), nclient4.WithHWAddr(mac)}
	return func(from netip.Addr) (*nclient4.Client, error) {
		if !from.IsValid() {
			c, err := nclient4.New(ifname, opts...)
			if err != nil {
				return nil, fmt.Errorf("%s: open raw DHCP socket: %w", ifname, err)
			}
			return c, nil
		}
		conn, err := listenUDP(ifname, from)
		if err != nil {
			return nil, err
		}
		return nclient4.NewWithConn(conn, mac, opts...)
	}
}

// uptime is the time since the kernel started (CLOCK_BOOTTIME), logged
// when an uplink is configured: in an appliance, boot to network.
func uptime() time.Duration {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts) != nil {
		return 0
	}
	return time.Duration(ts.Nano()).Round(time.Millisecond)
}
