package dhcpd

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// Lease.State values.
const (
	StateReserved = "reserved" // a member's reservation its client does not hold right now
	StateOffered  = "offered"
	StateBound    = "bound"
)

// Lease is one address given to a client (or reserved for a member).
type Lease struct {
	MAC      string    `json:"mac"` // lower-case aa:bb:..
	IP       string    `json:"ip"`
	Hostname string    `json:"hostname,omitempty"` // option 12 the client sent
	Expires  time.Time `json:"expires,omitzero"`   // zero for a reservation not yet requested
	Reserved bool      `json:"reserved,omitempty"` // never expires, never given to another MAC
	Member   string    `json:"member,omitempty"`   // the member's name for a reservation
	State    string    `json:"state"`              // StateReserved, StateOffered or StateBound
}

// Stats counts a LAN's addresses. Size = Reserved + Bound + Offered + Free
// + addresses declined within the last DeclineHold.
type Stats struct {
	Size          int       `json:"size"`     // the prefix minus network, broadcast and gateway
	Reserved      int       `json:"reserved"` // members' reservations, held or not
	Bound         int       `json:"bound"`    // dynamic leases in force
	Offered       int       `json:"offered"`  // dynamic addresses held for a client that has yet to request
	Free          int       `json:"free"`
	Exhausted     bool      `json:"exhausted"`               // no address left for a new client
	LastExhausted time.Time `json:"last_exhausted,omitzero"` // when a client was last turned away
}

var (
	// ErrNotInPool: an address that is not a host address of the LAN
	// (outside the prefix, or its network, broadcast or gateway address).
	ErrNotInPool = errors.New("not a host address of the LAN")
	// ErrAddressInUse: an address another MAC holds (reservation or lease).
	ErrAddressInUse = errors.New("address in use")
)

type leaseState uint8

const (
	leaseIdle    leaseState = iota // a reservation nobody holds
	leaseOffered                   // held for OfferHold, for that MAC only
	leaseBound
)

// leaseRec is the one record of an address and of a MAC: a pool holds at
// most one per address and one per MAC.
type leaseRec struct {
	ip       netip.Addr
	mac      string
	hostname string
	member   string
	reserved bool
	state    leaseState
	expires  time.Time // end of the offer hold or of the lease
}

// lapsed: nobody holds the address right now. A lapsed dynamic record still
// means "this MAC's address" until someone else needs the address.
func (r *leaseRec) lapsed(now time.Time) bool {
	return r.state == leaseIdle || !now.Before(r.expires)
}

func (r *leaseRec) lease(now time.Time) Lease {
	switch {
	case r.lapsed(now):
		return r.asLease(StateReserved, time.Time{})
	case r.state == leaseOffered:
		return r.asLease(StateOffered, r.expires)
	default:
		return r.asLease(StateBound, r.expires)
	}
}

func (r *leaseRec) asLease(state string, expires time.Time) Lease {
	return Lease{MAC: r.mac, IP: r.ip.String(), Hostname: r.hostname, Expires: expires,
		Reserved: r.reserved, Member: r.member, State: state}
}

// leasePool is the address book of one LAN. It is pure (callers pass the
// time) and not safe for concurrent use: Server locks around it.
//
// Free addresses come, in order, from a cursor over never-used addresses,
// then from a queue of freed ones (oldest first, so a client that left
// recently is the last to lose its address), then from a sweep of lapsed
// records. Nothing needs a timer and no allocation scans the whole pool.
type leasePool struct {
	first, last uint32 // host addresses, inclusive
	gateway     netip.Addr
	byIP        map[netip.Addr]*leaseRec
	byMAC       map[string]*leaseRec
	lastMAC     map[netip.Addr]string // who last held a free address, to give it back
	lastIP      map[string]netip.Addr
	declined    map[netip.Addr]time.Time // unusable until then
	fresh       uint32                   // offset from first of the next never-used candidate
	reuse       []netip.Addr             // freed addresses, oldest first, from reuseHead
	reuseHead   int
	sweepAt     time.Time               // no record or decline lapses before this
	ended       []Lease                 // bound leases that ended, for OnRelease; Server drains it
	dirty       map[netip.Addr]struct{} // addresses to write to the lease store; nil: not stored
}

