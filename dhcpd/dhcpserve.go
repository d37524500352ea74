package dhcpd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"golang.org/x/sys/unix"
)

const (
	// dhcpWorkers bounds the requests handled at once; it is also the
	// largest group a lease file write can commit together.
	dhcpWorkers = 64
	// dhcpSweepEvery reports expired leases (OnRelease) without waiting
	// for the pool to need their addresses.
	dhcpSweepEvery = 30 * time.Second
)

// Start opens the server's socket on Device and serves in the background
// until Close.
func (s *Server) Start() error {
	if err := s.setup(); err != nil {
		return err
	}
	if s.Device == "" {
		return fmt.Errorf("dhcp server %s: no device to serve on", s.Prefix)
	}
	s.serveMu.Lock()
	defer s.serveMu.Unlock()
	if s.conn != nil {
		return fmt.Errorf("dhcp server %s: already started", s.Device)
	}
	conn, err := dhcpListen(s.Device, s.serverPort())
	if err != nil {
		return fmt.Errorf("dhcp server %s: %w", s.Device, err)
	}
	s.conn, s.stop = conn, make(chan struct{})
	jobs := make(chan *dhcpv4.DHCPv4, 4*dhcpWorkers)
	s.wg.Add(dhcpWorkers + 2)
	for range dhcpWorkers {
		go s.dhcpWorker(conn, jobs)
	}
	go s.dhcpRead(conn, jobs)
	go s.dhcpSweepLoop(s.stop)
	s.log.Info("dhcp server started", "device", s.Device, "prefix", s.Prefix, "port", s.serverPort())
	return nil
}

// Close stops serving and waits for the requests in hand. The Server
// keeps its leases and may be started again.
func (s *Server) Close() error {
	defer func() {
		s.saveMu.Lock()
		s.leaseCloseFile() // reopened by the next write, if any
		s.saveMu.Unlock()
	}()
	s.serveMu.Lock()
	defer s.serveMu.Unlock()
	if s.conn == nil {
		return nil
	}
	close(s.stop)
	err := s.conn.Close()
	s.wg.Wait()
	s.conn = nil
	if err != nil {
		return fmt.Errorf("dhcp server %s: close: %w", s.Device, err)
	}
	return nil
}

func (s *Server) serverPort() int {
	if s.Port == 0 {
		return dhcpv4.ServerPort
	}
	return s.Port
}

// dhcpListen opens 0.0.0.0:port bound to device: only the LAN's requests
// reach it (never an uplink's), and SO_REUSEADDR lets every LAN of the
// process have its own socket on port 67.
func dhcpListen(device string, port int) (*net.UDPConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = errors.Join(
				unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1),
				unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_BROADCAST, 1),
				unix.BindToDevice(int(fd), device))
		})
		return errors.Join(err, serr)
	}}
	addr := fmt.Sprintf("0.0.0.0:%d", port)
	pc, err := lc.ListenPacket(context.Background(), "udp4", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	conn := pc.(*net.UDPConn)
	_ = conn.SetReadBuffer(1 << 20) // a burst of clients; the kernel caps it anyway
	return conn, nil
}

func (s *Server) dhcpRead(conn *net.UDPConn, jobs chan<- *dhcpv4.DHCPv4) {
	defer s.wg.Done()
	defer close(jobs)
	buf := make([]byte, 65536)
	for {
		n, from, err := conn.ReadFromUDP(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("dhcp read", "device", s.Device, "err", err)
			time.Sleep(100 * time.Millisecond) // not a busy loop if the error sticks
			continue
		}
		req, err := dhcpv4.FromBytes(buf[:n]) // copies what it keeps
		if err != nil {
			s.log.Debug("dhcp malformed packet", "device", s.Device, "from", from, "err", err)
			continue
		}
		select {
		case jobs <- req:
		default: // full: the client retries, as it would after a lost packet
			s.log.Debug("dhcp busy, request dropped", "device", s.Device, "from", from)
		}
	}
}

func (s *Server) dhcpWorker(conn *net.UDPConn, jobs <-chan *dhcpv4.DHCPv4) {
	defer s.wg.Done()
	for req := range jobs {
		reply, err := s.Handle(req)
		if err != nil {
			s.log.Warn("dhcp request not answered", "device", s.Device, "mac", req.ClientHWAddr, "err", err)
			continue
		}
		if reply == nil {
			continue
		}
		dst := s.dhcpReplyAddr(req, reply)
		if _, err := conn.WriteToUDP(reply.ToBytes(), dst); err != nil && !errors.Is(err, net.ErrClosed) {
			s.log.Warn("dhcp send", "device", s.Device, "to", dst, "mac", req.ClientHWAddr, "err", err)
		}
	}
}

// dhcpReplyAddr follows RFC 2131 4.1: to the relay, else to a client that
// already has its address, else broadcast on Device, which reaches a client
// with no address whatever its broadcast flag says (no ARP entry needed).
func (s *Server) dhcpReplyAddr(req, reply *dhcpv4.DHCPv4) *net.UDPAddr {
	port := s.serverPort()
	if gi := dhcpAddr(req.GatewayIPAddr); gi.IsValid() {
		return net.UDPAddrFromAddrPort(netip.AddrPortFrom(gi, uint16(port)))
	}
	if ci := dhcpAddr(req.ClientIPAddr); ci.IsValid() && reply.MessageType() != dhcpv4.MessageTypeNak {
		return net.UDPAddrFromAddrPort(netip.AddrPortFrom(ci, uint16(port+1)))
	}
	return &net.UDPAddr{IP: net.IPv4bcast, Port: port + 1}
}

func (s *Server) dhcpSweepLoop(stop <-chan struct{}) {
	defer s.wg.Done()
	t := time.NewTicker(dhcpSweepEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		s.mu.Lock()
		s.pool.sweep(s.now())
		ended := s.pool.takeEnded()
		s.mu.Unlock()
		s.notifyEnded(ended)
	}
}
