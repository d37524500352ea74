package links

import (
	"fmt"
	"path"
	"strings"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ProcSys is where sysctls live.
const ProcSys = "/proc/sys"

// SetSysctl writes a network sysctl of ns (netns.None(): the caller's
// namespace). key is the path under /proc/sys in slash form, e.g.
// "net/ipv4/ip_forward" or "net/ipv4/conf/eth0.10/rp_filter" (a dot in an
// interface name is why the dotted sysctl(8) form is not taken). Only keys
// under net/ are taken: those are per namespace, other sysctls would change
// the whole machine.
//
// The file is opened from a thread inside ns: /proc/sys/net shows the
// namespace of the thread that looks it up.
func SetSysctl(ns netns.NsHandle, key, value string) error {
	p, err := sysctlPath(key)
	if err != nil {
		return err
	}
	err = inNS(ns, func() error {
		fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		_, err = unix.Write(fd, []byte(value+"\n"))
		return err
	})
	if err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", key, value, err)
	}
	return nil
}

// Sysctl reads a network sysctl of ns, without the trailing newline.
func Sysctl(ns netns.NsHandle, key string) (string, error) {
	p, err := sysctlPath(key)
	if err != nil {
		return "", err
	}
	var buf [4096]byte
	var n int
	err = inNS(ns, func() error {
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		n, err = unix.Read(fd, buf[:])
		return err
	})
	if err != nil {
		return "", fmt.Errorf("sysctl %s: %w", key, err)
	}
	return strings.TrimSuffix(string(buf[:n]), "\n"), nil
}

// sysctlPath refuses keys outside net/ and any that are not already clean
// ("net/../kernel/x", "net//x", "/net/x"): a clean path cannot climb out.
func sysctlPath(key string) (string, error) {
	if !strings.HasPrefix(key, "net/") || path.Clean(key) != key || strings.Contains(key, "\x00") {
		return "", fmt.Errorf("sysctl %q: want a clean path under net/, such as net/ipv4/ip_forward", key)
	}
	return ProcSys + "/" + key, nil
}
