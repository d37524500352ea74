package ovsdb

import (
	"context"
	"errors"
	"fmt"
)

// OwnerKey is the external_ids key that marks what nodenet made; its value
// names the owner (e.g. a LAN). nodenet changes only rows carrying it.
const OwnerKey = "nodenet"

// ErrNotOwned is returned for an object that exists but is not nodenet's.
var ErrNotOwned = errors.New("not owned by nodenet")

// ErrNotFound is returned for an object the database does not have.
var ErrNotFound = errors.New("not found")

// commit runs ops plus a next_cfg bump in one transaction and waits, within
// ctx, until ovs-vswitchd has applied it (cur_cfg caught up): what
// `ovs-vsctl` does without --no-wait, minus re-reading the whole database.
func (c *Client) commit(ctx context.Context, ops ...Operation) ([]OpResult, error) {
	root, err := c.root(ctx)
	if err != nil {
		return nil, err
	}
	where := Eq("_uuid", root.UUID)
	ops = append(ops,
		Mutate(TableRoot, []Mutation{Add("next_cfg", 1)}, where),
		Select(TableRoot, []string{"next_cfg"}, where))
	res, err := c.Transact(ctx, ops...)
	if err != nil {
		return nil, err
	}
	sel := res[len(res)-1]
	if len(sel.Rows) != 1 {
		return nil, fmt.Errorf("ovsdb: the Open_vSwitch row vanished during the transaction")
	}
	cfg, _ := Int(sel.Rows[0]["next_cfg"])
	if err := c.waitApplied(ctx, cfg); err != nil {
		return nil, err
	}
	return res[:len(res)-2], nil
}

// waitApplied waits until ovs-vswitchd reports cur_cfg >= cfg.
func (c *Client) waitApplied(ctx context.Context, cfg int64) error {
	err := c.cache.WaitFor(ctx, func(cache *Cache) bool {
		root, ok := cache.Root()
		return ok && root.CurCfg >= cfg
	})
	if err != nil {
		root, _ := c.cache.Root()
		return fmt.Errorf("ovs-vswitchd has not applied configuration %d (it is at %d; is it running?): %w",
			cfg, root.CurCfg, err)
	}
	return nil
}

// root returns the Open_vSwitch row once connected.
func (c *Client) root(ctx context.Context) (Root, error) {
	if _, err := c.session(ctx); err != nil {
		return Root{}, err
	}
	root, ok := c.cache.Root()
	if !ok {
		return Root{}, fmt.Errorf("ovsdb: the database has no Open_vSwitch row (EnsureRoot creates it)")
	}
	return root, nil
}

// EnsureRoot creates the Open_vSwitch row if the database has none, as
// `ovs-vsctl init` does; ovs-vswitchd does nothing until it exists.
func (c *Client) EnsureRoot(ctx context.Context) error {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	if _, err := c.Conn(ctx); err != nil {
		return err
	}
	if _, ok := c.cache.Root(); ok {
		return nil
	}
	// The wait makes a concurrent initializer's row win instead of a second row.
	empty := Wait(TableRoot, 0, nil, []string{"_uuid"}, "==")
	_, err := c.Transact(ctx, empty, Insert(TableRoot, Row{}, "root"))
	var te *TransactError
	if err != nil && !(errors.As(err, &te) && te.Err == "timed out") {
		return fmt.Errorf("create the Open_vSwitch row: %w", err)
	}
	return c.cache.WaitFor(ctx, func(cache *Cache) bool { _, ok := cache.Root(); return ok })
}

// owned reports whether external_ids mark an object as owner's.
func owned(ids map[string]string, owner string) bool { return ids[OwnerKey] == owner }

// ownerIDs returns extra plus the owner mark.
func ownerIDs(owner string, extra map[string]string) Map {
	m := MapOf(extra)
	m[OwnerKey] = owner
	return m
}

func checkOwner(kind, name string, ids map[string]string, owner string) error {
	if owned(ids, owner) {
		return nil
	}
	if other, ok := ids[OwnerKey]; ok {
		return fmt.Errorf("%s %q belongs to nodenet owner %q, not %q: %w", kind, name, other, owner, ErrNotOwned)
	}
	return fmt.Errorf("%s %q: %w", kind, name, ErrNotOwned)
}
