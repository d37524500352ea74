package links

import (
	"fmt"
	"runtime"
	"unsafe"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// TxChecksumOff turns TX checksum offload off on ifname in ns
// (netns.None(): the caller's namespace), as `ethtool -K IF tx off` does;
// the kernel drops the offloads that depend on it (TSO, GSO checksums).
//
// On the userspace (netdev) datapath OVS reads a port with AF_PACKET and
// forwards TCP and UDP with the checksum the sender left for the hardware
// to fill in, so the receiver drops them. The end to turn it off on is the
// one that transmits into the bridge: a member's veth end inside its
// namespace. The host end only transmits what OVS writes through
// AF_PACKET, which is never left for offload.
func TxChecksumOff(ns netns.NsHandle, ifname string) error {
	v := ethtoolValue{cmd: unix.ETHTOOL_STXCSUM, data: 0}
	if err := ethtoolIoctl(ns, ifname, &v); err != nil {
		return fmt.Errorf("link %s: tx checksum offload off: %w", ifname, err)
	}
	return nil
}

// TxChecksum reports whether TX checksum offload is on for ifname in ns.
func TxChecksum(ns netns.NsHandle, ifname string) (bool, error) {
	v := ethtoolValue{cmd: unix.ETHTOOL_GTXCSUM}
	if err := ethtoolIoctl(ns, ifname, &v); err != nil {
		return false, fmt.Errorf("link %s: read tx checksum offload: %w", ifname, err)
	}
	return v.data != 0, nil
}

// ethtoolValue is struct ethtool_value.
type ethtoolValue struct {
	cmd  uint32
	data uint32
}

// ifreqData is struct ifreq with ifr_data pointing at an ethtool request.
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [unsafe.Sizeof(unix.Ifreq{}) - unix.IFNAMSIZ - unix.SizeofPtr]byte
}

// ethtoolIoctl runs one SIOCETHTOOL request. The ioctl acts on the
// namespace its socket was made in, so only the socket is made inside ns.
func ethtoolIoctl(ns netns.NsHandle, ifname string, v *ethtoolValue) error {
	if err := ValidIfname(ifname); err != nil {
		return err
	}
	fd := -1
	err := inNS(ns, func() error {
		var err error
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		return err
	})
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	req := &ifreqData{data: unsafe.Pointer(v)}
	copy(req.name[:], ifname)
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(req)))
	runtime.KeepAlive(req)
	runtime.KeepAlive(v)
	if errno != 0 {
		return errno
	}
	return nil
}
