package links

import (
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TunDevice is the tun/tap clone device; tests point it elsewhere.
var TunDevice = "/dev/net/tun"

// CreateTap makes a persistent TAP device in the caller's namespace for a
// VM to attach to later, with MTU mtu (0: default) and MAC mac (nil:
// random), and sets it up; it shows no carrier until a process attaches.
// owner and group restrict who may attach (besides CAP_NET_ADMIN); -1
// leaves either unset. An existing device of that name is an error, never
// adopted.
//
// It uses the tun ioctls itself because netlink.Tuntap always sets owner
// and group (0 for "unset"), so "none" could not be expressed. Flags are
// IFF_TAP|IFF_NO_PI, single queue: the attaching process sets its own
// features (vnet header, offloads) when it opens the device, but a
// multi-queue device only takes multi-queue openers.
func CreateTap(name string, mtu int, mac net.HardwareAddr, owner, group int) error {
	if err := ValidIfname(name); err != nil {
		return fmt.Errorf("tap %s: %w", name, err)
	}
	if err := validMAC(mac); err != nil {
		return fmt.Errorf("tap %s: %w", name, err)
	}
	if err := makeTap(name, owner, group); err != nil {
		return fmt.Errorf("tap %s: %w", name, err)
	}
	if err := setupTap(name, mtu, mac); err != nil {
		if derr := DeleteLink(name); derr != nil {
			err = errors.Join(err, fmt.Errorf("undo: %w", derr))
		}
		return fmt.Errorf("tap %s: %w", name, err)
	}
	return nil
}

// makeTap creates the device and makes it outlive the file descriptor.
func makeTap(name string, owner, group int) error {
	fd, err := unix.Open(TunDevice, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", TunDevice, err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	// IFF_TUN_EXCL: fail with EBUSY rather than attach to someone's device.
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_TUN_EXCL)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		return fmt.Errorf("create (TUNSETIFF): %w", err)
	}
	// Until TUNSETPERSIST the device vanishes with fd, which undoes the rest.
	if owner >= 0 {
		if err := unix.IoctlSetInt(fd, unix.TUNSETOWNER, owner); err != nil {
			return fmt.Errorf("set owner %d: %w", owner, err)
		}
	}
	if group >= 0 {
		if err := unix.IoctlSetInt(fd, unix.TUNSETGROUP, group); err != nil {
			return fmt.Errorf("set group %d: %w", group, err)
		}
	}
	if err := unix.IoctlSetInt(fd, unix.TUNSETPERSIST, 1); err != nil {
		return fmt.Errorf("make persistent: %w", err)
	}
	return nil
}

func setupTap(name string, mtu int, mac net.HardwareAddr) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	if mtu > 0 && l.Attrs().MTU != mtu {
		if err := netlink.LinkSetMTU(l, mtu); err != nil {
			return fmt.Errorf("set mtu %d: %w", mtu, err)
		}
	}
	if mac != nil {
		if err := netlink.LinkSetHardwareAddr(l, mac); err != nil {
			return fmt.Errorf("set MAC %s: %w", mac, err)
		}
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return fmt.Errorf("set up: %w", err)
	}
	return nil
}
