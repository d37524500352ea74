package links

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// helperListen echoes UDP and TCP on req.Addr until stdin closes (at most
// two minutes), printing a GOT line per datagram.
func helperListen(req helperReq) error {
	lc := bindToDevice(req.Device)
	pc, err := lc.ListenPacket(context.Background(), "udp4", req.Addr)
	if err != nil {
		return err
	}
	ln, err := lc.Listen(context.Background(), "tcp4", req.Addr)
	if err != nil {
		return err
	}
	time.AfterFunc(2*time.Minute, func() { os.Exit(0) })
	fmt.Println("READY")
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			fmt.Printf("GOT udp %s %d\n", from, n)
			pc.WriteTo(buf[:n], from)
		}
	}()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				io.CopyN(c, c, 6)
			}()
		}
	}()
	io.Copy(io.Discard, os.Stdin)
	return nil
}

// bindToDevice makes sockets bound to device (SO_BINDTODEVICE), if any.
func bindToDevice(device string) *net.ListenConfig {
	return &net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		if device == "" {
			return nil
		}
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, device)
		})
		if err != nil {
			return err
		}
		return serr
	}}
}

// probeUDP reports whether a datagram to addr comes back (three tries).
func probeUDP(addr string) bool {
	c, err := net.Dial("udp4", addr)
	if err != nil {
		return false
	}
	defer c.Close()
	buf := make([]byte, 64)
	for range 3 {
		c.Write([]byte("probe\n"))
		c.SetReadDeadline(time.Now().Add(700 * time.Millisecond))
		if n, err := c.Read(buf); err == nil && string(buf[:n]) == "probe\n" {
			return true
		}
	}
	return false
}

// probeTCP reports whether a TCP connection to addr echoes.
func probeTCP(addr string) bool {
	c, err := net.DialTimeout("tcp4", addr, 2*time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("probe\n")); err != nil {
		return false
	}
	buf := make([]byte, 6)
	_, err = io.ReadFull(c, buf)
	return err == nil && string(buf) == "probe\n"
}

// helperSend sends three datagrams to req.Addr (a broadcast address too:
// Go sets SO_BROADCAST on UDP sockets), out of req.Device if set: with no
// address there, a broadcast leaves with source 0.0.0.0, as from a DHCP
// client.
func helperSend(req helperReq) error {
	c, err := bindToDevice(req.Device).ListenPacket(context.Background(), "udp4", ":0")
	if err != nil {
		return err
	}
	defer c.Close()
	to, err := net.ResolveUDPAddr("udp4", req.Addr)
	if err != nil {
		return err
	}
	for range 3 {
		if _, err := c.WriteTo([]byte("hello\n"), to); err != nil {
			return err
		}
		time.Sleep(30 * time.Millisecond)
	}
	return nil
}

// arpProbe broadcasts one ARP request on ifname and returns the sender
// MACs of the replies that come within half a second.
func arpProbe(ifname, source, target string) ([]string, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, err
	}
	src, tgt := netip.MustParseAddr(source).As4(), netip.MustParseAddr(target).As4()
	proto := int(htons(unix.ETH_P_ARP))
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: ifi.Index}); err != nil {
		return nil, err
	}
	bcast := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	var f bytes.Buffer
	f.Write(bcast)
	f.Write(ifi.HardwareAddr)
	binary.Write(&f, binary.BigEndian, []uint16{unix.ETH_P_ARP, 1, unix.ETH_P_IP})
	f.Write([]byte{6, 4, 0, 1}) // hlen, plen, op request
	f.Write(ifi.HardwareAddr)
	f.Write(src[:])
	f.Write(make([]byte, 6))
	f.Write(tgt[:])
	to := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: ifi.Index, Halen: 6}
	copy(to.Addr[:], bcast)
	if err := unix.Sendto(fd, f.Bytes(), 0, to); err != nil {
		return nil, err
	}
	tv := unix.NsecToTimeval((100 * time.Millisecond).Nanoseconds())
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	var macs []string
	buf := make([]byte, 1500)
	for deadline := time.Now().Add(500 * time.Millisecond); time.Now().Before(deadline); {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil || n < 42 {
			continue
		}
		arp := buf[14:42]
		if arp[7] == 2 && bytes.Equal(arp[14:18], tgt[:]) {
			if mac := net.HardwareAddr(arp[8:14]).String(); !slices.Contains(macs, mac) {
				macs = append(macs, mac)
			}
		}
	}
	slices.Sort(macs)
	return macs, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
