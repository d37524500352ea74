package links

import (
	"errors"
	"fmt"
	"path"
	"runtime"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NetnsDir is where `ip netns add` keeps named namespaces.
const NetnsDir = "/run/netns"

// errNetnsSpec names the accepted forms; every refused spec says them.
var errNetnsSpec = errors.New("want NAME, " + NetnsDir + "/NAME or /proc/PID/ns/net")

// OpenNetns opens the network namespace spec names: a bare NAME (a file
// under /run/netns, as `ip netns` names it), /run/netns/NAME, or
// /proc/PID/ns/net with a numeric PID. Anything else is refused before any
// file is opened, so an API caller cannot make nodenet open arbitrary
// paths; the opened file must also really be a network namespace. It
// returns the handle, which the caller closes, and the canonical path. A
// namespace that does not exist gives an error wrapping os.ErrNotExist.
func OpenNetns(spec string) (netns.NsHandle, string, error) {
	p, err := NetnsPath(spec)
	if err != nil {
		return netns.None(), "", err
	}
	fd, err := openNsfs(p)
	if err != nil {
		return netns.None(), "", fmt.Errorf("netns %s: %w", p, err) // ENOENT is os.ErrNotExist
	}
	if err := checkNetns(fd); err != nil {
		unix.Close(fd)
		return netns.None(), "", fmt.Errorf("netns %s: %w", p, err)
	}
	return netns.NsHandle(fd), p, nil
}

// NetnsPath maps a namespace spec to the file OpenNetns would open, or
// says why the spec is refused. It touches no file.
func NetnsPath(spec string) (string, error) {
	if !strings.Contains(spec, "/") {
		if err := validNetnsName(spec); err != nil {
			return "", fmt.Errorf("netns %q: %w; %w", spec, err, errNetnsSpec)
		}
		return NetnsDir + "/" + spec, nil
	}
	// Clean first: "/run/netns/../../etc/x" must not pass as /run/netns/...
	p := path.Clean(spec)
	if name, ok := strings.CutPrefix(p, NetnsDir+"/"); ok && !strings.Contains(name, "/") {
		if validNetnsName(name) == nil {
			return p, nil
		}
	}
	if pid, ok := strings.CutPrefix(p, "/proc/"); ok {
		if pid, ok := strings.CutSuffix(pid, "/ns/net"); ok && validPid(pid) {
			return p, nil
		}
	}
	return "", fmt.Errorf("netns %q: %w", spec, errNetnsSpec)
}

// openNsfs opens p only once it is known to be a file of nsfs, where
// namespaces live. The first open is O_PATH, which reaches no driver: a
// symlink under /run/netns to a device, a FIFO or a file elsewhere is
// refused without being opened for real. The second open goes through
// /proc/self/fd, so it opens that very inode whatever p names meanwhile.
func openNsfs(p string) (int, error) {
	pfd, err := unix.Open(p, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	defer unix.Close(pfd)
	var st unix.Statfs_t
	if err := unix.Fstatfs(pfd, &st); err != nil {
		return -1, fmt.Errorf("statfs: %w", err)
	}
	if st.Type != unix.NSFS_MAGIC {
		return -1, fmt.Errorf("not a namespace: a file on filesystem type %#x, not nsfs", st.Type)
	}
	fd, err := unix.Open(fmt.Sprintf("/proc/self/fd/%d", pfd), unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return -1, fmt.Errorf("reopen: %w", err)
	}
	return fd, nil
}

// validNetnsName follows `ip netns add`: any file name but "." and "..".
func validNetnsName(name string) error {
	switch {
	case name == "":
		return errors.New("empty name")
	case name == "." || name == "..":
		return fmt.Errorf("name %q is not allowed", name)
	case len(name) > 255:
		return errors.New("name longer than 255 bytes")
	case strings.ContainsAny(name, "/\x00"):
		return errors.New("name holds '/' or NUL")
	}
	return nil
}

// validPid accepts what procfs resolves as a pid directory: decimal
// digits, no leading zero ("self" and "thread-self" are refused on purpose:
// they would name nodenet's own namespace).
func validPid(s string) bool {
	if s == "" || len(s) > 10 || s[0] == '0' {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// checkNetns refuses a file that is not a network namespace, such as a
// stray regular file under /run/netns.
func checkNetns(fd int) error {
	t, err := unix.IoctlRetInt(fd, unix.NS_GET_NSTYPE)
	if err != nil {
		return fmt.Errorf("not a namespace: %w", err)
	}
	if t != unix.CLONE_NEWNET {
		return fmt.Errorf("not a network namespace (type %#x)", t)
	}
	return nil
}

// inNS runs fn on an OS thread that has entered ns, then puts the thread
// back; netns.None() means the caller's own namespace and runs fn in
// place. fn must only make blocking syscalls: whatever it starts on another
// goroutine runs elsewhere. A thread that cannot be put back is never
// unlocked, so the runtime ends it with the goroutine instead of handing a
// thread in the wrong namespace to other code.
func inNS(ns netns.NsHandle, fn func() error) error {
	if !ns.IsOpen() {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open this thread's network namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil { // setns failed: the thread is unchanged
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter network namespace: %w", err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("return from network namespace: %w", err))
			return // still locked: the thread exits with this goroutine
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// handleAt returns a route-netlink handle whose socket lives in ns (the
// caller's namespace for netns.None()). The socket is made by inNS rather
// than netlink.NewHandleAt, whose thread switch unlocks the thread even
// when switching back failed. The caller closes the handle.
func handleAt(ns netns.NsHandle) (*netlink.Handle, error) {
	var h *netlink.Handle
	err := inNS(ns, func() error {
		var err error
		h, err = netlink.NewHandle(unix.NETLINK_ROUTE)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("netlink handle: %w", err)
	}
	return h, nil
}
