package lan

import (
	"context"
	"net/netip"
	"nodenet/fw"
)

// driver is one network type's implementation. The manager validates,
// serializes per network and records state; a driver only makes and
// unmakes things, undoing its own partial steps when it fails.
type driver interface {
	limits() limits
	create(ctx context.Context, n *network) error
	destroy(ctx context.Context, n *network) error
	join(ctx context.Context, n *network, m *Member, o joinPlan) error
	leave(ctx context.Context, n *network, m Member) error
	// reconcile recreates what the state says and the system lacks.
	reconcile(ctx context.Context, n *network) error
	// gatewayPort is the interface holding the gateway address, where
	// DHCP and DNS are served ("" when there is none).
	gatewayPort(n *network) string
}

// limits are what a type allows; the manager enforces them.
type limits struct {
	maxMembers int  // 0: no limit
	forwards   bool // port forwards can be applied
}

// joinPlan is a Join's checked options.
type joinPlan struct {
	JoinOptions
	netnsPath string // resolved, checked
	address   netip.Prefix
	dhcp      bool
	forwards  []fw.Forward // MemberIP set
}

// unsupportedDriver answers for a NetworkType value that names no type
// (a Go caller's NetworkType(42)).
type unsupportedDriver struct{ t NetworkType }

func (d unsupportedDriver) err() error {
	return Errorf(Unsupported, "network type %s is not supported", d.t)
}

func (d unsupportedDriver) limits() limits                                          { return limits{} }
func (d unsupportedDriver) create(context.Context, *network) error                  { return d.err() }
func (d unsupportedDriver) destroy(context.Context, *network) error                 { return d.err() }
func (d unsupportedDriver) join(context.Context, *network, *Member, joinPlan) error { return d.err() }
func (d unsupportedDriver) leave(context.Context, *network, Member) error           { return d.err() }
func (d unsupportedDriver) reconcile(context.Context, *network) error               { return d.err() }
func (d unsupportedDriver) gatewayPort(*network) string                             { return "" }
