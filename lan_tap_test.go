package main

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"nodenet/internal/testenv"
)

// attachTap opens the persistent tap name in ns as a VM's hypervisor would.
func attachTap(t *testing.T, ns *testenv.Netns, name string) *os.File {
	t.Helper()
	runtime.LockOSThread() // the thread ends with the test's goroutine if setns back fails
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	target, err := netns.GetFromName(ns.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		t.Fatal(err)
	}
	fd, openErr := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if openErr == nil {
		var ifr *unix.Ifreq
		if ifr, openErr = unix.NewIfreq(name); openErr == nil {
			ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
			openErr = unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr)
		}
	}
	if err := netns.Set(orig); err != nil {
		t.Fatal(err)
	}
	if openErr != nil {
		t.Fatalf("attach tap %s: %v", name, openErr)
	}
	unix.SetNonblock(fd, true) // so the runtime poller serves read deadlines
	f := os.NewFile(uintptr(fd), name)
	t.Cleanup(func() { f.Close() })
	return f
}

// arpThroughTap asks "who has target" from (mac, ip) through the tap and
// returns the MAC in the answer.
func arpThroughTap(t *testing.T, tap *os.File, mac net.HardwareAddr, ip, target netip.Addr) net.HardwareAddr {
	t.Helper()
	req := make([]byte, 0, 42)
	req = append(req, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	req = append(req, mac...)
	req = binary.BigEndian.AppendUint16(req, 0x0806)
	req = append(req, 0, 1, 8, 0, 6, 4, 0, 1) // Ethernet, IPv4, request
	req = append(req, mac...)
	req = append(req, ip.AsSlice()...)
	req = append(req, 0, 0, 0, 0, 0, 0)
	req = append(req, target.AsSlice()...)
	deadline := time.Now().Add(10 * time.Second)
	buf := make([]byte, 2048)
	for time.Now().Before(deadline) {
		if _, err := tap.Write(req); err != nil {
			t.Fatalf("write to tap: %v", err)
		}
		tap.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		for {
			n, err := tap.Read(buf)
			if err != nil {
				break // deadline: ask again
			}
			f := buf[:n]
			if n >= 42 && binary.BigEndian.Uint16(f[12:14]) == 0x0806 &&
				binary.BigEndian.Uint16(f[20:22]) == 2 && bytes.Equal(f[28:32], target.AsSlice()) {
				return net.HardwareAddr(bytes.Clone(f[22:28]))
			}
		}
	}
	t.Fatalf("no ARP answer for %s through the tap", target)
	return nil
}
