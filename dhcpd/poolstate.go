package dhcpd

import (
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// grantable: a REQUEST from mac for ip may be ACKed. A client that has a
// reservation or a lease in force elsewhere is refused any other address,
// and so is one selecting an offer of ours for another address.
func (p *leasePool) grantable(mac string, ip netip.Addr, now time.Time, selecting bool) bool {
	if r := p.byMAC[mac]; r != nil {
		if r.ip == ip {
			return true
		}
		if selecting || r.reserved || (r.state == leaseBound && !r.lapsed(now)) {
			return false
		}
	}
	return p.free(ip, now)
}

// offer holds ip (from pick) for mac until then; a lease in force stays bound.
func (p *leasePool) offer(mac string, ip netip.Addr, hostname string, until, now time.Time) {
	r := p.claim(mac, ip)
	if hostname != "" {
		r.hostname = hostname
	}
	if r.state == leaseBound && !r.lapsed(now) {
		return
	}
	p.setIdle(r)
	r.state, r.expires = leaseOffered, until
	p.noteExpiry(until)
}

// bind gives ip (grantable) to mac until then; renewed reports that the
// client already held it, so nothing new is worth an Info line.
func (p *leasePool) bind(mac string, ip netip.Addr, hostname string, until, now time.Time) (r *leaseRec, renewed bool) {
	r = p.claim(mac, ip)
	renewed = r.state == leaseBound && !r.lapsed(now)
	if hostname != "" {
		r.hostname = hostname
	}
	r.state, r.expires = leaseBound, until
	p.noteExpiry(until)
	p.touch(ip)
	return r, renewed
}

// release ends mac's lease on ip; it reports whether there was one.
func (p *leasePool) release(mac string, ip netip.Addr) bool {
	r := p.byMAC[mac]
	if r == nil || r.ip != ip || r.state == leaseIdle {
		return false
	}
	if r.reserved {
		p.setIdle(r)
	} else {
		p.drop(r, true)
	}
	return true
}

// decline ends mac's lease on ip because another host answers on it; a
// dynamic address is kept out of the pool until then.
func (p *leasePool) decline(mac string, ip netip.Addr, until time.Time) bool {
	r := p.byMAC[mac]
	if r == nil || r.ip != ip || r.state == leaseIdle {
		return false
	}
	if r.reserved { // only the member may use it: nothing to move out of the way
		p.setIdle(r)
		return true
	}
	p.drop(r, false)
	p.declined[ip] = until
	p.noteExpiry(until)
	return true
}

// forgetOffer drops what mac was offered: it chose another server.
func (p *leasePool) forgetOffer(mac string) {
	r := p.byMAC[mac]
	if r == nil || r.state != leaseOffered {
		return
	}
	if r.reserved {
		p.setIdle(r)
	} else {
		p.drop(r, false)
	}
}

// reserve makes ip mac's for good. An offer or lapsed lease of another MAC
// gives way; mac's own other record (reservation or lease) is dropped, so
// its client is NAKed on renewal and comes back for ip.
func (p *leasePool) reserve(member, mac string, ip netip.Addr, now time.Time) (changed bool, err error) {
	if !p.inRange(ip) {
		return false, ErrNotInPool
	}
	if r := p.byIP[ip]; r != nil && r.mac != mac {
		if r.reserved {
			return false, fmt.Errorf("reserved for %s (%s): %w", r.member, r.mac, ErrAddressInUse)
		}
		if r.state == leaseBound && !r.lapsed(now) {
			return false, fmt.Errorf("leased to %s: %w", r.mac, ErrAddressInUse)
		}
		p.drop(r, false)
	}
	if r := p.byMAC[mac]; r != nil {
		if r.ip == ip {
			changed = !r.reserved || r.member != member
			r.reserved, r.member = true, member
			p.touch(ip)
			return changed, nil
		}
		p.drop(r, false)
	}
	delete(p.declined, ip)
	p.forget(ip, mac)
	r := &leaseRec{ip: ip, mac: mac, member: member, reserved: true}
	p.byIP[ip], p.byMAC[mac] = r, r
	p.touch(ip)
	return true, nil
}

// unreserve drops mac's reservation; it reports whether there was one.
func (p *leasePool) unreserve(mac string) bool {
	r := p.byMAC[mac]
	if r == nil || !r.reserved {
		return false
	}
	p.drop(r, false)
	return true
}

// leases lists reservations and the offers and leases in force, by address.
func (p *leasePool) leases(now time.Time) []Lease {
	recs := make([]*leaseRec, 0, len(p.byIP))
	for _, r := range p.byIP {
		if r.reserved || !r.lapsed(now) {
			recs = append(recs, r)
		}
	}
	slices.SortFunc(recs, func(a, b *leaseRec) int { return a.ip.Compare(b.ip) })
	out := make([]Lease, len(recs))
	for i, r := range recs {
		out[i] = r.lease(now)
	}
	return out
}

func (p *leasePool) stats(now time.Time) Stats {
	st := Stats{Size: p.size()}
	for _, r := range p.byIP {
		switch {
		case r.reserved:
			st.Reserved++
		case r.lapsed(now):
		case r.state == leaseOffered:
			st.Offered++
		default:
			st.Bound++
		}
	}
	declined := 0
	for _, until := range p.declined {
		if now.Before(until) {
			declined++
		}
	}
	st.Free = max(0, st.Size-st.Reserved-st.Bound-st.Offered-declined)
	st.Exhausted = st.Free == 0
	return st
}
