package links

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"nodenet/internal/testenv"
)

func TestNetnsPath(t *testing.T) {
	for _, tc := range []struct {
		spec, want string // want "" means refused
	}{
		{"ns1", "/run/netns/ns1"},
		{"nnt-1234abcd-1", "/run/netns/nnt-1234abcd-1"},
		{"my.ns", "/run/netns/my.ns"},
		{"...", "/run/netns/..."},
		{"/run/netns/ns1", "/run/netns/ns1"},
		{"/run/netns/ns1/", "/run/netns/ns1"},
		{"//run//netns/ns1", "/run/netns/ns1"},
		{"/run/netns/./ns1", "/run/netns/ns1"},
		{"/proc/1/ns/net", "/proc/1/ns/net"},
		{"/proc/4194304/ns/net", "/proc/4194304/ns/net"},
		{"", ""},
		{".", ""},
		{"..", ""},
		{"foo/bar", ""},
		{"../x", ""},
		{"a\x00b", ""},
		{strings.Repeat("n", 256), ""},
		{"/etc/passwd", ""},
		{"/run/netns", ""},
		{"/run/netns/", ""},
		{"/run/netns/..", ""},
		{"/run/netns/../../etc/x", ""},
		{"/run/netns/a/b", ""},
		{"/run/netnsx/a", ""},
		{"/var/run/netns/ns1", ""},
		{"run/netns/ns1", ""},
		{"/proc/1/ns/../../x", ""},
		{"/proc/1/ns/../ns/net", "/proc/1/ns/net"}, // cleans to an accepted form
		{"/proc/self/ns/net", ""},
		{"/proc/thread-self/ns/net", ""},
		{"/proc/01/ns/net", ""},
		{"/proc/0/ns/net", ""},
		{"/proc/-1/ns/net", ""},
		{"/proc/12345678901/ns/net", ""},
		{"/proc/1/ns/mnt", ""},
		{"/proc/1/task/1/ns/net", ""},
		{"/proc/1/ns/net/x", ""},
	} {
		got, err := NetnsPath(tc.spec)
		if got != tc.want || (err == nil) != (tc.want != "") {
			t.Errorf("NetnsPath(%q) = %q, %v; want %q", tc.spec, got, err, tc.want)
		}
		if err != nil && !strings.Contains(err.Error(), "/proc/PID/ns/net") {
			t.Errorf("NetnsPath(%q): error %q does not say which forms are accepted", tc.spec, err)
		}
	}
}

func TestCheckNetns(t *testing.T) {
	file := filepath.Join(t.TempDir(), "ns")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		ok   bool
	}{
		{"/proc/self/ns/net", true},
		{"/proc/self/ns/uts", false},
		{file, false},
	} {
		fd, err := unix.Open(tc.path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		err = checkNetns(fd)
		unix.Close(fd)
		if (err == nil) != tc.ok {
			t.Errorf("checkNetns(%s) = %v, want ok=%v", tc.path, err, tc.ok)
		}
	}
}

// TestOpenNetns opens a test namespace in each accepted form and checks
// it is that namespace, by the inode the kernel gives it.
func TestOpenNetns(t *testing.T) {
	ns := testenv.NewNetns(t)
	// The pid is in ns once it has printed: ip execs sh after setns.
	sleep := ns.Command("sh", "-c", "echo in; exec sleep 60")
	stdout, err := sleep.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleep.Process.Kill(); sleep.Wait() })
	if _, err := bufio.NewReader(stdout).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	want := inode(t, ns.Path)
	pidPath := fmt.Sprintf("/proc/%d/ns/net", sleep.Process.Pid)
	for _, spec := range []string{ns.Name, ns.Path, pidPath} {
		h, p, err := OpenNetns(spec)
		if err != nil {
			t.Errorf("OpenNetns(%q): %v", spec, err)
			continue
		}
		var st unix.Stat_t
		if err := unix.Fstat(int(h), &st); err != nil || st.Ino != want {
			t.Errorf("OpenNetns(%q) = %s inode %d (%v), want inode %d", spec, p, st.Ino, err, want)
		}
		h.Close()
	}
	for _, spec := range []string{ns.Name + "-gone", "/proc/999999999/ns/net"} {
		h, _, err := OpenNetns(spec)
		if !errors.Is(err, os.ErrNotExist) {
			h.Close()
			t.Errorf("OpenNetns(%q) = %v, want os.ErrNotExist", spec, err)
		}
	}
	if h, _, err := OpenNetns("/etc/passwd"); err == nil || h != netns.None() {
		t.Errorf("OpenNetns(/etc/passwd) = %v, %v; want refused", h, err)
	}
}

