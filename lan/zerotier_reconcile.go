package lan

import (
	"context"
	"errors"
	"os"

	"nodenet/links"
)

// reconcile at start: the network is joined again if the service forgot
// it; a device its member holds stays where it is; one that should be in
// a member's netns and is on the node goes there again; one that is
// nowhere (it went with a deleted netns) is made anew by joining again.
func (d *zerotierDriver) reconcile(ctx context.Context, n *network) error {
	name, id := n.settings.Name, ztID(n)
	nw, joined, err := d.zt.network(ctx, id)
	if err != nil {
		return Errorf(CodeOf(err), "reconcile %s: %w", name, err)
	}
	var mem *Member
	for _, m := range n.members {
		mem = &m
	}
	if mem != nil && d.memberHolds(*mem) {
		return nil
	}
	switch {
	case !joined:
		d.m.Log.Info("zerotier network joined again", "network", name, "zerotier", id)
		if err := d.zt.join(ctx, id); err != nil {
			return Errorf(CodeOf(err), "reconcile %s: %w", name, err)
		}
		nw, err = d.waitReady(ctx, id)
	case nw.PortDeviceName == "" || !links.Exists(nw.PortDeviceName):
		d.m.Log.Warn("zerotier device lost: joining the network again for a new one", "network", name, "device", nw.PortDeviceName)
		err = d.rejoin(ctx, n)
		if err == nil {
			nw, _, err = d.zt.network(ctx, id)
		}
	}
	if err != nil {
		return Errorf(CodeOf(err), "reconcile %s: %w", name, err)
	}
	if mem == nil {
		return nil
	}
	return d.restoreMember(n, *mem, nw)
}

// restoreMember moves the device, back on the node, into the netns of the
// member the state records, if that netns is still there.
func (d *zerotierDriver) restoreMember(n *network, mem Member, nw ztNetwork) error {
	ns, _, err := links.OpenNetns(mem.Namespace)
	if errors.Is(err, os.ErrNotExist) {
		d.m.Log.Warn("member's netns gone: zerotier device left on the node", "network", n.settings.Name, "member", mem.Name)
		return nil
	}
	if err != nil {
		return Errorf(Internal, "reconcile %s/%s: %w", n.settings.Name, mem.Name, err)
	}
	defer ns.Close()
	if nw.PortDeviceName != mem.HostIfname {
		d.m.Log.Warn("zerotier device renamed by the service", "network", n.settings.Name, "was", mem.HostIfname, "now", nw.PortDeviceName)
	}
	if err := moveIn(ns, nw.PortDeviceName, mem.Ifname, assignedPrefixes(nw)); err != nil {
		return Errorf(Internal, "reconcile %s/%s: %w", n.settings.Name, mem.Name, err)
	}
	d.m.Log.Info("zerotier device given to its member again", "network", n.settings.Name, "member", mem.Name)
	return nil
}

// rejoin leaves and joins the network again: the service then makes a
// new device (the real one closes the lost device's tap when it leaves).
func (d *zerotierDriver) rejoin(ctx context.Context, n *network) error {
	id := ztID(n)
	if err := d.zt.leave(ctx, id); err != nil {
		return err
	}
	if err := d.zt.join(ctx, id); err != nil {
		return err
	}
	_, err := d.waitReady(ctx, id)
	return err
}
