package boot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// A cut of Debian 12's depmod output for openvswitch (libcrc32c's soft
// dependency is the alias crc32c, which two modules provide).
var fakeModules = map[string]string{
	"modules.dep": `kernel/net/openvswitch/openvswitch.ko: kernel/net/nsh/nsh.ko kernel/net/netfilter/nf_conncount.ko kernel/net/netfilter/nf_nat.ko kernel/net/netfilter/nf_conntrack.ko kernel/net/ipv6/netfilter/nf_defrag_ipv6.ko kernel/net/ipv4/netfilter/nf_defrag_ipv4.ko kernel/lib/libcrc32c.ko
kernel/net/nsh/nsh.ko:
kernel/net/netfilter/nf_conncount.ko: kernel/net/netfilter/nf_conntrack.ko kernel/net/ipv6/netfilter/nf_defrag_ipv6.ko kernel/net/ipv4/netfilter/nf_defrag_ipv4.ko kernel/lib/libcrc32c.ko
kernel/net/netfilter/nf_nat.ko: kernel/net/netfilter/nf_conntrack.ko kernel/net/ipv6/netfilter/nf_defrag_ipv6.ko kernel/net/ipv4/netfilter/nf_defrag_ipv4.ko kernel/lib/libcrc32c.ko
kernel/net/netfilter/nf_conntrack.ko: kernel/net/ipv6/netfilter/nf_defrag_ipv6.ko kernel/net/ipv4/netfilter/nf_defrag_ipv4.ko kernel/lib/libcrc32c.ko
kernel/net/ipv6/netfilter/nf_defrag_ipv6.ko:
kernel/net/ipv4/netfilter/nf_defrag_ipv4.ko:
kernel/lib/libcrc32c.ko:
kernel/crypto/crc32c_generic.ko:
kernel/arch/x86/crypto/crc32c-intel.ko:
kernel/drivers/net/vxlan/vxlan.ko: kernel/net/ipv4/udp_tunnel.ko kernel/net/ipv6/ip6_udp_tunnel.ko
kernel/net/ipv6/ip6_udp_tunnel.ko:
kernel/drivers/net/tun.ko.xz:
kernel/net/broken/broken.ko: kernel/net/gone/gone.ko
`,
	"modules.softdep": `# Soft dependencies extracted from modules themselves.
softdep libcrc32c pre: crc32c
softdep nf_conntrack post: nf_conntrack_helper
softdep vxlan pre: nothing_provides_this
`,
	"modules.alias": `# Aliases extracted from modules themselves.
alias crypto-crc32c crc32c_generic
alias crc32c crc32c_generic
alias crypto-crc32c crc32c_intel
alias crc32c crc32c_intel
alias cpu:type:x86,ven*fam*mod*:feature:*0094* crc32c_intel
alias net-pf-16-proto-16-family-ovs_datapath openvswitch
alias net-pf-16-proto-16-family-ovs_* openvswitch
`,
	"modules.builtin": "kernel/net/ipv4/udp_tunnel.ko\n",
}

