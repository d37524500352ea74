package ovsdb

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// PortSpec is a port with one interface of the same name.
type PortSpec struct {
	Bridge string
	Name   string
	// Type is the interface type: "" (a system device such as a veth or
	// tap), "internal", "vxlan", "patch", ...
	Type    string
	Options map[string]string // vxlan: remote_ip, key, dst_port; patch: peer
	// Tag makes an access port of that VLAN (0: none); Trunks limits the
	// VLANs a trunk port carries (none: all).
	Tag         int
	Trunks      []int
	MTURequest  int
	Owner       string
	ExternalIDs map[string]string
}

// EnsurePort adds the port to its bridge and waits for ovs-vswitchd to
// apply it, or brings an existing port of owner's on that bridge to spec.
// When ovs-vswitchd cannot set the interface up (Interface.error), the new
// port is removed again and the error carries its text: ovs-vsctl prints
// it and exits 0, nodenet fails.
func (c *Client) EnsurePort(ctx context.Context, spec PortSpec) (Interface, error) {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	if _, err := c.root(ctx); err != nil {
		return Interface{}, fmt.Errorf("port %q: %w", spec.Name, err)
	}
	b, ok := c.cache.Bridge(spec.Bridge)
	if !ok {
		return Interface{}, fmt.Errorf("add port %q: bridge %q: %w", spec.Name, spec.Bridge, ErrNotFound)
	}
	if p, ok := c.cache.Port(spec.Name); ok {
		return c.updatePort(ctx, b, p, spec)
	}
	return c.addPort(ctx, b, spec)
}

func (c *Client) addPort(ctx context.Context, b Bridge, spec PortSpec) (Interface, error) {
	ifaces, err := c.addPorts(ctx, map[string]Bridge{spec.Bridge: b}, spec)
	if err != nil {
		return Interface{}, err
	}
	return ifaces[0], nil
}

// addPorts adds new ports in one transaction and one wait for
// ovs-vswitchd; if it reports an error for any, all are removed again.
func (c *Client) addPorts(ctx context.Context, bridges map[string]Bridge, specs ...PortSpec) ([]Interface, error) {
	var ops []Operation
	for i, spec := range specs {
		ids := ownerIDs(spec.Owner, spec.ExternalIDs)
		iface, port := fmt.Sprintf("iface%d", i), fmt.Sprintf("port%d", i)
		ops = append(ops,
			Insert(TableInterface, interfaceRow(spec, ids), iface),
			Insert(TablePort, portRow(spec, ids, NamedUUID(iface)), port),
			Mutate(TableBridge, []Mutation{InsertInto("ports", NamedUUID(port))},
				Eq("_uuid", bridges[spec.Bridge].UUID)))
	}
	names := portNames(specs)
	res, err := c.commit(ctx, ops...)
	if err != nil {
		return nil, fmt.Errorf("add port %s: %w", names, err)
	}
	for i, spec := range specs {
		if res[3*i+2].Count == 0 {
			// The bridge went away meanwhile; the unreferenced port went with it.
			return nil, fmt.Errorf("add port %q: bridge %q: %w", spec.Name, spec.Bridge, ErrNotFound)
		}
	}
	var out []Interface
	for _, spec := range specs {
		if err := c.interfaceError(spec.Name); err != nil {
			undo := c.deletePorts(context.WithoutCancel(ctx), specs)
			return nil, fmt.Errorf("add port %s: %w (removed again: %v)", names, err, orNone(undo))
		}
		iface, _ := c.cache.Interface(spec.Name)
		out = append(out, iface)
	}
	return out, nil
}

func portNames(specs []PortSpec) string {
	var names []string
	for _, s := range specs {
		names = append(names, fmt.Sprintf("%q", s.Name))
	}
	return strings.Join(names, ", ")
}

func (c *Client) deletePorts(ctx context.Context, specs []PortSpec) error {
	var errs []error
	for _, s := range specs {
		errs = append(errs, c.DeletePort(ctx, s.Name, s.Owner))
	}
	return errors.Join(errs...)
}

// EnsurePatch connects two bridges with a pair of patch ports, a on
// a.Bridge and b on b.Bridge. Both are added in one transaction: a patch
// port alone is an error in ovs-vswitchd until its peer exists.
func (c *Client) EnsurePatch(ctx context.Context, a, b PortSpec) error {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	a.Type, a.Options = "patch", map[string]string{"peer": b.Name}
	b.Type, b.Options = "patch", map[string]string{"peer": a.Name}
	if _, err := c.root(ctx); err != nil {
		return fmt.Errorf("patch %q-%q: %w", a.Name, b.Name, err)
	}
	_, aExists := c.cache.Port(a.Name)
	_, bExists := c.cache.Port(b.Name)
	if aExists || bExists {
		if _, err := c.EnsurePort(ctx, a); err != nil {
			return err
		}
		_, err := c.EnsurePort(ctx, b)
		return err
	}
	bridges := map[string]Bridge{}
	for _, name := range []string{a.Bridge, b.Bridge} {
		br, ok := c.cache.Bridge(name)
		if !ok {
			return fmt.Errorf("patch %q-%q: bridge %q: %w", a.Name, b.Name, name, ErrNotFound)
		}
		bridges[name] = br
	}
	_, err := c.addPorts(ctx, bridges, a, b)
	return err
}

