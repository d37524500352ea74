package fw

import (
	"fmt"

	"github.com/google/nftables"
)

// Status is the firewall as GET /v1/status reports it.
type Status struct {
	Table    string   `json:"table"`
	Started  bool     `json:"started"`
	LANs     int      `json:"lans"`
	Forwards int      `json:"forwards"`
	Warnings []string `json:"warnings,omitempty"`
}

// Status reports the firewall and what other tables would do to the
// traffic it lets through.
func (f *Firewall) Status() Status {
	f.mu.Lock()
	st := Status{Table: "inet " + TableName, Started: f.conn != nil, LANs: len(f.lans), Forwards: len(f.fwds)}
	f.mu.Unlock()
	st.Warnings = f.ForeignDrops()
	return st
}

// ForeignDrops names the base chains of other tables (iptables-nft's
// among them) that drop forwarded packets by default: an accept in
// nodenet's table does not overrule them, so members' egress and port
// forwards would die there. nftables cannot see iptables-legacy's tables.
func (f *Firewall) ForeignDrops() []string {
	var opts []nftables.ConnOption
	if f.NetnsFd != 0 {
		opts = append(opts, nftables.WithNetNSFd(f.NetnsFd))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return []string{fmt.Sprintf("cannot read the other nftables tables: %v", err)}
	}
	chains, err := c.ListChains()
	if err != nil {
		return []string{fmt.Sprintf("cannot read the other nftables tables: %v", err)}
	}
	var out []string
	for _, ch := range chains {
		if ch.Table.Name == TableName && ch.Table.Family == nftables.TableFamilyINet {
			continue
		}
		if ch.Hooknum == nil || *ch.Hooknum != *nftables.ChainHookForward || ch.Policy == nil || *ch.Policy != nftables.ChainPolicyDrop {
			continue
		}
		if ch.Table.Family == nftables.TableFamilyIPv6 {
			continue // LANs are IPv4
		}
		out = append(out, fmt.Sprintf("table %s %s, chain %s: policy drop on forwarded traffic; LAN egress and port forwards are dropped there unless it accepts them",
			familyName(ch.Table.Family), ch.Table.Name, ch.Name))
	}
	return out
}

func familyName(f nftables.TableFamily) string {
	switch f {
	case nftables.TableFamilyINet:
		return "inet"
	case nftables.TableFamilyIPv4:
		return "ip"
	case nftables.TableFamilyIPv6:
		return "ip6"
	case nftables.TableFamilyBridge:
		return "bridge"
	}
	return fmt.Sprint(int(f))
}