// A symlink under /run/netns is followed only to a namespace (the
// `ln -s /proc/PID/ns/net /run/netns/x` habit keeps working); one to a
// file, a device or a directory is refused. (No FIFO here: iproute2 opens
// every entry of /run/netns, and would hang on one; see TestOpenNsfsFIFO.)
func TestOpenNetnsSymlinks(t *testing.T) {
	ns := testenv.NewNetns(t)
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := ns.Path + "-link"
	t.Cleanup(func() { os.Remove(link) })
	for _, tc := range []struct {
		target, want string // want "" = accepted
	}{
		{ns.Path, ""},
		{"/proc/self/ns/uts", "not a network namespace"},
		{file, "not a namespace: a file on filesystem type"},
		{"/dev/null", "not a namespace"},
		{"/etc", "not a namespace"},
	} {
		os.Remove(link)
		if err := os.Symlink(tc.target, link); err != nil {
			t.Fatal(err)
		}
		h, p, err := OpenNetns(filepath.Base(link))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("symlink to %s: %v", tc.target, err)
		case tc.want == "" && inodeOf(t, int(h)) != inode(t, ns.Path):
			t.Errorf("symlink to %s: opened another namespace", tc.target)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || h != netns.None()):
			t.Errorf("symlink to %s: %v, %v; want refused with %q", tc.target, h, err, tc.want)
		case tc.want != "" && p != "":
			t.Errorf("symlink to %s: refused but path %q", tc.target, p)
		}
		if err == nil {
			h.Close()
		}
	}
}

// A FIFO (reached through a symlink, as one under /run/netns would be) is
// refused without being opened: a writer blocked in open until somebody
// opens the FIFO to read is never let through.
func TestOpenNsfsFIFO(t *testing.T) {
	dir := t.TempDir()
	fifo, link := filepath.Join(dir, "fifo"), filepath.Join(dir, "link")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(fifo, link); err != nil {
		t.Fatal(err)
	}
	writerIn := make(chan error, 1)
	go func() {
		f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err == nil {
			f.Close()
		}
		writerIn <- err
	}()
	t.Cleanup(func() { // let a still blocked writer go
		if f, err := os.OpenFile(fifo, os.O_RDONLY|unix.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
	})
	for _, p := range []string{fifo, link} {
		if fd, err := openNsfs(p); err == nil || !strings.Contains(err.Error(), "not a namespace") {
			unix.Close(fd)
			t.Errorf("openNsfs(%s) = %d, %v; want refused", p, fd, err)
		}
	}
	select {
	case err := <-writerIn:
		t.Errorf("the FIFO was opened for reading (its writer got in: %v)", err)
	case <-time.After(100 * time.Millisecond):
	}
}

func inodeOf(t *testing.T, fd int) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// TestInNSThreadsStayHome runs many namespace calls at once and then checks
// that every thread of the test process is still in its own namespace.
func TestInNSThreadsStayHome(t *testing.T) {
	ns := testenv.NewNetns(t)
	testenv.Veth(t, ns, "nnth0", ns, "nnth1")
	h := openNS(t, ns)
	var wg sync.WaitGroup
	errs := make(chan error, 64*3)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The key and link exist only in ns: success means the call ran there.
			_, err := Sysctl(h, "net/ipv4/conf/nnth0/arp_ignore")
			errs <- err
			_, err = TxChecksum(h, "nnth0")
			errs <- err
			_, err = LinkInNS(h, "nnth0")
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	checkThreadsHome(t)
}

// TestInNSBadHandle: a handle that is no namespace fails cleanly, without
// running fn and without moving any thread.
func TestInNSBadHandle(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "ns")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ran := false
	err = inNS(netns.NsHandle(f.Fd()), func() error { ran = true; return nil })
	if err == nil || ran {
		t.Errorf("inNS(regular file) = %v, ran %v; want an error and fn not run", err, ran)
	}
	if _, err := LinkInNS(netns.NsHandle(f.Fd()), "lo"); err == nil {
		t.Error("LinkInNS(regular file) succeeded")
	}
	checkThreadsHome(t)
}

// checkThreadsHome fails the test if a thread of this process is in a
// network namespace other than the process's (its main thread's) own.
func checkThreadsHome(t *testing.T) {
	t.Helper()
	home := inode(t, fmt.Sprintf("/proc/%d/ns/net", os.Getpid()))
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		var st unix.Stat_t
		if err := unix.Stat("/proc/self/task/"+task.Name()+"/ns/net", &st); err != nil {
			continue // the thread exited meanwhile
		}
		if st.Ino != home {
			t.Errorf("thread %s is in network namespace %d, not the process's %d", task.Name(), st.Ino, home)
		}
	}
}

// FuzzNetnsPath: whatever an API caller sends as a netns, an accepted
// spec maps to a clean path of one of the two accepted forms.
func FuzzNetnsPath(f *testing.F) {
	for _, s := range []string{"ns1", "/run/netns/ns1", "/proc/1/ns/net", "/run/netns/../../etc/x", "/proc/1/ns/../../x", ".."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		p, err := NetnsPath(spec)
		if err != nil {
			return
		}
		if filepath.Clean(p) != p {
			t.Fatalf("NetnsPath(%q) = %q, not clean", spec, p)
		}
		if name, ok := strings.CutPrefix(p, NetnsDir+"/"); ok && name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\x00") {
			return
		}
		pid, ok := strings.CutPrefix(p, "/proc/")
		pid, ok2 := strings.CutSuffix(pid, "/ns/net")
		if !ok || !ok2 || !validPid(pid) {
			t.Fatalf("NetnsPath(%q) = %q, neither %s/NAME nor /proc/PID/ns/net", spec, p, NetnsDir)
		}
	})
}
