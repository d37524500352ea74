package testenv

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Prefix starts the name of every namespace NewNetns makes, so SweepStale
// (and `make clean-netns`) can find what a crashed run left behind.
const Prefix = "nnt-"

var netnsSeq atomic.Uint32

// Netns is a named network namespace (`ip netns add`) owned by one test.
type Netns struct {
	Name string // as `ip netns` knows it
	Path string // /run/netns/Name, for setns or a JoinOptions netns
}

// NewNetns makes a fresh namespace with lo up; the test's cleanup kills
// every process still inside it and deletes it, whether the test passed or not.
func NewNetns(t testing.TB) *Netns {
	t.Helper()
	Require(t)
	h := fnv.New32a()
	fmt.Fprintf(h, "%d/%s", os.Getpid(), t.Name())
	name := fmt.Sprintf("%s%08x-%d", Prefix, h.Sum32(), netnsSeq.Add(1))
	if out, err := ipCmd("netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	n := &Netns{Name: name, Path: "/run/netns/" + name}
	t.Cleanup(func() {
		if err := deleteNetns(name); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	if out, err := ipCmd("-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("netns %s: lo up: %v: %s", name, err, out)
	}
	return n
}

// String returns the namespace name, for messages.
func (n *Netns) String() string { return n.Name }

// Command returns an unstarted `ip netns exec NAME args...`. ip execs the
// program, so the command's pid is the program's pid.
func (n *Netns) Command(args ...string) *exec.Cmd {
	return ipCmd(append([]string{"netns", "exec", n.Name}, args...)...)
}

// Output runs args inside the namespace and returns its stdout; the error
// carries stderr.
func (n *Netns) Output(args ...string) (string, error) {
	cmd := n.Command(args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("netns %s: %s: %w\nstdout:\n%s\nstderr:\n%s",
			n.Name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// Run is Output that fails the test on error.
func (n *Netns) Run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := n.Output(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// IP runs `ip -n NAME args...` and fails the test on error; it needs no
// mount namespace, unlike Run("ip", ...).
func (n *Netns) IP(t testing.TB, args ...string) string {
	t.Helper()
	cmd := ipCmd(append([]string{"-n", n.Name}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("ip -n %s %s: %v\n%s%s", n.Name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// Sysctl writes a sysctl of this namespace, e.g.
// Sysctl(t, "net/ipv6/conf/all/disable_ipv6", "1") or "net.ipv4.ip_forward"
// (use the slash form when an interface name holds a dot).
func (n *Netns) Sysctl(t testing.TB, key, value string) {
	t.Helper()
	key = strings.TrimPrefix(key, "/proc/sys/")
	if !strings.Contains(key, "/") {
		key = strings.ReplaceAll(key, ".", "/") // sysctl(8) spelling
	}
	// Through sh because the write must happen inside the namespace: /proc/sys/net is per netns.
	n.Run(t, "sh", "-c", `printf '%s\n' "$1" > "/proc/sys/$2"`, "sh", value, key)
}

// DisableIPv6 turns IPv6 off for every current and future link, which
// keeps link-local chatter (and DAD delays) out of tests that do not need it.
func (n *Netns) DisableIPv6(t testing.TB) {
	t.Helper()
	n.Sysctl(t, "net/ipv6/conf/all/disable_ipv6", "1")
	n.Sysctl(t, "net/ipv6/conf/default/disable_ipv6", "1")
}

// DisableDAD keeps IPv6 on but skips duplicate address detection, so
// link-local addresses are usable at once.
func (n *Netns) DisableDAD(t testing.TB) {
	t.Helper()
	n.Sysctl(t, "net/ipv6/conf/all/accept_dad", "0")
	n.Sysctl(t, "net/ipv6/conf/default/accept_dad", "0")
}

// Pids lists the processes whose network namespace is this one.
func (n *Netns) Pids() ([]int, error) { return netnsPids(n.Name) }

func netnsPids(name string) ([]int, error) {
	out, err := ipCmd("netns", "pids", name).Output()
	if err != nil {
		return nil, fmt.Errorf("ip netns pids %s: %w", name, err)
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// deleteNetns kills what runs inside name, waits (bounded) for it to go so
// the namespace's links really disappear, and deletes the name.
func deleteNetns(name string) error {
	for range 50 {
		pids, err := netnsPids(name)
		if err != nil || len(pids) == 0 {
			break
		}
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if out, err := ipCmd("netns", "delete", name).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns delete %s: %v: %s", name, err, out)
	}
	return nil
}

// SweepStale deletes every namespace named with Prefix, killing what runs
// in it: the leftovers of crashed runs. Nothing calls it automatically,
// since a concurrent test run's namespaces look the same.
func SweepStale() error {
	names, err := ListNetns()
	if err != nil {
		return err
	}
	var errs []string
	for _, name := range names {
		if !strings.HasPrefix(name, Prefix) {
			continue
		}
		if err := deleteNetns(name); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("sweep stale netns: %s", strings.Join(errs, "; "))
	}
	return nil
}

// ListNetns returns the names `ip netns list` shows.
func ListNetns() ([]string, error) {
	out, err := ipCmd("netns", "list").Output()
	if err != nil {
		return nil, fmt.Errorf("ip netns list: %w", err)
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0]) // "name (id: 3)"
		}
	}
	return names, nil
}

func ipCmd(args ...string) *exec.Cmd {
	ip, err := lookTool("ip")
	if err != nil {
		ip = "ip"
	}
	return exec.Command(ip, args...)
}
