package boot

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// ModuleLoader loads kernel modules the way modprobe does, from depmod's
// index, without kmod: the initramfs has no modprobe and nodenet execs no
// tools. Its fields are the seams tests fill in.
type ModuleLoader struct {
	// ModulesDir holds modules.dep (and modules.softdep, modules.alias,
	// modules.builtin) and the .ko files; "" means /lib/modules/$(uname -r).
	ModulesDir string
	// ProcModules and SysModule tell what is loaded or built in; "" means
	// /proc/modules and /sys/module.
	ProcModules, SysModule string
	// Insert loads one module file; nil means finit_module(2) on it.
	// EEXIST from it counts as success (someone loaded it meanwhile).
	Insert func(path string) error
	Log    *slog.Logger
}

// errNoModule: neither a module nor an alias of one by that name.
var errNoModule = errors.New("not in")

// ModuleStep is one module of a load plan, dependencies first.
type ModuleStep struct {
	Name string
	Path string
	// Optional marks a soft dependency (and what only it needs): modprobe
	// treats those as hints, and an alias can name a module only some CPUs
	// take (crc32c_intel needs SSE4.2), so its failure is logged, not fatal.
	Optional bool
}

// Plan returns the modules to load for name, in load order: each module's
// softdep "pre:" modules, then its modules.dep dependencies, then itself.
// Built-in modules are left out; loaded ones are not (Load skips those).
func (m *ModuleLoader) Plan(name string) ([]ModuleStep, error) {
	dir, err := m.modulesDir()
	if err != nil {
		return nil, err
	}
	ix, err := readModuleIndex(dir)
	if err != nil {
		return nil, fmt.Errorf("module index: %w", err)
	}
	mods := ix.lookup(name)
	if len(mods) == 0 {
		return nil, fmt.Errorf("module %s: %w %s", name, errNoModule, filepath.Join(dir, "modules.dep"))
	}
	p := &planner{ix: ix, log: m.log(), seen: map[string]bool{}}
	// An alias can stand for several modules; the first one is enough.
	if err := p.visit(mods[0], false); err != nil {
		return nil, err
	}
	return p.steps, nil
}

type planner struct {
	ix    *moduleIndex
	log   *slog.Logger
	seen  map[string]bool
	steps []ModuleStep
}

func (p *planner) visit(name string, optional bool) error {
	if p.seen[name] { // also ends dependency cycles
		return nil
	}
	p.seen[name] = true
	if p.ix.builtin[name] {
		return nil
	}
	file := p.ix.files[name]
	if file == "" {
		if optional {
			p.log.Warn("soft dependency not in modules.dep", "module", name)
			return nil
		}
		return fmt.Errorf("module %s: not in %s", name, filepath.Join(p.ix.dir, "modules.dep"))
	}
	for _, soft := range p.ix.softPre[name] {
		mods := p.ix.lookup(soft)
		if len(mods) == 0 {
			p.log.Warn("soft dependency names no module", "module", name, "softdep", soft)
		}
		for _, s := range mods {
			if err := p.visit(s, true); err != nil {
				return err
			}
		}
	}
	for _, dep := range p.ix.deps[name] {
		if err := p.visit(dep, optional); err != nil {
			return fmt.Errorf("module %s: %w", name, err)
		}
	}
	p.steps = append(p.steps, ModuleStep{Name: name, Path: file, Optional: optional})
	return nil
}

// Load loads name and what it needs, skipping modules already loaded or
// built in. A failed soft dependency is logged and skipped.
func (m *ModuleLoader) Load(ctx context.Context, name string) error {
	steps, err := m.Plan(name)
	if err != nil {
		return fmt.Errorf("load module %s: %w", name, err)
	}
	loaded := m.loadedModules()
	for _, s := range steps {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("load module %s: %w", name, err)
		}
		if loaded[s.Name] || m.inSysfs(s.Name) {
			continue
		}
		err := m.insert(s.Path)
		if errors.Is(err, unix.EEXIST) {
			err = nil
		}
		switch {
		case err != nil && s.Optional:
			m.log().Warn("soft dependency failed to load", "module", s.Name, "for", name, "err", err)
		case err != nil:
			return fmt.Errorf("load module %s: %s: %w", name, s.Name, err)
		default:
			m.log().Info("loaded kernel module", "module", s.Name, "for", name)
		}
	}
	return nil
}

func (m *ModuleLoader) modulesDir() (string, error) {
	if m.ModulesDir != "" {
		return m.ModulesDir, nil
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", fmt.Errorf("uname: %w", err)
	}
	return filepath.Join("/lib/modules", unix.ByteSliceToString(u.Release[:])), nil
}

// loadedModules reads the first field of every /proc/modules line; when it
// cannot be read, nothing counts as loaded and EEXIST sorts it out.
func (m *ModuleLoader) loadedModules() map[string]bool {
	loaded := map[string]bool{}
	f, err := os.Open(orDefault(m.ProcModules, "/proc/modules"))
	if err != nil {
		return loaded
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if name, _, _ := strings.Cut(sc.Text(), " "); name != "" {
			loaded[name] = true
		}
	}
	return loaded
}

// inSysfs catches built-ins missing from modules.builtin (a kernel built
// elsewhere): they have /sys/module/NAME when they have parameters.
func (m *ModuleLoader) inSysfs(name string) bool {
	_, err := os.Stat(filepath.Join(orDefault(m.SysModule, "/sys/module"), name))
	return err == nil
}

func (m *ModuleLoader) insert(path string) error {
	if m.Insert != nil {
		return m.Insert(path)
	}
	return finitModule(path)
}

func (m *ModuleLoader) log() *slog.Logger {
	if m.Log != nil {
		return m.Log
	}
	return slog.New(slog.DiscardHandler)
}

// finitModule loads an uncompressed .ko. Compressed modules are refused by
// name: Debian 12 ships .ko, and the kernel's own decompression is optional.
func finitModule(path string) error {
	for _, ext := range []string{".ko.xz", ".ko.zst", ".ko.gz"} {
		if strings.HasSuffix(path, ext) {
			return fmt.Errorf("module file %s is compressed (%s); only uncompressed .ko files can be loaded", path, ext)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("module file: %w", err)
	}
	defer f.Close()
	if err := unix.FinitModule(int(f.Fd()), "", 0); err != nil {
		return fmt.Errorf("finit_module %s: %w", path, err)
	}
	return nil
}

func orDefault(s, def string) string {
	if s != "" {
		return s
	}
	return def
}
