package boot

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"

	"nodenet/internal/fsutil"
)

// renderResolvConf writes one resolv.conf for the whole node: nameserver=
// flags first (the administrator's choice), then each uplink's resolvers in
// metric order, without duplicates.
func renderResolvConf(nameservers []netip.Addr, search []string) []byte {
	var b bytes.Buffer
	b.WriteString("# written by nodenet from kernel flags and uplink leases\n")
	if len(search) > 0 {
		fmt.Fprintf(&b, "search %s\n", joinUnique(search))
	}
	seen := map[netip.Addr]bool{}
	for _, ns := range nameservers {
		if ns.IsValid() && !seen[ns] {
			seen[ns] = true
			fmt.Fprintf(&b, "nameserver %s\n", ns)
		}
	}
	return b.Bytes()
}

func joinUnique(words []string) string {
	var out []string
	for _, w := range words {
		if w != "" && !slices.Contains(out, w) {
			out = append(out, w)
		}
	}
	return strings.Join(out, " ")
}

// Resolvers are the node's DNS servers in resolv.conf order: nameserver=
// flags, then each uplink's in metric order. LAN DNS servers forward to them.
func (m *Uplinks) Resolvers() []netip.Addr {
	ns, _ := m.resolvers()
	return ns
}

func (m *Uplinks) resolvers() (ns []netip.Addr, search []string) {
	ns = append(ns, m.Config.Nameservers...)
	for _, st := range m.snapshot() {
		ns = append(ns, st.dns...)
		if st.domain != "" {
			search = append(search, st.domain)
		}
	}
	return ns, search
}

// updateResolvConf rewrites the file when what it should say changed. The
// first write is skipped while there is nothing to say, so a node without
// DNS keeps whatever resolv.conf its image shipped.
func (m *Uplinks) updateResolvConf() {
	if m.ResolvConf == "" {
		return
	}
	// The snapshot is taken under the lock too: two uplinks binding at once
	// must not let the one that read older state write last.
	m.resolvMu.Lock()
	defer m.resolvMu.Unlock()
	ns, search := m.resolvers()
	content := renderResolvConf(ns, search)
	if m.resolvWritten == nil {
		// After a restart the file may already say exactly this.
		if onDisk, err := os.ReadFile(m.ResolvConf); err == nil && bytes.Equal(onDisk, content) {
			m.resolvWritten = content
		}
	}
	if bytes.Equal(content, m.resolvWritten) || (m.resolvWritten == nil && len(ns) == 0) {
		return
	}
	if err := fsutil.WriteFileAtomic(m.ResolvConf, content, 0o644); err != nil {
		m.Log.Error("write resolv.conf", "path", m.ResolvConf, "err", err)
		return
	}
	m.resolvWritten = content
	m.Log.Info("resolv.conf written", "path", m.ResolvConf, "nameservers", len(ns))
}
