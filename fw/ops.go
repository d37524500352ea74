package fw

import (
	"fmt"
	"maps"
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
// ErrConflict.
func (f *Firewall) AddForwards(fs []Forward) error {
	return f.change(func(_ map[string]LAN, fwds map[string]Forward) error {
		for i, n := range fs {
			if !n.MemberIP.Is4() || n.HostPort == 0 || n.MemberPort == 0 || (n.HostIP.IsValid() && !n.HostIP.Is4()) ||
				(n.Proto != "tcp" && n.Proto != "udp") {
				return fmt.Errorf("port forward %s of %s/%s: %w", n.Key(), n.Network, n.Member, ErrInvalid)
			}
			for _, o := range fwds {
				if n.overlaps(o) {
					return fmt.Errorf("port %s: %w to %s/%s (%s)", n.Key(), ErrConflict, o.Network, o.Member, o.Key())
				}
			}
			for _, o := range fs[:i] {
				if n.overlaps(o) {
					return fmt.Errorf("port %s and %s of %s/%s: the same host port twice: %w", o.Key(), n.Key(), n.Network, n.Member, ErrConflict)
				}
			}
			fwds[forwardID(n)] = n
		}
		return nil
	})
}

// RemoveForwards uninstalls forwards, then deletes the connections they
// made (a UDP flow would otherwise keep reaching the old member).
func (f *Firewall) RemoveForwards(fs []Forward) error {
	err := f.change(func(_ map[string]LAN, fwds map[string]Forward) error {
		for _, o := range fs {
			delete(fwds, forwardID(o))
		}
		return nil
	})
	if err != nil {
		return err
	}
	return f.flushConntrack(fs)
}

// change applies edit to a copy of the state and sends the difference in
// one batch; the state is kept only when the kernel took it.
func (f *Firewall) change(edit func(map[string]LAN, map[string]Forward) error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conn == nil {
		return fmt.Errorf("firewall: not started")
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
