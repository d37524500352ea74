package testenv

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// DnsmasqOptions describe one dnsmasq DHCP server on one interface.
type DnsmasqOptions struct {
	Interface  string // the server's link, e.g. the peer end of a Veth
	ServerAddr string // CIDR, added to Interface by StartDnsmasq, e.g. "10.77.0.1/24"
	// RangeStart and RangeEnd bound the pool; empty means .100 to .200 of
	// ServerAddr's network (which must then be a /24 or larger).
	RangeStart, RangeEnd string
	Lease                string   // lease time; default "2m", dnsmasq's minimum
	Router               string   // option 3; empty leaves dnsmasq's default (its own address)
	DNS                  []string // option 6; empty sends none unless ServeDNS
	ServeDNS             bool     // answer DNS on ServerAddr:53 (else --port=0)
	// PingCheck keeps dnsmasq's ICMP probe of an address before offering
	// it, which delays every first offer by 3 s; off by default (--no-ping).
	PingCheck bool
	Extra     []string // raw extra arguments, e.g. "--dhcp-authoritative", "--address=/upstream.test/10.77.0.53"
}

// Dnsmasq is a running dnsmasq inside a test namespace. Its leases and log
// survive Restart, so a test can tell a renewing client (REQUEST) from one
// that starts over (DISCOVER).
type Dnsmasq struct {
	NS        *Netns
	Options   DnsmasqOptions
	ServerIP  string // ServerAddr without the prefix
	Dir       string // holds leases, pid and log
	LeaseFile string
	LogFile   string

	args []string
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

var dnsmasqReady = regexp.MustCompile(`DHCP, IP range`)

// StartDnsmasq assigns o.ServerAddr to o.Interface in ns, starts dnsmasq
// there and waits until it serves DHCP. The test's cleanup stops it and,
// when the test failed, logs dnsmasq's log.
func StartDnsmasq(t testing.TB, ns *Netns, o DnsmasqOptions) *Dnsmasq {
	t.Helper()
	Require(t, "dnsmasq")
	prefix, err := netip.ParsePrefix(o.ServerAddr)
	if err != nil || !prefix.Addr().Is4() {
		t.Fatalf("dnsmasq: ServerAddr %q: want an IPv4 CIDR such as 10.77.0.1/24", o.ServerAddr)
	}
	if o.Interface == "" {
		t.Fatal("dnsmasq: Interface is empty")
	}
	if o.Lease == "" {
		o.Lease = "2m"
	}
	if o.RangeStart == "" || o.RangeEnd == "" {
		if prefix.Bits() > 24 {
			t.Fatalf("dnsmasq: ServerAddr %s is smaller than a /24; set RangeStart and RangeEnd", o.ServerAddr)
		}
		base := prefix.Masked().Addr().As4()
		base[3] = 100
		o.RangeStart = netip.AddrFrom4(base).String()
		base[3] = 200
		o.RangeEnd = netip.AddrFrom4(base).String()
	}
	mask := net.IP(net.CIDRMask(prefix.Bits(), 32)).String()

	dir := t.TempDir()
	d := &Dnsmasq{
		NS:        ns,
		Options:   o,
		ServerIP:  prefix.Addr().String(),
		Dir:       dir,
		LeaseFile: filepath.Join(dir, "leases"),
		LogFile:   filepath.Join(dir, "dnsmasq.log"),
	}
	d.args = []string{mustTool(t, "dnsmasq"),
		"--no-daemon", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
		"--bind-interfaces", "--interface=" + o.Interface, "--except-interface=lo",
		"--dhcp-range=" + strings.Join([]string{o.RangeStart, o.RangeEnd, mask, o.Lease}, ","),
		"--log-dhcp", "--log-facility=-",
		"--dhcp-leasefile=" + d.LeaseFile,
		"--pid-file=" + filepath.Join(dir, "pid"),
	}
	if !o.ServeDNS {
		d.args = append(d.args, "--port=0")
	}
	if !o.PingCheck {
		d.args = append(d.args, "--no-ping")
	}
	if o.Router != "" {
		d.args = append(d.args, "--dhcp-option=option:router,"+o.Router)
	}
	if len(o.DNS) > 0 {
		d.args = append(d.args, "--dhcp-option=option:dns-server,"+strings.Join(o.DNS, ","))
	}
	d.args = append(d.args, o.Extra...)

	AddAddr(t, ns, o.Interface, o.ServerAddr)
	LinkUp(t, ns, o.Interface)
	t.Cleanup(func() {
		d.Stop()
		if t.Failed() {
			t.Logf("dnsmasq on %s/%s log (%s):\n%s", ns.Name, o.Interface, d.LogFile, d.Log())
		}
	})
	if err := d.start(); err != nil {
		t.Fatal(err)
	}
	return d
}

func (d *Dnsmasq) start() error {
	logf, err := os.OpenFile(d.LogFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("dnsmasq: %w", err)
	}
	defer logf.Close()
	offset, _ := logf.Seek(0, 2)
	cmd := d.NS.Command(d.args...)
	cmd.SysProcAttr = orphanKill()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("dnsmasq in %s: %w", d.NS.Name, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	d.mu.Lock()
	d.cmd, d.done = cmd, done
	d.mu.Unlock()

	err = poll(5*time.Second, func() error {
		select {
		case <-done:
			return errExited
		default:
		}
		if log := d.Log(); int64(len(log)) > offset && dnsmasqReady.MatchString(log[offset:]) {
			return nil
		}
		return fmt.Errorf("no %q in its log yet", dnsmasqReady)
	})
	if err != nil {
		d.Stop()
		// The cleanup logs dnsmasq's log.
		return fmt.Errorf("dnsmasq on %s/%s did not start: %v\nargs: %s",
			d.NS.Name, d.Options.Interface, err, strings.Join(d.args, " "))
	}
	return nil
}

// Stop ends dnsmasq (SIGTERM, then SIGKILL after 3 s). Safe to call twice.
func (d *Dnsmasq) Stop() {
	d.mu.Lock()
	cmd, done := d.cmd, d.done
	d.cmd = nil
	d.mu.Unlock()
	if cmd != nil {
		stopProcess(cmd, done, 3*time.Second)
	}
}

// Restart stops dnsmasq and starts it again with the same options, lease
// file and log (a marker line separates the runs).
func (d *Dnsmasq) Restart(t testing.TB) {
	t.Helper()
	d.Stop()
	appendMarker(d.LogFile, "restart")
	if err := d.start(); err != nil {
		t.Fatal(err)
	}
}

// Pid returns dnsmasq's pid, or 0 when it is not running.
func (d *Dnsmasq) Pid() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd == nil || d.cmd.Process == nil {
		return 0
	}
	return d.cmd.Process.Pid
}

// Log returns everything dnsmasq logged so far.
func (d *Dnsmasq) Log() string { return readFile(d.LogFile) }

// Leases returns the lease file's contents.
func (d *Dnsmasq) Leases() string { return readFile(d.LeaseFile) }

// CountLog counts the matches of pattern in the log.
func (d *Dnsmasq) CountLog(pattern *regexp.Regexp) int {
	return len(pattern.FindAllStringIndex(d.Log(), -1))
}

// WaitLog waits until pattern matches the log and returns the first match;
// on timeout it fails the test with the log.
func (d *Dnsmasq) WaitLog(t testing.TB, pattern *regexp.Regexp, timeout time.Duration) string {
	t.Helper()
	return d.WaitCount(t, pattern, 1, timeout)
}

// WaitCount waits until pattern matches the log at least n times and
// returns the n-th match; on timeout it fails the test with the log.
func (d *Dnsmasq) WaitCount(t testing.TB, pattern *regexp.Regexp, n int, timeout time.Duration) string {
	t.Helper()
	var match string
	err := poll(timeout, func() error {
		m := pattern.FindAllString(d.Log(), n)
		if len(m) >= n {
			match = m[n-1]
			return nil
		}
		return fmt.Errorf("%d of %d matches", len(m), n)
	})
	if err != nil {
		t.Fatalf("dnsmasq on %s/%s: %q: %v after %v; log:\n%s",
			d.NS.Name, d.Options.Interface, pattern, err, timeout, d.Log())
	}
	return match
}

// stopProcess sends SIGTERM, waits up to grace for done, then SIGKILLs and
// waits again (bounded: a process stuck in the kernel is reported, not waited on).
func stopProcess(cmd *exec.Cmd, done <-chan struct{}, grace time.Duration) bool {
	select {
	case <-done:
		return true
	default:
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		return true
	case <-time.After(grace):
	}
	cmd.Process.Kill()
	select {
	case <-done:
		return false
	case <-time.After(5 * time.Second):
		return false
	}
}

// orphanKill makes a helper's process die with the test process when that
// is killed before its cleanups run (best effort: dnsmasq's switch to its
// own user clears it; `make clean-netns` sweeps what remains).
func orphanKill() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	return string(b)
}

func appendMarker(path, what string) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "--- testenv: %s at %s ---\n", what, time.Now().Format(time.RFC3339Nano))
}
