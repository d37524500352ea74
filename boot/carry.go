package boot

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"nodenet/links"
)

// Carry moves uplink nic's addresses, routes and DHCP upkeep onto dev: a
// bridge port with the NIC's MAC, through which the NIC's traffic now
// passes (a vlan trunk bridge on the uplink). dev gets the address before
// the NIC loses it and routes are replaced in place, so established
// connections keep their path; the DHCP client goes on from its lease on
// dev (INIT-REBOOT, then renewals at T1 as before). Carrying onto the
// device that holds the address already changes nothing.
func (m *Uplinks) Carry(nic, dev string) error {
	u := m.byName(nic)
	if u == nil {
		return fmt.Errorf("uplink %s: nodenet does not run it as an uplink", nic)
	}
	idx, err := links.IndexOf(dev)
	if err != nil {
		return fmt.Errorf("uplink %s: carry onto %s: %w", nic, dev, err)
	}
	return u.moveTo(idx, dev)
}

// Uncarry moves the uplink's addresses back onto its NIC, before the port
// that carried them goes. A NIC that is not an uplink has nothing to move.
func (m *Uplinks) Uncarry(nic string) error {
	u := m.byName(nic)
	if u == nil {
		return nil
	}
	return u.moveTo(u.index, u.name)
}

// moveTo makes the device at index idx the uplink's: the worker stops,
// the address and routes move, and a new worker runs on idx (on the old
// device again if the move failed half-way and was rolled back).
func (u *uplink) moveTo(idx int, name string) error {
	u.moveMu.Lock()
	defer u.moveMu.Unlock()
	from, fromName := u.device()
	if from == idx {
		return nil
	}
	u.stopWorker()
	defer u.start()
	if err := u.moveAddress(from, idx); err != nil {
		return fmt.Errorf("uplink %s: move its address from %s to %s: %w", u.name, fromName, name, err)
	}
	u.mu.Lock()
	u.dev, u.devName = idx, name
	u.mu.Unlock()
	u.m.Log.Info("uplink moved", "uplink", u.name, "from", fromName, "to", name)
	u.m.changed()
	return nil
}

// moveAddress puts the uplink's address and routes on to, then takes the
// address off from; on failure what it did to to is undone.
func (u *uplink) moveAddress(from, to int) error {
	if nic, err := links.ByIndex(u.index); err == nil && to != u.index {
		if err := links.SetMTU(to, nic.MTU); err != nil {
			return err
		}
	}
	if err := links.SetUp(to); err != nil {
		return err
	}
	addr, valid := u.ownAddress()
	if !addr.IsValid() {
		return nil // nothing bound yet: the next worker binds on to
	}
	if err := links.ReplaceAddr(to, links.Addr{Prefix: addr, Valid: valid}); err != nil {
		return err
	}
	u.mu.Lock()
	routes := slices.Clone(u.routes)
	u.mu.Unlock()
	for i, r := range routes {
		if err := links.ReplaceRoute(to, r); err != nil {
			for _, back := range routes[:i] {
				_ = links.ReplaceRoute(from, back)
			}
			_ = links.DelAddr(to, addr)
			return err
		}
	}
	if err := links.DelAddr(from, addr); err != nil {
		// The address is on both; traffic already follows to's routes.
		u.m.Log.Warn("uplink moved: old address left", "uplink", u.name, "address", addr, "err", err)
	}
	return nil
}

// ownAddress is the address the uplink holds now and how long it stays
// valid: the lease's, or the static one's.
func (u *uplink) ownAddress() (netip.Prefix, time.Duration) {
	if u.ip.Static() {
		return u.ip.Client, links.Forever
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.lease == nil {
		return netip.Prefix{}, 0
	}
	return u.lease.Address(), u.lease.Expiry().Sub(u.m.now())
}
