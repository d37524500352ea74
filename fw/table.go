package fw

import (
	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// TableName is nodenet's one table (family inet). Its chains and rules
// never change with the LANs or the forwards: those live in its sets and
// maps, so a Join or a Create only adds elements, and a packet's cost does
// not grow with the number of forwards (one hash lookup per map).
const TableName = "nodenet"

// layoutVersion is in a rule comment, so a daemon with a different layout
// rebuilds the table at start rather than keep an old one.
const layoutVersion = "v1"

// Set and map names.
const (
	setLANs     = "lan_ifs"  // ifname: every LAN's gateway device
	setNAT      = "nat_ifs"  // ifname: those of LANs with nat
	setGateways = "gateways" // ifname . ipv4_addr: each LAN device and its gateway address
	mapFwdAny   = "fwd_any"  // inet_proto . inet_service : ipv4_addr . inet_service
	mapFwdAddr  = "fwd_addr" // ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service
)

// layout is the table's sets, chains and rules, bound to one *Table.
type layout struct {
	table  *nftables.Table
	sets   map[string]*nftables.Set
	order  []string // set names in creation order
	chains []*nftables.Chain
	rules  []*nftables.Rule
}

var (
	typeForwardTo = nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetService)
	setTypes      = []struct {
		name     string
		key, val nftables.SetDatatype
		concat   bool
	}{
		{setLANs, nftables.TypeIFName, nftables.SetDatatype{}, false},
		{setNAT, nftables.TypeIFName, nftables.SetDatatype{}, false},
		{setGateways, nftables.MustConcatSetType(nftables.TypeIFName, nftables.TypeIPAddr), nftables.SetDatatype{}, true},
		{mapFwdAny, nftables.MustConcatSetType(nftables.TypeInetProto, nftables.TypeInetService), typeForwardTo, true},
		{mapFwdAddr, nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetProto, nftables.TypeInetService), typeForwardTo, true},
	}
)

func newLayout() *layout {
	l := &layout{table: &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet}, sets: map[string]*nftables.Set{}}
	for i, st := range setTypes {
		// A fixed ID: the rules created in the same batch refer to it.
		s := &nftables.Set{Table: l.table, ID: uint32(i + 1), Name: st.name, KeyType: st.key, Concatenation: st.concat}
		if st.val.Bytes > 0 {
			s.IsMap, s.DataType = true, st.val
		}
		if st.key == nftables.TypeIFName {
			s.KeyByteOrder = binaryutil.NativeEndian // a string: nft prints it as one
		}
		l.sets[st.name], l.order = s, append(l.order, st.name)
	}
	l.addChains()
	return l
}

func (l *layout) chain(name string, hook *nftables.ChainHook, prio *nftables.ChainPriority, typ nftables.ChainType) *nftables.Chain {
	c := &nftables.Chain{Name: name, Table: l.table}
	if hook != nil {
		accept := nftables.ChainPolicyAccept
		c.Hooknum, c.Priority, c.Type, c.Policy = hook, prio, typ, &accept
	}
	l.chains = append(l.chains, c)
	return c
}

func (l *layout) rule(c *nftables.Chain, comment string, exprs ...expr.Any) {
	l.rules = append(l.rules, &nftables.Rule{Table: l.table, Chain: c, Exprs: exprs,
		UserData: userdata.AppendString(nil, userdata.TypeComment, comment)})
}

