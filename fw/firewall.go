package fw

import (
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/userdata"
)

// Firewall keeps the nodenet table in step with the LANs and forwards it
// is told of. Every change is one netlink batch, applied atomically by the
// kernel; when a call returns an error, the kernel's table is as before.
type Firewall struct {
	// NetnsFd is the network namespace to work in (an open fd of it); 0
	// means the daemon's own.
	NetnsFd int
	Log     *slog.Logger

	mu   sync.Mutex
	conn *nftables.Conn
	lay  *layout
	lans map[string]LAN     // by name
	fwds map[string]Forward // by forwardID
	have elements           // what the kernel holds, as of the last batch

	batches  int   // sent, for the tests: applying the same state twice sends none
	startErr error // why the last Start failed
}

func forwardID(f Forward) string { return f.Network + "/" + f.Member + "/" + f.Key() }

// Start makes the table hold exactly these LANs and forwards: nothing is
// sent when it already does; the table is rebuilt (in one batch) when its
// layout is not this version's; otherwise only the elements that differ
// change. Other tables are never read or touched.
func (f *Firewall) Start(lans []LAN, fwds []Forward) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.startErr = f.start(lans, fwds)
	if f.startErr != nil && f.conn != nil {
		f.conn.CloseLasting()
		f.conn = nil
	}
	return f.startErr
}

func (f *Firewall) start(lans []LAN, fwds []Forward) error {
	if f.Log == nil {
		f.Log = slog.New(slog.DiscardHandler)
	}
	opts := []nftables.ConnOption{nftables.AsLasting()}
	if f.NetnsFd != 0 {
		opts = append(opts, nftables.WithNetNSFd(f.NetnsFd))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	f.conn, f.lay = c, newLayout()
	f.lans, f.fwds = map[string]LAN{}, map[string]Forward{}
	for _, l := range lans {
		f.lans[l.Name] = l
	}
	for _, fw := range fwds {
		f.fwds[forwardID(fw)] = fw
	}
	for _, w := range f.ForeignDrops() {
		f.Log.Warn("firewall: another table drops forwarded traffic", "where", w)
	}
	want := wanted(f.lans, f.fwds)
	have, same, err := f.read()
	if err != nil {
		return err
	}
	if !same {
		f.Log.Info("firewall: table built", "table", "inet "+TableName, "elements", want.count())
		return f.rebuild(want)
	}
	if err := f.apply(have, want); err != nil {
		return err
	}
	return nil
}

// Close releases the netlink socket; the table stays.
func (f *Firewall) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conn == nil {
		return nil
	}
	err := f.conn.CloseLasting()
	f.conn = nil
	return err
}

// rebuild replaces the table, whatever it holds, with the layout and want.
func (f *Firewall) rebuild(want elements) error {
	c, l := f.conn, f.lay
	c.AddTable(l.table) // so that the delete finds one
	c.DelTable(l.table)
	c.AddTable(l.table)
	for _, name := range l.order {
		if err := c.AddSet(l.sets[name], nil); err != nil {
			return fmt.Errorf("nftables set %s: %w", name, err)
		}
	}
	for _, ch := range l.chains {
		c.AddChain(ch)
	}
	for _, r := range l.rules {
		c.AddRule(r)
	}
	if _, err := l.diff(c, nil, want); err != nil {
		return fmt.Errorf("nftables elements: %w", err)
	}
	f.batches++
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: build table inet %s: %w", TableName, err)
	}
	f.have = want
	return nil
}

// apply sends the element changes from have to want in one batch; nothing
// when there are none.
func (f *Firewall) apply(have, want elements) error {
	queued, err := f.lay.diff(f.conn, have, want)
	if err != nil {
		return fmt.Errorf("nftables elements: %w", err)
	}
	if !queued {
		f.have = want
		return nil
	}
	f.batches++
	if err := f.conn.Flush(); err != nil {
		return fmt.Errorf("nftables: table inet %s: %w", TableName, err)
	}
	f.have = want
	return nil
}

// read returns the elements of the kernel's table and whether its layout
// is this version's (false as well when there is no table).
func (f *Firewall) read() (elements, bool, error) {
	c, l := f.conn, f.lay
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, false, fmt.Errorf("nftables: list tables: %w", err)
	}
	if !slices.ContainsFunc(tables, func(t *nftables.Table) bool { return t.Name == TableName }) {
		return nil, false, nil
	}
	if same, err := f.sameLayout(); err != nil || !same {
		return nil, false, err
	}
	have := elements{}
	for _, name := range l.order {
		els, err := c.GetSetElements(l.sets[name])
		if err != nil {
			return nil, false, fmt.Errorf("nftables: read set %s: %w", name, err)
		}
		have[name] = map[string][]byte{}
		for _, e := range els {
			have[name][string(e.Key)] = e.Val
		}
	}
	return have, true, nil
}

// sameLayout compares the kernel's sets, chains and rule comments with
// the layout's (the comments name every rule; the last carries the
// layout's version).
func (f *Firewall) sameLayout() (bool, error) {
	c, l := f.conn, f.lay
	sets, err := c.GetSets(l.table)
	if err != nil {
		return false, fmt.Errorf("nftables: list sets: %w", err)
	}
	var setNames []string
	for _, s := range sets {
		want, ok := l.sets[s.Name]
		if !ok || s.KeyType.Bytes != want.KeyType.Bytes || s.IsMap != want.IsMap {
			return false, nil
		}
		setNames = append(setNames, s.Name)
	}
	if len(setNames) != len(l.order) {
		return false, nil
	}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return false, fmt.Errorf("nftables: list chains: %w", err)
	}
	have := map[string][]string{}
	for _, ch := range chains {
		if ch.Table.Name != TableName {
			continue
		}
		rules, err := c.GetRules(l.table, ch)
		if err != nil {
			return false, fmt.Errorf("nftables: list rules of %s: %w", ch.Name, err)
		}
		have[ch.Name] = ruleComments(rules)
	}
	want := map[string][]string{}
	for _, ch := range l.chains {
		want[ch.Name] = nil
	}
	for _, r := range l.rules {
		want[r.Chain.Name] = append(want[r.Chain.Name], ruleComment(r))
	}
	return maps.EqualFunc(have, want, slices.Equal), nil
}

func ruleComments(rules []*nftables.Rule) []string {
	var out []string
	for _, r := range rules {
		out = append(out, ruleComment(r))
	}
	return out
}

func ruleComment(r *nftables.Rule) string {
	s, _ := userdata.GetString(r.UserData, userdata.TypeComment)
	return s
}
