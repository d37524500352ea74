package dhcpd

import (
	"errors"
	"net"
	"net/netip"

	"golang.org/x/net/ipv4"
)

// dnsUDPBatch is how many datagrams one recvmmsg takes and one sendmmsg
// answers. Under load the syscalls, not the answers, are what a query costs
// (answering takes well under a microsecond), so a reader takes whatever
// has queued up at once.
const dnsUDPBatch = 64

// serveUDP answers local names and cache hits inline, a batch at a time;
// misses are forwarded in their own goroutine so a slow upstream never
// delays local answers.
func (s *DNSServer) serveUDP(conn *net.UDPConn) {
	defer s.wg.Done()
	pc := ipv4.NewPacketConn(conn)
	in := make([]ipv4.Message, dnsUDPBatch)
	out := make([]ipv4.Message, dnsUDPBatch)
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, 65535)}
		out[i].Buffers = make([][]byte, 1)
	}
	replies := make([][]byte, dnsUDPBatch)
	for i := range replies {
		replies[i] = make([]byte, 0, dnsMaxUDP)
	}
	for {
		n, err := pc.ReadBatch(in, 0)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		replied := 0
		for i := range in[:n] {
			m := &in[i]
			src, ok := dnsUDPSource(m.Addr)
			if !ok {
				continue
			}
			resp, fwd := s.respond(replies[i][:0], m.Buffers[0][:m.N], src, false)
			if fwd != nil {
				s.goForward(fwd, 0, func(b []byte) {
					if b != nil {
						conn.WriteToUDPAddrPort(b, src)
					}
				})
				continue
			}
			if resp != nil {
				replies[i] = resp[:0]
				out[replied].Buffers[0], out[replied].Addr = resp, m.Addr
				replied++
			}
		}
		s.sendBatch(pc, out[:replied])
	}
}

// sendBatch writes the replies with as few sendmmsg calls as it takes; a
// reply the kernel refuses is skipped (UDP: the client asks again).
func (s *DNSServer) sendBatch(pc *ipv4.PacketConn, out []ipv4.Message) {
	for len(out) > 0 {
		n, err := pc.WriteBatch(out, 0)
		if err != nil {
			n = max(n, 1)
		}
		out = out[n:]
	}
}

func dnsUDPSource(a net.Addr) (netip.AddrPort, bool) {
	ua, ok := a.(*net.UDPAddr)
	if !ok {
		return netip.AddrPort{}, false
	}
	src := ua.AddrPort()
	return src, src.Port() != 0
}