// addChains lays out every chain and rule. Base chains accept by default:
// traffic that is not a LAN's is never nodenet's to judge.
func (l *layout) addChains() {
	forwards := l.chain("port_forwards", nil, nil, "")
	l.rule(forwards, "forward to a member: this address",
		append(ipv4(), loadDaddr(1), loadL4(9), loadDport(10), l.lookupTo(mapFwdAddr), dnat())...)
	l.rule(forwards, "forward to a member: any address of the node",
		append(ipv4(), loadL4(1), loadDport(9), l.lookupTo(mapFwdAny), dnat())...)

	pre := l.chain("prerouting", nftables.ChainHookPrerouting, nftables.ChainPriorityNATDest, nftables.ChainTypeNAT)
	l.rule(pre, "arriving for the node's own addresses", append(localDaddr(), jump(forwards.Name))...)
	out := l.chain("output", nftables.ChainHookOutput, nftables.ChainPriorityNATDest, nftables.ChainTypeNAT)
	l.rule(out, "sent by the node itself, localhost included", append(localDaddr(), jump(forwards.Name))...)

	post := l.chain("postrouting", nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource, nftables.ChainTypeNAT)
	l.rule(post, "forwards reached through localhost answer to the gateway",
		append(append(ctDNAT(), ipv4()...), loadSaddr(1), mask(1, []byte{255, 0, 0, 0}), eq(1, []byte{127, 0, 0, 0}), &expr.Masq{})...)
	l.rule(post, "hairpin: forwards reached from a LAN answer to its gateway",
		append(ctDNAT(), iifname(1), l.lookup(setLANs, 1, false), &expr.Masq{})...)
	l.rule(post, "egress of LANs with nat, behind the uplink address",
		iifname(1), l.lookup(setNAT, 1, false), oifname(1), l.lookup(setLANs, 1, true), &expr.Masq{})

	fwd := l.chain("forward", nftables.ChainHookForward, nftables.ChainPriorityFilter, nftables.ChainTypeFilter)
	l.rule(fwd, "port forwards are open to every LAN, as to the outside",
		append(ctDNAT(), verdict(expr.VerdictAccept))...)
	l.rule(fwd, "LANs are isolated from each other",
		iifname(1), l.lookup(setLANs, 1, false), oifname(1), l.lookup(setLANs, 1, false), verdict(expr.VerdictDrop))

	lanIn := l.chain("lan_input", nil, nil, "")
	in := l.chain("input", nftables.ChainHookInput, nftables.ChainPriorityFilter, nftables.ChainTypeFilter)
	l.rule(in, "from a LAN to the node itself", iifname(1), l.lookup(setLANs, 1, false), jump(lanIn.Name))
	l.rule(lanIn, "answers to what the node started",
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE}, mask(1, u32(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED)), neq(1, u32(0)), verdict(expr.VerdictAccept))
	l.rule(lanIn, "DHCP", append(l4(unix.IPPROTO_UDP), loadDport(1), eq(1, port(67)), verdict(expr.VerdictAccept))...)
	l.rule(lanIn, "only the member's own gateway, IPv4 only",
		append(ipv4(), iifname(1), loadDaddr(12), l.lookup(setGateways, 1, true), verdict(expr.VerdictDrop))...)
	l.rule(lanIn, "ipv6", &expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1}, neq(1, []byte{unix.NFPROTO_IPV4}), verdict(expr.VerdictDrop))
	l.rule(lanIn, "DNS over UDP", append(l4(unix.IPPROTO_UDP), loadDport(1), eq(1, port(53)), verdict(expr.VerdictAccept))...)
	l.rule(lanIn, "DNS over TCP", append(l4(unix.IPPROTO_TCP), loadDport(1), eq(1, port(53)), verdict(expr.VerdictAccept))...)
	l.rule(lanIn, "ping the gateway",
		append(l4(unix.IPPROTO_ICMP), &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1}, eq(1, []byte{8}), verdict(expr.VerdictAccept))...)
	l.rule(lanIn, "nodenet "+layoutVersion+": nothing else of the node is open to LANs", verdict(expr.VerdictDrop))
}

func (l *layout) lookup(set string, reg uint32, invert bool) *expr.Lookup {
	return &expr.Lookup{SourceRegister: reg, SetName: set, SetID: l.sets[set].ID, Invert: invert}
}

// lookupTo looks the key in registers 1.. up in a forward map and puts the
// member's address in register 1 and its port in register 9.
func (l *layout) lookupTo(m string) *expr.Lookup {
	lk := l.lookup(m, 1, false)
	lk.DestRegister, lk.IsDestRegSet = 1, true
	return lk
}

func dnat() *expr.NAT {
	return &expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 9}
}

func ipv4() []expr.Any {
	return []expr.Any{&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1}, eq(1, []byte{unix.NFPROTO_IPV4})}
}

func l4(proto byte) []expr.Any {
	return []expr.Any{&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, eq(1, []byte{proto})}
}

func localDaddr() []expr.Any {
	return []expr.Any{&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true}, eq(1, binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL))}
}

// ctDNAT matches connections whose destination was translated
// (IPS_DST_NAT).
func ctDNAT() []expr.Any {
	const ipsDstNAT = 0x20
	return []expr.Any{&expr.Ct{Register: 1, Key: expr.CtKeySTATUS}, mask(1, u32(ipsDstNAT)), neq(1, u32(0))}
}

func loadDaddr(reg uint32) *expr.Payload {
	return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4}
}

func loadSaddr(reg uint32) *expr.Payload {
	return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4}
}

func loadDport(reg uint32) *expr.Payload {
	return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2}
}

func loadL4(reg uint32) *expr.Meta  { return &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg} }
func iifname(reg uint32) *expr.Meta { return &expr.Meta{Key: expr.MetaKeyIIFNAME, Register: reg} }
func oifname(reg uint32) *expr.Meta { return &expr.Meta{Key: expr.MetaKeyOIFNAME, Register: reg} }

func mask(reg uint32, m []byte) *expr.Bitwise {
	return &expr.Bitwise{SourceRegister: reg, DestRegister: reg, Len: uint32(len(m)), Mask: m, Xor: make([]byte, len(m))}
}

func eq(reg uint32, data []byte) *expr.Cmp {
	return &expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: data}
}

func neq(reg uint32, data []byte) *expr.Cmp {
	return &expr.Cmp{Op: expr.CmpOpNeq, Register: reg, Data: data}
}

func verdict(k expr.VerdictKind) *expr.Verdict { return &expr.Verdict{Kind: k} }
func jump(chain string) *expr.Verdict          { return &expr.Verdict{Kind: expr.VerdictJump, Chain: chain} }
func u32(v uint32) []byte                      { return binaryutil.NativeEndian.PutUint32(v) }
func port(p uint16) []byte                     { return binaryutil.BigEndian.PutUint16(p) }
