package dhcpd

import (
	"encoding/binary"
	"errors"
	"sync"
	"time"
)

const (
	dnsCacheEntries = 10000
	dnsCacheBytes   = 8 << 20
	dnsMaxTTL       = 86400    // positive answers
	dnsMaxNegTTL    = 3 * 3600 // negative answers (RFC 2308 suggests 1-3 hours)
	dnsNoSOATTL     = 30       // negative answers without an SOA to say how long
	dnsEvictSample  = 8
)

// dnsOPT is the OPT record of our answers: root name, type 41, our payload
// size, extended rcode, version and flags 0, no options.
var dnsOPT = [11]byte{0, 0, 41, dnsMaxUDP >> 8, dnsMaxUDP & 0xff}

// dnsEntry is an upstream answer as it is served to any client: question
// lower-cased, no OPT; appendTo patches ID, flags, question case and TTLs.
type dnsEntry struct {
	msg     []byte
	ttlOffs []uint16 // where each record's TTL is in msg
	ttls    []uint32 // and its value when stored
	stored  time.Time
	expires time.Time
}

// dnsCache holds forwarded answers by dnsKey, and the forwards in flight so
// identical concurrent misses share one upstream exchange.
type dnsCache struct {
	mu      sync.RWMutex
	entries map[string]*dnsEntry
	bytes   int

	flightMu sync.Mutex
	flights  map[string]*dnsFlight
}

func (c *dnsCache) get(key []byte, now time.Time) *dnsEntry {
	c.mu.RLock()
	e := c.entries[string(key)]
	c.mu.RUnlock()
	if e == nil || !now.Before(e.expires) {
		return nil
	}
	return e
}

// put stores e; when over the bounds it evicts, from a small random sample,
// the entries that expire first (expired ones included).
func (c *dnsCache) put(key string, e *dnsEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[string]*dnsEntry{}
	}
	if old := c.entries[key]; old != nil {
		c.bytes -= len(old.msg)
	}
	c.entries[key] = e
	c.bytes += len(e.msg)
	for len(c.entries) > dnsCacheEntries || c.bytes > dnsCacheBytes {
		var victim string
		var first time.Time
		n := 0
		for k, v := range c.entries {
			if n == 0 || v.expires.Before(first) {
				victim, first = k, v.expires
			}
			if n++; n == dnsEvictSample {
				break
			}
		}
		c.bytes -= len(c.entries[victim].msg)
		delete(c.entries, victim)
	}
}

// appendTo appends e as the answer to q, aged by the time since it was stored.
func (e *dnsEntry) appendTo(out []byte, q *dnsQuery, now time.Time) []byte {
	start := len(out)
	out = append(out, e.msg...)
	m := out[start:]
	binary.BigEndian.PutUint16(m, q.id)
	m[2] = 0x80 // QR, opcode QUERY, not authoritative
	if q.rd {
		m[2] |= 0x01
	}
	m[3] = 0x80 | m[3]&0x0f // RA, the stored rcode
	// The stored question is q's lower-cased, so only letters change.
	for i, c := range q.q.Name.Data[:q.q.Name.Length] {
		if c != '.' {
			m[13+i] = c
		}
	}
	age := uint32(max(now.Sub(e.stored), 0) / time.Second)
	for i, off := range e.ttlOffs {
		binary.BigEndian.PutUint32(m[off:], e.ttls[i]-min(age, e.ttls[i]))
	}
	if q.edns {
		out = append(out, dnsOPT[:]...)
		m = out[start:]
		binary.BigEndian.PutUint16(m[10:], binary.BigEndian.Uint16(m[10:])+1)
	}
	if len(m) <= q.limit {
		return out
	}
	// Too big for the client: header, question (and OPT) with TC set.
	qend := 12 + int(q.q.Name.Length) + 1 + 4
	if q.q.Name.Length == 1 {
		qend-- // the root is one zero byte
	}
	out = out[:start+qend]
	m = out[start:]
	m[2] |= 0x02
	clear(m[6:12])
	if q.edns {
		out = append(out, dnsOPT[:]...)
		out[start+11] = 1
	}
	return out
}

// findTTLs notes where each record's TTL is, so a hit only patches bytes.
func (e *dnsEntry) findTTLs() error {
	m := e.msg
	count := func(i int) int { return int(binary.BigEndian.Uint16(m[i:])) }
	off := 12
	for range count(4) {
		if off = dnsSkipName(m, off); off < 0 {
			return errors.New("bad question")
		}
		off += 4
	}
	for range count(6) + count(8) + count(10) {
		if off = dnsSkipName(m, off); off < 0 || off+10 > len(m) {
			return errors.New("bad record")
		}
		e.ttlOffs = append(e.ttlOffs, uint16(off+4))
		e.ttls = append(e.ttls, binary.BigEndian.Uint32(m[off+4:]))
		off += 10 + count(off+8)
	}
	return nil
}

// dnsSkipName returns the offset after the name at off, or -1.
func dnsSkipName(m []byte, off int) int {
	for off < len(m) {
		switch c := int(m[off]); {
		case c == 0:
			return off + 1
		case c&0xc0 == 0xc0:
			return off + 2
		default:
			off += 1 + c
		}
	}
	return -1
}