// leaseNever is a sweepAt meaning "nothing can lapse".
var leaseNever = time.Unix(1<<40, 0)

func newLeasePool(prefix netip.Prefix, gateway netip.Addr) (*leasePool, error) {
	if !prefix.Addr().Is4() {
		return nil, fmt.Errorf("prefix %s: not IPv4", prefix)
	}
	if !prefix.Contains(gateway) {
		return nil, fmt.Errorf("gateway %s: not in %s", gateway, prefix)
	}
	net := poolU32(prefix.Masked().Addr())
	bcast := net | (1<<(32-prefix.Bits()) - 1)
	p := &leasePool{first: net, last: bcast, gateway: gateway}
	if prefix.Bits() <= 30 { // /31 and /32 have no network or broadcast address (RFC 3021)
		p.first, p.last = net+1, bcast-1
	}
	p.restore(nil, time.Time{})
	return p, nil
}

func poolU32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func poolAddr(u uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(u >> 24), byte(u >> 16), byte(u >> 8), byte(u)})
}

// inRange: a host address of the LAN other than the gateway.
func (p *leasePool) inRange(ip netip.Addr) bool {
	if !ip.Is4() || ip == p.gateway {
		return false
	}
	u := poolU32(ip)
	return u >= p.first && u <= p.last
}

func (p *leasePool) size() int {
	n := int(p.last - p.first + 1)
	if g := poolU32(p.gateway); g >= p.first && g <= p.last {
		n--
	}
	return n
}

// free: ip may be given to a new client now.
func (p *leasePool) free(ip netip.Addr, now time.Time) bool {
	if !p.inRange(ip) {
		return false
	}
	if until, ok := p.declined[ip]; ok && now.Before(until) {
		return false
	}
	r := p.byIP[ip]
	return r == nil || (!r.reserved && r.lapsed(now))
}

// pick chooses mac's address: its reservation or record, the address it
// last held, the one it asks for (want), then any free one.
func (p *leasePool) pick(mac string, want netip.Addr, now time.Time) (netip.Addr, bool) {
	if r := p.byMAC[mac]; r != nil {
		return r.ip, true
	}
	if ip, ok := p.lastIP[mac]; ok && p.free(ip, now) {
		return ip, true
	}
	if want.IsValid() && p.free(want, now) {
		return want, true
	}
	if ip, ok := p.nextFresh(); ok {
		return ip, true
	}
	if ip, ok := p.nextReused(now); ok {
		return ip, true
	}
	p.sweep(now)
	return p.nextReused(now)
}

func (p *leasePool) nextFresh() (netip.Addr, bool) {
	for p.fresh <= p.last-p.first {
		ip := poolAddr(p.first + p.fresh)
		p.fresh++
		_, held := p.byIP[ip]
		_, known := p.lastMAC[ip]
		_, bad := p.declined[ip]
		if ip != p.gateway && !held && !known && !bad {
			return ip, true
		}
	}
	return netip.Addr{}, false
}

func (p *leasePool) nextReused(now time.Time) (netip.Addr, bool) {
	for p.reuseHead < len(p.reuse) {
		ip := p.reuse[p.reuseHead]
		p.reuseHead++
		if p.free(ip, now) {
			return ip, true
		}
	}
	p.reuse, p.reuseHead = p.reuse[:0], 0
	return netip.Addr{}, false
}

