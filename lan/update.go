package lan

import (
	"context"
	"slices"
)

// Update is what may change on a live network: today the remotes of a
// vxlan network (nodes come and go). Nil fields change nothing.
type Update struct {
	VXLan *VXLanUpdate `json:"vxlan,omitempty"`
}

// VXLanUpdate replaces a vxlan network's remotes.
type VXLanUpdate struct {
	Remotes []string `json:"remotes"`
}

// Update applies u to a network: checked first, applied to the node, then
// recorded; a failure leaves the network as it was.
func (m *Manager) Update(ctx context.Context, name string, u Update) error {
	n, err := m.lookup(name)
	if err != nil {
		return err
	}
	defer n.mu.Unlock()
	if u.VXLan == nil {
		return nil
	}
	vd, ok := n.driver.(*vxlanDriver)
	if !ok {
		return Errorf(Invalid, "network %s is a %s network: vxlan.remotes only exist on vxlan networks", name, n.settings.Type)
	}
	old := n.settings
	vx := *old.VXLan
	vx.Remotes = slices.Clone(u.VXLan.Remotes)
	n.settings.VXLan = &vx
	err = vd.ensureTunnel(ctx, n)
	if err == nil {
		if err = m.store.saveNetwork(n.settings); err != nil {
			err = Errorf(Internal, "update %s: save state: %w", name, err)
		}
	}
	if err != nil {
		n.settings = old
		if undo := vd.ensureTunnel(context.WithoutCancel(ctx), n); undo != nil {
			m.Log.Error("vxlan remotes not restored", "network", name, "err", undo)
		}
		return err
	}
	m.logf("network updated", "network", name, "remotes", vx.Remotes)
	return nil
}
