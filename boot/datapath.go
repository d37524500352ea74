package boot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/mdlayher/genetlink"
)

// The OVS datapath types a bridge's datapath_type takes.
const (
	DatapathSystem = "system" // the kernel's openvswitch module
	DatapathNetdev = "netdev" // ovs-vswitchd's userspace datapath
)

// ovsFamily is the generic-netlink family the openvswitch module
// registers; ovs-vswitchd's system datapath needs it.
const ovsFamily = "ovs_datapath"

// Datapath is the datapath bridges get, and why.
type Datapath struct {
	Type   string `json:"type"` // DatapathSystem or DatapathNetdev
	Reason string `json:"reason"`
}

// DatapathChooser picks the datapath for --datapath / nodenet.datapath=.
type DatapathChooser struct {
	Modules ModuleLoader // loads openvswitch when its family is missing
	// HasFamily reports whether a generic-netlink family exists; nil asks
	// the kernel (tests fill it in).
	HasFamily func(ctx context.Context, name string) (bool, error)
	Log       *slog.Logger
}

// ChooseDatapath is DatapathChooser.Choose with the running kernel.
func ChooseDatapath(ctx context.Context, want string, log *slog.Logger) (Datapath, error) {
	c := &DatapathChooser{Log: log}
	c.Modules.Log = log
	return c.Choose(ctx, want)
}

// Choose resolves want ("auto" or "", "system", "netdev"). auto takes the
// kernel datapath when the ovs_datapath family exists or appears after
// loading the openvswitch module, else netdev (logged at WARN); system
// without the family is an error; netdev is always netdev.
func (c *DatapathChooser) Choose(ctx context.Context, want string) (Datapath, error) {
	switch want {
	case DatapathNetdev:
		return Datapath{Type: DatapathNetdev, Reason: "netdev asked for"}, nil
	case "", "auto", DatapathSystem:
	default:
		return Datapath{}, fmt.Errorf("datapath %q: want auto, system or netdev", want)
	}
	have, why := c.kernelDatapath(ctx)
	if have {
		return Datapath{Type: DatapathSystem, Reason: why}, nil
	}
	if want == DatapathSystem {
		return Datapath{}, fmt.Errorf("datapath system: %s", why)
	}
	d := Datapath{Type: DatapathNetdev, Reason: why + "; using the userspace datapath"}
	c.log().Warn("OVS kernel datapath unavailable", "datapath", d.Type, "reason", d.Reason)
	return d, nil
}

// kernelDatapath checks the family, loading the module when it is missing,
// and says why it is or is not there.
func (c *DatapathChooser) kernelDatapath(ctx context.Context) (bool, string) {
	ok, err := c.hasFamily(ctx, ovsFamily)
	if ok {
		return true, "generic-netlink family " + ovsFamily + " present"
	}
	if err != nil {
		return false, fmt.Sprintf("generic-netlink family %s: %v", ovsFamily, err)
	}
	loadErr := c.Modules.Load(ctx, "openvswitch")
	ok, err = c.hasFamily(ctx, ovsFamily)
	switch {
	case ok:
		return true, "loaded the openvswitch module"
	case err != nil:
		return false, fmt.Sprintf("generic-netlink family %s: %v", ovsFamily, err)
	case loadErr != nil:
		return false, fmt.Sprintf("no generic-netlink family %s (%v)", ovsFamily, loadErr)
	default:
		return false, fmt.Sprintf("no generic-netlink family %s after loading the openvswitch module", ovsFamily)
	}
}

func (c *DatapathChooser) hasFamily(ctx context.Context, name string) (bool, error) {
	if c.HasFamily != nil {
		return c.HasFamily(ctx, name)
	}
	return genlFamilyExists(ctx, name)
}

func (c *DatapathChooser) log() *slog.Logger {
	if c.Log != nil {
		return c.Log
	}
	return slog.New(slog.DiscardHandler)
}

// genlFamilyExists asks the kernel's generic-netlink controller for name,
// within ctx's deadline or 10 s: a missing family makes the kernel run
// modprobe for it and wait, which in a small VM without KVM takes seconds.
func genlFamilyExists(ctx context.Context, name string) (bool, error) {
	conn, err := genetlink.Dial(nil)
	if err != nil {
		return false, fmt.Errorf("dial generic netlink: %w", err)
	}
	defer conn.Close()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(10 * time.Second)
	}
	if err := conn.SetDeadline(deadline); err != nil {
		return false, fmt.Errorf("generic netlink deadline: %w", err)
	}
	_, err = conn.GetFamily(name)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("get family %s: %w", name, err)
	}
	return true, nil
}
