package dhcpd

import (
	"bufio"
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

	"golang.org/x/sys/unix"

	"nodenet/internal/fsutil"
)

// LeaseFile is JSON lines: a header {"version":1}, then one Lease per
// line, or {"ip":..,"gone":true} once an address holds nothing worth
// keeping; a later line for an address replaces the earlier ones. A
// change is appended and fdatasync'ed before its ACK: rewriting every
// lease for every ACK made each ACK cost O(leases). When the appended
// lines outgrow the rest, the file is rewritten (fsutil.WriteFileAtomic)
// with one line per lease.
const (
	leaseFileVersion = 1
	// leaseAppendMin is how much may be appended before any rewrite.
	leaseAppendMin = 256 << 10
)

type leaseFileHeader struct {
	Version int     `json:"version"`
	Leases  []Lease `json:"leases,omitempty"` // the first format: one JSON document
}

type leaseLine struct {
	Gone bool `json:"gone,omitempty"`
	Lease
}

// Load reads LeaseFile (a missing file is an empty one) and replaces what
// the server knows with it. Leases that ran out while the daemon was down
// are not restored, but their clients still get the same address back
// unless someone else needs it. Call it before Start.
func (s *Server) Load() error {
	if err := s.setup(); err != nil {
		return err
	}
	if s.LeaseFile == "" {
		return nil
	}
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	leases, size, bad, err := readLeaseFile(s.LeaseFile)
	if err != nil {
		return fmt.Errorf("dhcp %s: load leases: %w", s.Device, err)
	}
	s.mu.Lock()
	problems := s.pool.restore(leases, s.now())
	gen := s.gen
	s.mu.Unlock()
	if bad > 0 {
		problems = append(problems, fmt.Sprintf("%d unreadable lines (a write cut short)", bad))
	}
	for _, p := range problems {
		s.log.Warn("dhcp lease file entry dropped", "device", s.Device, "file", s.LeaseFile, "reason", p)
	}
	s.leaseCloseFile()
	// Never append after a torn line, to a file that is not there, or to
	// the first format: the next write rewrites the file.
	s.needRewrite = bad > 0 || size < 0
	s.rewritten, s.appended = max(size, 0), 0
	s.savedGen = gen // the file says what the server now knows
	return nil
}

// readLeaseFile returns the leases of path, its size (-1: missing, or in
// a format that cannot be appended to) and how many lines were unreadable.
func readLeaseFile(path string) (leases []Lease, size int64, bad int, err error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, -1, 0, nil
	}
	if err != nil {
		return nil, 0, 0, err
	}
	var doc leaseFileHeader
	if json.Unmarshal(data, &doc) == nil && doc.Leases != nil && doc.Version == leaseFileVersion {
		return doc.Leases, -1, 0, nil // the first format
	}
	first, rest, _ := bytes.Cut(data, []byte("\n"))
	var h leaseFileHeader
	if err := json.Unmarshal(first, &h); err != nil || h.Version != leaseFileVersion {
		return nil, 0, 0, fmt.Errorf("%s: not a version %d lease file", path, leaseFileVersion)
	}
	byIP := map[string]int{} // index in leases; -1: gone
	sc := bufio.NewScanner(bytes.NewReader(rest))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l leaseLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil || l.IP == "" {
			bad++
			continue
		}
		i, known := byIP[l.IP]
		switch {
		case l.Gone && known:
			byIP[l.IP] = -1
			if i >= 0 {
				leases[i] = Lease{} // dropped below
			}
		case l.Gone:
		case known && i >= 0:
			leases[i] = l.Lease
		default:
			byIP[l.IP] = len(leases)
			leases = append(leases, l.Lease)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, 0, 0, fmt.Errorf("%s: %w", path, err)
	}
	leases = slices.DeleteFunc(leases, func(l Lease) bool { return l.IP == "" })
	return leases, int64(len(data)), bad, nil
}

// dhcpPersist returns once LeaseFile holds change gen. It is a group
// commit: whoever holds saveMu writes every change made so far, and the
// callers queued behind it find theirs already on disk, so a burst of
// ACKs costs one fdatasync, not one each.
func (s *Server) dhcpPersist(gen uint64) error {
	if s.LeaseFile == "" {
		return nil
	}
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	if s.savedGen >= gen {
		return nil
	}
	rewrite := s.needRewrite || s.appended >= max(leaseAppendMin, s.rewritten)
	if !rewrite && s.file == nil {
		f, err := os.OpenFile(s.LeaseFile, os.O_WRONLY|os.O_APPEND, 0)
		rewrite = err != nil // gone under us: write it whole
		s.file = f
	}
	var all []Lease
	s.mu.Lock()
	changes, cur := s.pool.takeDirty(), s.gen
	if rewrite {
		all = s.pool.persisted()
	}
	s.mu.Unlock()
	var err error
	if rewrite {
		err = s.leaseRewrite(all)
	} else {
		err = s.leaseAppend(changes)
	}
	if err != nil {
		s.mu.Lock()
		s.pool.markDirty(changes) // for the next writer to retry
		s.mu.Unlock()
		return err
	}
	s.savedGen = cur
	return nil
}

