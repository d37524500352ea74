package ovsdb

import (
	"context"
	"fmt"
)

// BridgeSpec is a bridge nodenet wants.
type BridgeSpec struct {
	Name         string
	DatapathType string // "system" (kernel) or "netdev" (userspace)
	Owner        string // external_ids:nodenet
	ExternalIDs  map[string]string
	// MTURequest, when set, is asked for the bridge's own internal port.
	MTURequest int
	// HWAddr, when set, is the MAC of the bridge's own internal port
	// (other_config:hwaddr), e.g. the NIC's whose addresses it takes over.
	HWAddr string
}

// EnsureBridge creates the bridge, with its internal port of the same name
// (as `ovs-vsctl add-br` does), or brings an existing one of owner's to
// spec. A bridge someone else made is refused with ErrNotOwned.
func (c *Client) EnsureBridge(ctx context.Context, spec BridgeSpec) (Bridge, error) {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	if _, err := c.root(ctx); err != nil {
		return Bridge{}, fmt.Errorf("bridge %q: %w", spec.Name, err)
	}
	if b, ok := c.cache.Bridge(spec.Name); ok {
		return c.updateBridge(ctx, b, spec)
	}
	return c.createBridge(ctx, spec)
}

func (c *Client) createBridge(ctx context.Context, spec BridgeSpec) (Bridge, error) {
	root, _ := c.cache.Root()
	ids := ownerIDs(spec.Owner, spec.ExternalIDs)
	iface := Row{"name": spec.Name, "type": "internal", "external_ids": ids}
	if spec.MTURequest > 0 {
		iface["mtu_request"] = spec.MTURequest
	}
	bridge := Row{"name": spec.Name, "ports": NamedUUID("port"), "datapath_type": spec.DatapathType, "external_ids": ids}
	if spec.HWAddr != "" {
		bridge["other_config"] = Map{"hwaddr": spec.HWAddr}
	}
	ops := []Operation{
		Insert(TableInterface, iface, "iface"),
		Insert(TablePort, Row{"name": spec.Name, "interfaces": NamedUUID("iface"), "external_ids": ids}, "port"),
		Insert(TableBridge, bridge, "bridge"),
		Mutate(TableRoot, []Mutation{InsertInto("bridges", NamedUUID("bridge"))}, Eq("_uuid", root.UUID)),
	}
	if _, err := c.commit(ctx, ops...); err != nil {
		return Bridge{}, fmt.Errorf("create bridge %q: %w", spec.Name, err)
	}
	if err := c.interfaceError(spec.Name); err != nil {
		return Bridge{}, fmt.Errorf("create bridge %q: %w", spec.Name, err)
	}
	b, _ := c.cache.Bridge(spec.Name)
	return b, nil
}

func (c *Client) updateBridge(ctx context.Context, b Bridge, spec BridgeSpec) (Bridge, error) {
	if err := checkOwner("bridge", b.Name, b.ExternalIDs, spec.Owner); err != nil {
		return Bridge{}, err
	}
	row := Row{}
	if b.DatapathType != spec.DatapathType {
		row["datapath_type"] = spec.DatapathType
	}
	var muts []Mutation
	for k, v := range spec.ExternalIDs {
		if b.ExternalIDs[k] != v {
			// Delete-then-insert replaces one key without rewriting the map.
			muts = append(muts, DeleteFrom("external_ids", SetOf(k)), InsertInto("external_ids", Map{k: v}))
		}
	}
	if spec.HWAddr != "" && b.OtherConfig["hwaddr"] != spec.HWAddr {
		muts = append(muts, DeleteFrom("other_config", SetOf("hwaddr")), InsertInto("other_config", Map{"hwaddr": spec.HWAddr}))
	}
	if len(row) == 0 && len(muts) == 0 {
		return b, nil
	}
	ops := []Operation{}
	if len(row) > 0 {
		ops = append(ops, Update(TableBridge, row, Eq("_uuid", b.UUID)))
	}
	if len(muts) > 0 {
		ops = append(ops, Mutate(TableBridge, muts, Eq("_uuid", b.UUID)))
	}
	if _, err := c.commit(ctx, ops...); err != nil {
		return Bridge{}, fmt.Errorf("update bridge %q: %w", b.Name, err)
	}
	b, _ = c.cache.Bridge(spec.Name)
	return b, nil
}

// DeleteBridge deletes owner's bridge with its ports and interfaces.
// A bridge that does not exist is not an error; someone else's is.
func (c *Client) DeleteBridge(ctx context.Context, name, owner string) error {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	root, err := c.root(ctx)
	if err != nil {
		return fmt.Errorf("delete bridge %q: %w", name, err)
	}
	b, ok := c.cache.Bridge(name)
	if !ok {
		return nil
	}
	if err := checkOwner("bridge", name, b.ExternalIDs, owner); err != nil {
		return err
	}
	// Dropping the root's reference deletes the bridge, and with it its
	// ports and interfaces: none of them is a root table.
	op := Mutate(TableRoot, []Mutation{DeleteFrom("bridges", SetOf(b.UUID))}, Eq("_uuid", root.UUID))
	if _, err := c.commit(ctx, op); err != nil {
		return fmt.Errorf("delete bridge %q: %w", name, err)
	}
	return nil
}

// OwnedBridges returns the bridges marked as owner's ("" for any owner).
func (c *Client) OwnedBridges(owner string) []Bridge {
	var out []Bridge
	for _, b := range c.cache.Bridges() {
		if got, ok := b.ExternalIDs[OwnerKey]; ok && (owner == "" || got == owner) {
			out = append(out, b)
		}
	}
	return out
}
