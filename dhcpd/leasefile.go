package dhcpd

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"slices"
	"time"

	"nodenet/internal/fsutil"
)

// leaseFileVersion is the format of LeaseFile:
// {"version":1,"leases":[Lease, ...]}, one lease per line.
const leaseFileVersion = 1

type leaseFileJSON struct {
	Version int     `json:"version"`
	Leases  []Lease `json:"leases"`
}

// Load reads LeaseFile (a missing file is an empty one) and replaces what
// the server knows with it. Leases that ran out while the daemon was down
// are dropped, but their clients still get the same address back unless
// someone else needs it. Call it before Start.
func (s *Server) Load() error {
	if err := s.setup(); err != nil {
		return err
	}
	if s.LeaseFile == "" {
		return nil
	}
	var f leaseFileJSON
	data, err := os.ReadFile(s.LeaseFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("dhcp %s: load leases: %w", s.Device, err)
	default:
		if err := json.Unmarshal(data, &f); err != nil {
			return fmt.Errorf("dhcp %s: load leases %s: %w", s.Device, s.LeaseFile, err)
		}
		if f.Version != leaseFileVersion {
			return fmt.Errorf("dhcp %s: load leases %s: version %d, want %d", s.Device, s.LeaseFile, f.Version, leaseFileVersion)
		}
	}
	s.mu.Lock()
	problems := s.pool.restore(f.Leases, s.now())
	gen := s.gen
	s.mu.Unlock()
	s.saveMu.Lock()
	s.savedGen = gen // the file already says what the server now knows
	s.saveMu.Unlock()
	for _, p := range problems {
		s.log.Warn("dhcp lease file entry dropped", "device", s.Device, "file", s.LeaseFile, "reason", p)
	}
	return nil
}

// Reserve gives member's MAC the fixed address ip, persisted before it
// returns. It is idempotent; a MAC reserved elsewhere moves to ip. The
// error wraps ErrNotInPool or ErrAddressInUse.
func (s *Server) Reserve(member string, mac net.HardwareAddr, ip netip.Addr) error {
	if err := s.setup(); err != nil {
		return err
	}
	if len(mac) != 6 {
		return fmt.Errorf("dhcp %s: reserve %s for %s: MAC %q: not Ethernet", s.Device, ip, member, mac)
	}
	s.mu.Lock()
	changed, err := s.pool.reserve(member, mac.String(), ip.Unmap(), s.now())
	if changed {
		s.gen++
	}
	gen, ended := s.gen, s.pool.takeEnded()
	s.mu.Unlock()
	s.notifyEnded(ended)
	if err != nil {
		return fmt.Errorf("dhcp %s: reserve %s for %s (%s): %w", s.Device, ip, member, mac, err)
	}
	if err := s.dhcpPersist(gen); err != nil {
		return fmt.Errorf("dhcp %s: reserve %s for %s (%s): %w", s.Device, ip, member, mac, err)
	}
	return nil
}

