package fw

import (
	"fmt"
	"maps"

	"github.com/google/nftables"
)

// SetLAN adds a LAN or updates one of that name.
func (f *Firewall) SetLAN(l LAN) error {
	if l.Name == "" || l.Device == "" || len(l.Device) > 15 {
		return fmt.Errorf("firewall: LAN %q on device %q: %w", l.Name, l.Device, ErrInvalid)
	}
	return f.change(func(lans map[string]LAN, _ map[string]Forward) error {
		lans[l.Name] = l
		return nil
	})
}

// RemoveLAN forgets a LAN; its forwards must have been removed.
func (f *Firewall) RemoveLAN(name string) error {
	return f.change(func(lans map[string]LAN, _ map[string]Forward) error {
		delete(lans, name)
		return nil
	})
}

// AddForwards installs forwards together, or none of them: a host port
// another forward holds (the same one, or one on every address) is
// ErrConflict. Only their elements are sent: the cost of a Join does not
// grow with the forwards already installed.
func (f *Firewall) AddForwards(fs []Forward) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conn == nil {
		return f.notStarted()
	}
	for i, n := range fs {
		if err := f.checkForward(n, fs[:i]); err != nil {
			return err
		}
	}
	return f.sendForwards(fs, true)
}

func (f *Firewall) checkForward(n Forward, earlier []Forward) error {
	if !n.MemberIP.Is4() || n.HostPort == 0 || n.MemberPort == 0 || (n.HostIP.IsValid() && !n.HostIP.Is4()) ||
		(n.Proto != "tcp" && n.Proto != "udp") {
		return fmt.Errorf("port forward %s of %s/%s: %w", n.Key(), n.Network, n.Member, ErrInvalid)
	}
	for _, o := range f.fwds {
		if n.overlaps(o) {
			return fmt.Errorf("port %s: %w to %s/%s (%s)", n.Key(), ErrConflict, o.Network, o.Member, o.Key())
		}
	}
	for _, o := range earlier {
		if n.overlaps(o) {
			return fmt.Errorf("port %s and %s of %s/%s: the same host port twice: %w", o.Key(), n.Key(), n.Network, n.Member, ErrConflict)
		}
	}
	return nil
}

// RemoveForwards uninstalls forwards. The connections they made stay in
// conntrack: the caller deletes them (links.DeleteDNATFlows).
func (f *Firewall) RemoveForwards(fs []Forward) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conn == nil {
		return f.notStarted()
	}
	var known []Forward
	for _, o := range fs {
		if _, ok := f.fwds[forwardID(o)]; ok {
			known = append(known, o)
		}
	}
	return f.sendForwards(known, false)
}

// sendForwards adds (or deletes) the forwards' map elements in one batch
// and records them once the kernel took it.
func (f *Firewall) sendForwards(fs []Forward, add bool) error {
	if len(fs) == 0 {
		return nil
	}
	bySet := map[string][]nftables.SetElement{}
	for _, o := range fs {
		set, key, val := forwardElement(o)
		bySet[set] = append(bySet[set], nftables.SetElement{Key: key, Val: val})
	}
	for set, els := range bySet {
		op := f.conn.SetAddElements
		if !add {
			op = f.conn.SetDeleteElements
		}
		if err := op(f.lay.sets[set], els); err != nil {
			return fmt.Errorf("nftables elements: %w", err)
		}
	}
	f.batches++
	if err := f.conn.Flush(); err != nil {
		return fmt.Errorf("nftables: port forwards of %s/%s: %w", fs[0].Network, fs[0].Member, err)
	}
	for _, o := range fs {
		set, key, val := forwardElement(o)
		if add {
			f.fwds[forwardID(o)], f.have[set][string(key)] = o, val
		} else {
			delete(f.fwds, forwardID(o))
			delete(f.have[set], string(key))
		}
	}
	return nil
}

// change applies edit to a copy of the state and sends the difference in
// one batch; the state is kept only when the kernel took it.
func (f *Firewall) change(edit func(map[string]LAN, map[string]Forward) error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conn == nil {
		return f.notStarted()
	}
	lans, fwds := maps.Clone(f.lans), maps.Clone(f.fwds)
	if err := edit(lans, fwds); err != nil {
		return err
	}
	if err := f.apply(f.have, wanted(lans, fwds)); err != nil {
		return err
	}
	f.lans, f.fwds = lans, fwds
	return nil
}

// notStarted says why changes cannot be made: a LAN that cannot be
// isolated is refused rather than made open.
func (f *Firewall) notStarted() error {
	if f.startErr != nil {
		return fmt.Errorf("firewall not started: %w", f.startErr)
	}
	return fmt.Errorf("firewall not started")
}