func interfaceRow(spec PortSpec, ids Map) Row {
	row := Row{"name": spec.Name, "type": spec.Type, "external_ids": ids, "options": MapOf(spec.Options)}
	if spec.MTURequest > 0 {
		row["mtu_request"] = spec.MTURequest
	}
	return row
}

func portRow(spec PortSpec, ids Map, iface any) Row {
	row := Row{"name": spec.Name, "interfaces": iface, "external_ids": ids}
	if spec.Tag > 0 {
		row["tag"] = spec.Tag
	}
	if len(spec.Trunks) > 0 {
		row["trunks"] = SetOf(spec.Trunks...)
	}
	return row
}

// updatePort brings an existing port of owner's to spec, rewriting only
// the columns that differ.
func (c *Client) updatePort(ctx context.Context, b Bridge, p Port, spec PortSpec) (Interface, error) {
	if err := checkOwner("port", p.Name, p.ExternalIDs, spec.Owner); err != nil {
		return Interface{}, err
	}
	if on, err := c.bridgeOfPort(ctx, p.UUID); err != nil || on != spec.Bridge {
		return Interface{}, fmt.Errorf("port %q exists, not on bridge %q (on %q): %v", p.Name, spec.Bridge, on, orNone(err))
	}
	iface, ok := c.cache.Interface(spec.Name)
	if !ok || len(p.Interfaces) != 1 || p.Interfaces[0] != iface.UUID {
		return Interface{}, fmt.Errorf("port %q: not a port with one interface of the same name", p.Name)
	}
	ops := portUpdates(p, spec)
	ops = append(ops, interfaceUpdates(iface, spec)...)
	if len(ops) == 0 {
		return iface, c.interfaceError(spec.Name)
	}
	if _, err := c.commit(ctx, ops...); err != nil {
		return Interface{}, fmt.Errorf("update port %q: %w", p.Name, err)
	}
	if err := c.interfaceError(spec.Name); err != nil {
		return Interface{}, fmt.Errorf("update port %q: %w", p.Name, err)
	}
	iface, _ = c.cache.Interface(spec.Name)
	return iface, nil
}

func portUpdates(p Port, spec PortSpec) []Operation {
	row := Row{}
	if p.Tag != int64(spec.Tag) {
		row["tag"] = optional(spec.Tag)
	}
	if !slices.Equal(p.Trunks, toInt64s(spec.Trunks)) {
		row["trunks"] = SetOf(spec.Trunks...)
	}
	if len(row) == 0 {
		return nil
	}
	return []Operation{Update(TablePort, row, Eq("_uuid", p.UUID))}
}

func interfaceUpdates(iface Interface, spec PortSpec) []Operation {
	row := Row{}
	if iface.Type != spec.Type {
		row["type"] = spec.Type
	}
	if !mapsEqual(iface.Options, spec.Options) {
		row["options"] = MapOf(spec.Options)
	}
	if iface.MTURequest != int64(spec.MTURequest) {
		row["mtu_request"] = optional(spec.MTURequest)
	}
	if len(row) == 0 {
		return nil
	}
	return []Operation{Update(TableInterface, row, Eq("_uuid", iface.UUID))}
}

// optional is an optional integer column's value: the empty set for 0.
func optional(n int) any {
	if n == 0 {
		return Set{}
	}
	return n
}

func toInt64s(in []int) []int64 {
	out := make([]int64, 0, len(in))
	for _, v := range in {
		out = append(out, int64(v))
	}
	return out
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

// DeletePort removes owner's port from its bridge (its interface goes with
// it). A port that does not exist is not an error; someone else's is.
func (c *Client) DeletePort(ctx context.Context, name, owner string) error {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	if _, err := c.root(ctx); err != nil {
		return fmt.Errorf("delete port %q: %w", name, err)
	}
	p, ok := c.cache.Port(name)
	if !ok {
		return nil
	}
	if err := checkOwner("port", name, p.ExternalIDs, owner); err != nil {
		return err
	}
	// The server finds the bridge holding it: the cache does not follow
	// Bridge.ports (see vswitchMonitor). A port no bridge holds is gone
	// already: the database drops unreferenced ports by itself.
	held := SetOf(p.UUID)
	op := Mutate(TableBridge, []Mutation{DeleteFrom("ports", held)}, Includes("ports", held))
	if _, err := c.commit(ctx, op); err != nil {
		return fmt.Errorf("delete port %q: %w", name, err)
	}
	return nil
}

// bridgeOfPort asks the server which bridge holds the port.
func (c *Client) bridgeOfPort(ctx context.Context, port UUID) (string, error) {
	res, err := c.Transact(ctx, Select(TableBridge, []string{"name"}, Includes("ports", SetOf(port))))
	if err != nil {
		return "", err
	}
	if len(res[0].Rows) != 1 {
		return "", fmt.Errorf("port %s: held by %d bridges", port, len(res[0].Rows))
	}
	return String(res[0].Rows[0]["name"]), nil
}

// interfaceError returns ovs-vswitchd's error for the interface, if any.
func (c *Client) interfaceError(name string) error {
	iface, ok := c.cache.Interface(name)
	if !ok {
		return fmt.Errorf("interface %q: %w", name, ErrNotFound)
	}
	if iface.Error != "" {
		return fmt.Errorf("interface %q: ovs-vswitchd: %s", name, iface.Error)
	}
	if iface.OFPort < 0 {
		return fmt.Errorf("interface %q: ovs-vswitchd could not add it (ofport -1)", name)
	}
	return nil
}

func orNone(err error) any {
	if err == nil {
		return "ok"
	}
	return err
}