// Unreserve drops mac's reservation and any lease on it, persisted.
func (s *Server) Unreserve(mac net.HardwareAddr) error {
	if err := s.setup(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.pool.unreserve(mac.String()) {
		s.gen++
	}
	gen, ended := s.gen, s.pool.takeEnded()
	s.mu.Unlock()
	s.notifyEnded(ended)
	if err := s.dhcpPersist(gen); err != nil {
		return fmt.Errorf("dhcp %s: unreserve %s: %w", s.Device, mac, err)
	}
	return nil
}

// Leases lists reservations, offers and leases in force, sorted by address.
func (s *Server) Leases() []Lease {
	if s.setup() != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pool.leases(s.now())
}

// Stats counts the LAN's addresses.
func (s *Server) Stats() Stats {
	if s.setup() != nil {
		return Stats{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.pool.stats(s.now())
	st.LastExhausted = s.lastExhausted
	return st
}

// dhcpPersist returns once LeaseFile holds change gen. It is a group
// commit: whoever holds saveMu writes every change made so far, and the
// callers queued behind it find theirs already on disk, so a burst of
// ACKs costs a few writes, not one each.
func (s *Server) dhcpPersist(gen uint64) error {
	if s.LeaseFile == "" {
		return nil
	}
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	if s.savedGen >= gen {
		return nil
	}
	s.mu.Lock()
	leases, cur := s.pool.persisted(), s.gen
	s.mu.Unlock()
	data, err := leaseFileBytes(leases)
	if err != nil {
		return fmt.Errorf("save leases %s: %w", s.LeaseFile, err)
	}
	if err := fsutil.WriteFileAtomic(s.LeaseFile, data, 0o600); err != nil {
		return fmt.Errorf("save leases: %w", err)
	}
	s.savedGen = cur
	return nil
}

func leaseFileBytes(leases []Lease) ([]byte, error) {
	slices.SortFunc(leases, func(a, b Lease) int {
		return netip.MustParseAddr(a.IP).Compare(netip.MustParseAddr(b.IP))
	})
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "{\"version\":%d,\"leases\":[", leaseFileVersion)
	for i, l := range leases {
		line, err := json.Marshal(l)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteString("\n")
		buf.Write(line)
	}
	buf.WriteString("\n]}\n")
	return buf.Bytes(), nil
}

// persisted lists what LeaseFile keeps: reservations and bound leases
// (lapsed ones too, so a restart still knows whose address it was).
func (p *leasePool) persisted() []Lease {
	out := make([]Lease, 0, len(p.byIP))
	for _, r := range p.byIP {
		switch {
		case r.state == leaseBound:
			out = append(out, r.asLease(StateBound, r.expires))
		case r.reserved:
			out = append(out, r.asLease(StateReserved, time.Time{}))
		}
	}
	return out
}

// restore replaces the pool's state with leases read from the lease file;
// it returns why entries were dropped.
func (p *leasePool) restore(leases []Lease, now time.Time) (problems []string) {
	p.byIP = make(map[netip.Addr]*leaseRec, len(leases))
	p.byMAC = make(map[string]*leaseRec, len(leases))
	p.lastMAC = make(map[netip.Addr]string)
	p.lastIP = make(map[string]netip.Addr)
	p.declined = make(map[netip.Addr]time.Time)
	p.fresh, p.reuse, p.reuseHead, p.sweepAt, p.ended = 0, nil, 0, time.Time{}, nil
	// Reservations first: they win a clash with a dynamic lease.
	for _, reserved := range []bool{true, false} {
		for _, l := range leases {
			if l.Reserved != reserved {
				continue
			}
			if err := p.restoreOne(l, now); err != nil {
				problems = append(problems, err.Error())
			}
		}
	}
	return problems
}

func (p *leasePool) restoreOne(l Lease, now time.Time) error {
	hw, err := net.ParseMAC(l.MAC)
	if err != nil || len(hw) != 6 {
		return fmt.Errorf("lease %s for %q: bad MAC", l.IP, l.MAC)
	}
	mac := hw.String()
	ip, err := netip.ParseAddr(l.IP)
	if err != nil || !p.inRange(ip.Unmap()) {
		return fmt.Errorf("lease %q for %s: %w", l.IP, mac, ErrNotInPool)
	}
	ip = ip.Unmap()
	if p.byIP[ip] != nil || p.byMAC[mac] != nil || p.lastMAC[ip] != "" || p.lastIP[mac].IsValid() {
		return fmt.Errorf("lease %s for %s: address or MAC listed twice", ip, mac)
	}
	r := &leaseRec{ip: ip, mac: mac, hostname: dhcpCleanHostname(l.Hostname), member: l.Member, reserved: l.Reserved}
	if l.State == StateBound && now.Before(l.Expires) {
		r.state, r.expires = leaseBound, l.Expires
		p.noteExpiry(l.Expires)
	} else if !l.Reserved {
		// Ran out while we were down: its client keeps a claim on the
		// address until someone else needs it.
		p.lastMAC[ip], p.lastIP[mac] = mac, ip
		p.pushFree(ip)
		return nil
	}
	p.byIP[ip], p.byMAC[mac] = r, r
	return nil
}
