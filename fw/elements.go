package fw

import (
	"github.com/google/nftables"
)

// elements are the contents of the sets and maps: set name -> key -> value
// (nil for a set), as the kernel stores them.
type elements map[string]map[string][]byte

// wanted is what the sets and maps hold for these LANs and forwards.
func wanted(lans map[string]LAN, fwds map[string]Forward) elements {
	e := elements{}
	for _, name := range []string{setLANs, setNAT, setGateways, mapFwdAny, mapFwdAddr} {
		e[name] = map[string][]byte{}
	}
	for _, l := range lans {
		e[setLANs][string(ifnameKey(l.Device))] = nil
		if l.NAT {
			e[setNAT][string(ifnameKey(l.Device))] = nil
		}
		if l.Gateway.Is4() {
			gw := l.Gateway.As4()
			e[setGateways][string(append(ifnameKey(l.Device), gw[:]...))] = nil
		}
	}
	for _, f := range fwds {
		set, key, val := forwardElement(f)
		e[set][string(key)] = val
	}
	return e
}

// forwardElement is f's entry: its map, key and value. Concatenated fields
// are padded to 4 bytes each, as in the registers.
func forwardElement(f Forward) (set string, key, val []byte) {
	proto := byte(6)
	if f.Proto == "udp" {
		proto = 17
	}
	ports := []byte{proto, 0, 0, 0, byte(f.HostPort >> 8), byte(f.HostPort), 0, 0}
	member := f.MemberIP.As4()
	val = append(member[:], byte(f.MemberPort>>8), byte(f.MemberPort), 0, 0)
	if f.HostIP.IsValid() {
		host := f.HostIP.As4()
		return mapFwdAddr, append(host[:], ports...), val
	}
	return mapFwdAny, ports, val
}

func ifnameKey(name string) []byte {
	b := make([]byte, 16)
	copy(b, name)
	return b
}

// diff queues, on c, the changes that turn have into want, one set at a
// time: deletions first, so a changed value is deleted and added again.
// It says whether it queued any.
func (l *layout) diff(c *nftables.Conn, have, want elements) (queued bool, err error) {
	for _, name := range l.order {
		var del, add []nftables.SetElement
		for k, v := range have[name] {
			if w, ok := want[name][k]; !ok || string(w) != string(v) {
				del = append(del, nftables.SetElement{Key: []byte(k)})
			}
		}
		for k, v := range want[name] {
			if h, ok := have[name][k]; !ok || string(h) != string(v) {
				add = append(add, nftables.SetElement{Key: []byte(k), Val: v})
			}
		}
		if len(del) > 0 {
			if err := c.SetDeleteElements(l.sets[name], del); err != nil {
				return queued, err
			}
		}
		if len(add) > 0 {
			if err := c.SetAddElements(l.sets[name], add); err != nil {
				return queued, err
			}
		}
		queued = queued || len(del)+len(add) > 0
	}
	return queued, nil
}

// count is how many elements e holds, for logs.
func (e elements) count() int {
	n := 0
	for _, s := range e {
		n += len(s)
	}
	return n
}
