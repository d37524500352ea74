package boot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"

	"golang.org/x/sys/unix"
)

// systemMounts are the file systems nodenet needs, mounted when missing
// (in an initramfs nobody else has): /proc and /sys for itself, /dev for
// /dev/net/tun, /run for its socket and OVS's, /tmp for OVS's tools.
var systemMounts = []struct{ dir, fstype, data string }{
	{"/proc", "proc", ""},
	{"/sys", "sysfs", ""},
	{"/dev", "devtmpfs", "mode=0755"},
	{"/run", "tmpfs", "mode=0755"},
	{"/tmp", "tmpfs", "mode=1777"},
}

// PrepareSystem makes a bare initramfs fit to run in: the mounts above
// (when /proc is missing), and
// when nodenet is the system's modprobe (the image links /sbin/modprobe to
// it; there is no kmod), the drivers of the devices present and the
// modules members need before anything asks. On a full system it finds
// everything in place and changes nothing.
func PrepareSystem(ctx context.Context, log *slog.Logger) {
	// Only a bare initramfs lacks /proc. On any other system /tmp or /run
	// may well be plain directories, and a tmpfs over them would hide what
	// they hold (/run/netns, say).
	if _, err := os.Stat("/proc/self"); err != nil {
		for _, m := range systemMounts {
			if err := ensureMount(m.dir, m.fstype, m.data); err != nil {
				log.Warn("mount", "dir", m.dir, "err", err)
			}
		}
	}
	if !isModprobe() {
		return
	}
	l := &ModuleLoader{Log: log}
	n := l.Coldplug(ctx)
	for _, name := range preloadModules {
		if err := l.Load(ctx, name); err != nil {
			log.Warn("preload module", "module", name, "err", err)
		}
	}
	log.Info("kernel modules ready", "drivers_loaded", n)
}

// preloadModules are loaded up front: tun's /dev/net/tun exists only once
// the module is in (nothing asks the kernel for it by alias first).
var preloadModules = []string{"tun"}

// ensureMount mounts fstype on dir unless dir is a mount point already.
func ensureMount(dir, fstype, data string) error {
	if mounted(dir) {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	flags := uintptr(unix.MS_NOSUID)
	if fstype != "devtmpfs" { // device nodes live there
		flags |= unix.MS_NODEV
	}
	if err := unix.Mount(fstype, dir, fstype, flags, data); err != nil {
		return fmt.Errorf("mount %s on %s: %w", fstype, dir, err)
	}
	return nil
}

// mounted reports whether dir is a mount point: on another device than
// its parent, or the root itself.
func mounted(dir string) bool {
	var st, parent unix.Stat_t
	if unix.Stat(dir, &st) != nil || unix.Stat(filepath.Dir(dir), &parent) != nil {
		return false
	}
	return st.Dev != parent.Dev || st.Ino == parent.Ino
}

// isModprobe reports whether the kernel's module helper
// (/proc/sys/kernel/modprobe) is this very binary.
func isModprobe() bool {
	b, err := os.ReadFile("/proc/sys/kernel/modprobe")
	if err != nil {
		return false
	}
	helper, err := filepath.EvalSymlinks(string(trimNewline(b)))
	if err != nil {
		return false
	}
	self, err := os.Executable()
	if err != nil {
		return false
	}
	var a, s unix.Stat_t
	return unix.Stat(helper, &a) == nil && unix.Stat(self, &s) == nil && a.Dev == s.Dev && a.Ino == s.Ino
}

func trimNewline(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == 0) {
		b = b[:len(b)-1]
	}
	return b
}

// Coldplug loads the driver of every device sysfs lists (its modalias),
// as udev would at boot, and returns how many modules it loaded. Loading
// a bus driver (virtio_pci) makes new devices (virtio0) appear, so it
// goes round until a round adds nothing.
func (m *ModuleLoader) Coldplug(ctx context.Context) int {
	tried, total := map[string]bool{}, 0
	for round := 0; round < 5; round++ {
		before := len(m.loadedModules())
		for _, alias := range deviceAliases() {
			if tried[alias] {
				continue
			}
			tried[alias] = true
			if err := m.Load(ctx, alias); err != nil && !errors.Is(err, errNoModule) {
				m.log().Warn("coldplug", "modalias", alias, "err", err)
			}
		}
		added := len(m.loadedModules()) - before
		total += added
		if added == 0 {
			break
		}
	}
	return total
}

// deviceAliases are the modaliases of the devices sysfs shows.
func deviceAliases() []string {
	files, _ := filepath.Glob("/sys/bus/*/devices/*/modalias")
	var out []string
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil && len(trimNewline(b)) > 0 {
			out = append(out, string(trimNewline(b)))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