func (p *leasePool) pushFree(ip netip.Addr) {
	if p.reuseHead > 0 && p.reuseHead >= len(p.reuse)/2 {
		p.reuse = append(p.reuse[:0], p.reuse[p.reuseHead:]...)
		p.reuseHead = 0
	}
	p.reuse = append(p.reuse, ip)
	if len(p.reuse) > 2*p.size()+64 { // stale duplicates: keep each address once
		seen := make(map[netip.Addr]bool, len(p.reuse))
		p.reuse = slices.DeleteFunc(p.reuse, func(a netip.Addr) bool {
			dup := seen[a]
			seen[a] = true
			return dup
		})
	}
}

func (p *leasePool) noteExpiry(t time.Time) {
	if t.Before(p.sweepAt) {
		p.sweepAt = t
	}
}

// sweep reclaims lapsed records and declines, at most once per lapse.
func (p *leasePool) sweep(now time.Time) {
	if now.Before(p.sweepAt) {
		return
	}
	next := leaseNever
	var lapsed []*leaseRec
	for _, r := range p.byIP {
		switch {
		case r.state == leaseIdle:
		case !r.lapsed(now):
			next = leaseMinTime(next, r.expires)
		case r.reserved:
			p.setIdle(r)
		default:
			lapsed = append(lapsed, r)
		}
	}
	slices.SortFunc(lapsed, func(a, b *leaseRec) int { return a.ip.Compare(b.ip) })
	for _, r := range lapsed {
		p.drop(r, r.state == leaseBound)
	}
	for ip, until := range p.declined {
		if now.Before(until) {
			next = leaseMinTime(next, until)
			continue
		}
		delete(p.declined, ip)
		p.pushFree(ip)
	}
	p.sweepAt = next
}

func leaseMinTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// claim makes ip mac's record. The caller has checked that ip is mac's or
// free; what was there (a lapsed record of another MAC) is dropped.
func (p *leasePool) claim(mac string, ip netip.Addr) *leaseRec {
	if r := p.byMAC[mac]; r != nil {
		if r.ip == ip {
			return r
		}
		p.drop(r, false) // the client moves: its old address is free for others
	}
	if r := p.byIP[ip]; r != nil {
		p.drop(r, r.state == leaseBound)
	}
	p.forget(ip, mac)
	r := &leaseRec{ip: ip, mac: mac}
	p.byIP[ip], p.byMAC[mac] = r, r
	return r
}

// forget drops what is remembered about ip's and mac's past.
func (p *leasePool) forget(ip netip.Addr, mac string) {
	if m, ok := p.lastMAC[ip]; ok {
		delete(p.lastMAC, ip)
		if p.lastIP[m] == ip {
			delete(p.lastIP, m)
		}
	}
	if a, ok := p.lastIP[mac]; ok {
		delete(p.lastIP, mac)
		if p.lastMAC[a] == mac {
			delete(p.lastMAC, a)
		}
	}
}

// drop removes r; remember keeps its MAC's claim on the address until
// someone else needs it.
func (p *leasePool) drop(r *leaseRec, remember bool) {
	delete(p.byIP, r.ip)
	delete(p.byMAC, r.mac)
	if _, stored := r.stored(); stored {
		p.touch(r.ip)
	}
	if r.state == leaseBound {
		p.ended = append(p.ended, r.asLease(StateBound, r.expires))
	}
	if remember && !r.reserved {
		p.forget(r.ip, r.mac)
		p.lastMAC[r.ip], p.lastIP[r.mac] = r.mac, r.ip
	}
	p.pushFree(r.ip)
}

// setIdle ends whatever a reservation's client held.
func (p *leasePool) setIdle(r *leaseRec) {
	if r.state == leaseBound {
		p.ended = append(p.ended, r.asLease(StateBound, r.expires))
		p.touch(r.ip)
	}
	r.state, r.expires = leaseIdle, time.Time{}
}

// takeEnded returns and clears the leases that ended since the last call.
func (p *leasePool) takeEnded() []Lease {
	e := p.ended
	p.ended = nil
	return e
}