func (s *Server) leaseAppend(changes []leaseLine) error {
	var buf bytes.Buffer
	for _, c := range changes {
		if err := leaseAppendLine(&buf, c); err != nil {
			return fmt.Errorf("save leases %s: %w", s.LeaseFile, err)
		}
	}
	n, err := s.file.Write(buf.Bytes())
	s.appended += int64(n)
	if err == nil {
		err = unix.Fdatasync(int(s.file.Fd()))
	}
	if err != nil {
		s.needRewrite = true // it may end in half a line now
		return fmt.Errorf("save leases %s: %w", s.LeaseFile, err)
	}
	return nil
}

// leaseRewrite replaces LeaseFile with one line per lease.
func (s *Server) leaseRewrite(leases []Lease) error {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "{\"version\":%d}\n", leaseFileVersion)
	for _, l := range leases {
		if err := leaseAppendLine(&buf, leaseLine{Lease: l}); err != nil {
			return fmt.Errorf("save leases %s: %w", s.LeaseFile, err)
		}
	}
	if err := fsutil.WriteFileAtomic(s.LeaseFile, buf.Bytes(), 0o600); err != nil {
		s.needRewrite = true
		return fmt.Errorf("save leases: %w", err)
	}
	s.leaseCloseFile() // it is the replaced file's
	s.rewritten, s.appended, s.needRewrite = int64(buf.Len()), 0, false
	return nil
}

func leaseAppendLine(buf *bytes.Buffer, l leaseLine) error {
	if l.Gone {
		fmt.Fprintf(buf, "{\"ip\":%q,\"gone\":true}\n", l.IP)
		return nil
	}
	line, err := json.Marshal(l.Lease)
	if err != nil {
		return err
	}
	buf.Write(line)
	buf.WriteByte('\n')
	return nil
}

func (s *Server) leaseCloseFile() {
	if s.file != nil {
		s.file.Close()
		s.file = nil
	}
}

// stored is what the lease store keeps of r: reservations and bound
// leases (lapsed ones too, so a restart still knows whose address it was).
func (r *leaseRec) stored() (Lease, bool) {
	switch {
	case r.state == leaseBound:
		return r.asLease(StateBound, r.expires), true
	case r.reserved:
		return r.asLease(StateReserved, time.Time{}), true
	}
	return Lease{}, false
}

// touch notes that what the store keeps of ip may have changed.
func (p *leasePool) touch(ip netip.Addr) {
	if p.dirty != nil {
		p.dirty[ip] = struct{}{}
	}
}

// takeDirty returns the lines to append for the addresses touched since
// the last call.
func (p *leasePool) takeDirty() []leaseLine {
	out := make([]leaseLine, 0, len(p.dirty))
	for ip := range p.dirty {
		e := leaseLine{Lease: Lease{IP: ip.String()}, Gone: true}
		if r := p.byIP[ip]; r != nil {
			if l, ok := r.stored(); ok {
				e = leaseLine{Lease: l}
			}
		}
		out = append(out, e)
		delete(p.dirty, ip)
	}
	return out
}

func (p *leasePool) markDirty(changes []leaseLine) {
	for _, c := range changes {
		if ip, err := netip.ParseAddr(c.IP); err == nil {
			p.touch(ip)
		}
	}
}

// persisted lists everything the store keeps, by address.
func (p *leasePool) persisted() []Lease {
	recs := make([]*leaseRec, 0, len(p.byIP))
	for _, r := range p.byIP {
		if _, ok := r.stored(); ok {
			recs = append(recs, r)
		}
	}
	slices.SortFunc(recs, func(a, b *leaseRec) int { return a.ip.Compare(b.ip) })
	out := make([]Lease, len(recs))
	for i, r := range recs {
		out[i], _ = r.stored()
	}
	return out
}

// restore replaces the pool's state with leases read from the store; it
// returns why entries were dropped.
func (p *leasePool) restore(leases []Lease, now time.Time) (problems []string) {
	p.byIP = make(map[netip.Addr]*leaseRec, len(leases))
	p.byMAC = make(map[string]*leaseRec, len(leases))
	p.lastMAC = make(map[netip.Addr]string)
	p.lastIP = make(map[string]netip.Addr)
	p.declined = make(map[netip.Addr]time.Time)
	p.fresh, p.reuse, p.reuseHead, p.sweepAt, p.ended = 0, nil, 0, time.Time{}, nil
	if p.dirty != nil {
		p.dirty = make(map[netip.Addr]struct{})
	}
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