// fakeLoader returns a loader over a fake modules tree whose Insert
// records the module names it is asked to load.
func fakeLoader(t *testing.T) (*ModuleLoader, *[]string) {
	t.Helper()
	dir := t.TempDir()
	for name, text := range fakeModules {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, line := range strings.Split(fakeModules["modules.dep"], "\n") {
		if file, _, ok := strings.Cut(line, ":"); ok {
			os.MkdirAll(filepath.Join(dir, filepath.Dir(file)), 0o755)
			os.WriteFile(filepath.Join(dir, file), []byte("not really ELF"), 0o644)
		}
	}
	sys := filepath.Join(dir, "sys-module")
	os.Mkdir(sys, 0o755)
	proc := filepath.Join(dir, "proc-modules")
	os.WriteFile(proc, nil, 0o644)
	var inserted []string
	m := &ModuleLoader{ModulesDir: dir, ProcModules: proc, SysModule: sys,
		Insert: func(path string) error {
			if _, err := os.Stat(path); err != nil {
				return err
			}
			inserted = append(inserted, moduleName(path))
			return nil
		}}
	return m, &inserted
}

func TestModulePlanOrder(t *testing.T) {
	m, _ := fakeLoader(t)
	tests := []struct {
		name string
		want []string // "*" marks an optional (soft) step
	}{
		{"openvswitch", []string{"nsh", "nf_defrag_ipv6", "nf_defrag_ipv4", "crc32c_generic*", "crc32c_intel*",
			"libcrc32c", "nf_conntrack", "nf_conncount", "nf_nat", "openvswitch"}},
		{"net-pf-16-proto-16-family-ovs_datapath", []string{"nsh", "nf_defrag_ipv6", "nf_defrag_ipv4",
			"crc32c_generic*", "crc32c_intel*", "libcrc32c", "nf_conntrack", "nf_conncount", "nf_nat", "openvswitch"}},
		{"libcrc32c", []string{"crc32c_generic*", "crc32c_intel*", "libcrc32c"}},
		{"crc32c-intel", []string{"crc32c_intel"}},
		{"crc32c", []string{"crc32c_generic"}}, // an alias: its first module is enough
		// udp_tunnel is built in; the softdep naming nothing is skipped.
		{"vxlan", []string{"ip6_udp_tunnel", "vxlan"}},
		{"udp_tunnel", nil},
	}
	for _, tt := range tests {
		steps, err := m.Plan(tt.name)
		if err != nil {
			t.Errorf("Plan(%s): %v", tt.name, err)
			continue
		}
		var got []string
		for _, s := range steps {
			name := s.Name
			if s.Optional {
				name += "*"
			}
			got = append(got, name)
			if !strings.HasPrefix(s.Path, m.ModulesDir+"/kernel/") {
				t.Errorf("Plan(%s): %s path %s", tt.name, s.Name, s.Path)
			}
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("Plan(%s)\n got %v\nwant %v", tt.name, got, tt.want)
		}
	}
}

// TestModulePlanDepsFirst checks the order against modules.dep itself:
// every dependency comes before the module needing it.
func TestModulePlanDepsFirst(t *testing.T) {
	m, _ := fakeLoader(t)
	ix, err := readModuleIndex(m.ModulesDir)
	if err != nil {
		t.Fatal(err)
	}
	steps, err := m.Plan("openvswitch")
	if err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	for i, s := range steps {
		pos[s.Name] = i
	}
	for _, s := range steps {
		for _, d := range ix.deps[s.Name] {
			if pos[d] >= pos[s.Name] {
				t.Errorf("%s (step %d) before its dependency %s (step %d)", s.Name, pos[s.Name], d, pos[d])
			}
		}
	}
}

func TestModuleLoadSkipsLoadedAndBuiltin(t *testing.T) {
	m, inserted := fakeLoader(t)
	os.WriteFile(m.ProcModules, []byte("nf_conntrack 176128 3 nf_nat,nf_conncount, Live 0x0000000000000000\n"+
		"libcrc32c 16384 2 nf_conntrack, Live 0x0000000000000000\n"), 0o644)
	os.Mkdir(filepath.Join(m.SysModule, "nsh"), 0o755) // built in without a modules.builtin line
	if err := m.Load(context.Background(), "openvswitch"); err != nil {
		t.Fatal(err)
	}
	want := []string{"nf_defrag_ipv6", "nf_defrag_ipv4", "crc32c_generic", "crc32c_intel", "nf_conncount", "nf_nat", "openvswitch"}
	if !slices.Equal(*inserted, want) {
		t.Errorf("inserted\n got %v\nwant %v", *inserted, want)
	}
}

func TestModuleLoadEEXISTIsSuccess(t *testing.T) {
	m, _ := fakeLoader(t)
	var n int
	m.Insert = func(path string) error {
		n++
		return fmt.Errorf("finit_module %s: %w", path, unix.EEXIST)
	}
	if err := m.Load(context.Background(), "vxlan"); err != nil {
		t.Fatalf("Load: %v", err)
	}
	if n != 2 {
		t.Errorf("%d inserts, want 2", n)
	}
}

func TestModuleLoadErrors(t *testing.T) {
	t.Run("unknown module", func(t *testing.T) {
		m, inserted := fakeLoader(t)
		err := m.Load(context.Background(), "nope")
		if err == nil || !strings.Contains(err.Error(), "nope") || !strings.Contains(err.Error(), "modules.dep") {
			t.Errorf("Load(nope) = %v, want an error naming nope and modules.dep", err)
		}
		if len(*inserted) != 0 {
			t.Errorf("inserted %v", *inserted)
		}
	})
	t.Run("dependency not in modules.dep", func(t *testing.T) {
		m, inserted := fakeLoader(t)
		err := m.Load(context.Background(), "broken")
		if err == nil || !strings.Contains(err.Error(), "module broken: module gone: not in") {
			t.Errorf("Load(broken) = %v", err)
		}
		if len(*inserted) != 0 {
			t.Errorf("inserted %v before failing", *inserted)
		}
	})
	t.Run("no modules.dep", func(t *testing.T) {
		m := &ModuleLoader{ModulesDir: filepath.Join(t.TempDir(), "6.1.0-99-amd64")}
		err := m.Load(context.Background(), "openvswitch")
		if err == nil || !strings.Contains(err.Error(), "6.1.0-99-amd64/modules.dep") || !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Load = %v", err)
		}
	})
	t.Run("hard dependency fails", func(t *testing.T) {
		m, _ := fakeLoader(t)
		var inserted []string
		m.Insert = func(path string) error {
			inserted = append(inserted, moduleName(path))
			if moduleName(path) == "nf_conntrack" {
				return unix.ENOEXEC
			}
			return nil
		}
		err := m.Load(context.Background(), "openvswitch")
		if err == nil || !strings.Contains(err.Error(), "load module openvswitch: nf_conntrack:") || !errors.Is(err, unix.ENOEXEC) {
			t.Errorf("Load = %v", err)
		}
		if last := inserted[len(inserted)-1]; last != "nf_conntrack" {
			t.Errorf("went on after nf_conntrack failed: %v", inserted)
		}
	})
	t.Run("soft dependency fails", func(t *testing.T) {
		m, _ := fakeLoader(t)
		var inserted []string
		m.Insert = func(path string) error {
			if moduleName(path) == "crc32c_intel" {
				return unix.ENODEV // a CPU without SSE4.2
			}
			inserted = append(inserted, moduleName(path))
			return nil
		}
		if err := m.Load(context.Background(), "libcrc32c"); err != nil {
			t.Fatalf("Load = %v", err)
		}
		if want := []string{"crc32c_generic", "libcrc32c"}; !slices.Equal(inserted, want) {
			t.Errorf("inserted %v, want %v", inserted, want)
		}
	})
	t.Run("canceled", func(t *testing.T) {
		m, inserted := fakeLoader(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := m.Load(ctx, "openvswitch"); !errors.Is(err, context.Canceled) {
			t.Errorf("Load = %v", err)
		}
		if len(*inserted) != 0 {
			t.Errorf("inserted %v", *inserted)
		}
	})
}

func TestFinitModuleRefusesCompressed(t *testing.T) {
	m, _ := fakeLoader(t)
	m.Insert = nil // the real loader: it must refuse before any syscall
	err := m.Load(context.Background(), "tun")
	if err == nil || !strings.Contains(err.Error(), "kernel/drivers/net/tun.ko.xz is compressed") {
		t.Errorf("Load(tun) = %v", err)
	}
}
