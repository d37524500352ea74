package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"nodenet/api"
	"nodenet/dhcpd"
	"nodenet/internal/testenv"
	"nodenet/lan"
)

// udhcpcScript configures the address udhcpc got, so later steps can use it.
const udhcpcScript = `#!/bin/sh
case "$1" in
bound|renew) ip addr replace "$ip/$mask" dev "$interface"; echo "udhcpc-$1 $ip" ;;
deconfig) ip addr flush dev "$interface" ;;
esac
`

func writeScript(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// startDHCPNode is a node with LAN "dl" serving DHCP and DNS (10.86.0.0/24,
// gateway .1) and extra kernel flags.
func startDHCPNode(t *testing.T, cmdline, cidr string) *lanNode {
	t.Helper()
	testenv.Require(t, "unshare", "busybox")
	ns := testenv.NewNetns(t)
	o := testenv.StartOVS(t, ns)
	d := testenv.StartDaemon(t, ns, testenv.DaemonOptions{Cmdline: "ip=off " + cmdline, OVS: o})
	n := &lanNode{ns: ns, ovs: o, d: d, c: newClient(d)}
	n.waitLANs(t)
	if err := n.c.Create(context.Background(), "dl", lan.Bridge,
		lan.Settings{Network: lan.IPSettings{CIDR: cidr, DHCP: true}}); err != nil {
		t.Fatal(err)
	}
	return n
}

// udhcpc runs busybox udhcpc once on eth0 in ns and returns the address
// it was given ("" when none).
func udhcpc(t *testing.T, ns *testenv.Netns, script string) string {
	t.Helper()
	out, _ := ns.Output("busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-f", "-t", "3", "-T", "1", "-s", script)
	m := regexp.MustCompile(`udhcpc-bound (\S+)`).FindStringSubmatch(out)
	if m == nil {
		return ""
	}
	return m[1]
}

func TestLANDHCPReservedAndDynamic(t *testing.T) {
	node := startDHCPNode(t, "", "10.86.0.0/24")
	script := writeScript(t, udhcpcScript)
	a, b := testenv.NewNetns(t), testenv.NewNetns(t)
	ma := node.join(t, "dl", "a", a)
	node.join(t, "dl", "b", b)
	if ma.IP != "10.86.0.2" {
		t.Errorf("member a reserved %s, want 10.86.0.2", ma.IP)
	}
	if out := a.Run(t, "ip", "-4", "-o", "addr", "show", "eth0"); strings.Contains(out, "inet ") {
		t.Errorf("dhcp LAN: nodenet configured the member itself: %s", out)
	}
	// The member's own MAC gets its reservation.
	if got := udhcpc(t, a, script); got != ma.IP {
		t.Fatalf("udhcpc in member a got %q, want its reservation %s", got, ma.IP)
	}
	// A client with a MAC of its own (a machine on a segment plugged into
	// the LAN) gets a dynamic lease, never a member's reservation; after a
	// restart the same MAC gets the same address.
	c := foreignClient(t, node, "fc0")
	c.Run(t, "ip", "link", "set", "eth0", "address", "02:00:00:86:00:01")
	dyn := udhcpc(t, c, script)
	if !strings.HasPrefix(dyn, "10.86.0.") || dyn == "10.86.0.2" || dyn == "10.86.0.3" || dyn == "10.86.0.1" {
		t.Fatalf("dynamic lease %q", dyn)
	}
	node.d.Restart(t)
	node.waitLANs(t)
	if again := udhcpc(t, c, script); again != dyn {
		t.Errorf("after a daemon restart the same MAC got %q, want %s", again, dyn)
	}
	ping(t, a, dyn)
	ping(t, c, "10.86.0.1")
}

// foreignClient plugs a new netns into the LAN's bridge through a veth
// nodenet does not own, as a physical segment added to the bridge would
// be: port security binds members' ports to their MAC and address, so a
// client that picks its own MAC lives on such a port.
func foreignClient(t *testing.T, node *lanNode, port string) *testenv.Netns {
	t.Helper()
	ns := testenv.NewNetns(t)
	testenv.Veth(t, node.ns, port, ns, "eth0")
	testenv.LinkUp(t, node.ns, port)
	testenv.LinkUp(t, ns, "eth0")
	node.vsctl(t, "add-port", node.vsctl(t, "list-br"), port)
	return ns
}

// A client that renews and releases: busybox udhcpc in the foreground,
// SIGUSR1 renews (a unicast REQUEST), SIGUSR2 releases.
func TestLANDHCPRenewRelease(t *testing.T) {
	node := startDHCPNode(t, "", "10.87.0.0/24")
	script := writeScript(t, udhcpcScript)
	a := testenv.NewNetns(t)
	ma := node.join(t, "dl", "a", a)
	cmd := a.Command("busybox", "udhcpc", "-i", "eth0", "-f", "-t", "5", "-T", "1", "-s", script)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	waitFor(t, &out, "udhcpc-bound "+ma.IP)
	cmd.Process.Signal(sigUSR1)
	waitFor(t, &out, "udhcpc-renew "+ma.IP)
	cmd.Process.Signal(sigUSR2)
	waitFor(t, &out, "released")
}

// Pool exhaustion: no offer, and the LAN says so.
func TestLANDHCPExhaustion(t *testing.T) {
	node := startDHCPNode(t, "", "10.88.0.0/29") // .2-.6: five addresses
	script := writeScript(t, udhcpcScript)
	a := testenv.NewNetns(t)
	node.join(t, "dl", "a", a) // .2 reserved
	c := foreignClient(t, node, "fc0")
	var got []string
	for i := 1; i <= 5; i++ {
		c.Run(t, "ip", "link", "set", "eth0", "address", fmt.Sprintf("02:00:00:88:00:%02x", i))
		got = append(got, udhcpc(t, c, script))
	}
	for i, ip := range got[:4] {
		if !strings.HasPrefix(ip, "10.88.0.") || ip == "10.88.0.2" {
			t.Errorf("client %d got %q", i+1, ip)
		}
	}
	if got[4] != "" {
		t.Errorf("the sixth address %q came from a full pool", got[4])
	}
	if !strings.Contains(node.d.Log(), "exhausted") {
		t.Errorf("no log line says the pool is exhausted")
	}
	l, err := node.c.Leases(context.Background(), "dl")
	if err != nil || !l.Pool.Exhausted || l.Pool.Free != 0 || l.Pool.Bound != 4 || l.Pool.Reserved != 1 {
		t.Errorf("GET leases: %+v, %v", l.Pool, err)
	}
	if code, out, _ := cli(node.d.Socket, "network", "show", "dl"); code != 0 || !strings.Contains(out, "dhcp pool: 0 free of 5 (1 reserved, 4 bound, 0 offered), EXHAUSTED") {
		t.Errorf("network show: exit %d\n%s", code, out)
	}
}

// ISC dhclient and dhcpcd, each with private state (a tmpfs over their
// lease directories, in a mount namespace of their own) and no hook that
// changes the machine, get their reserved address, renew it at T1 (the
// leases are 10 s long here; dhcpcd stretches them to its minimum of 20 s
// but renews at the T1 it was given) and release it.
func TestLANDHCPOtherClients(t *testing.T) {
	testenv.Require(t, "dhclient", "dhcpcd", "nsenter")
	resolvBefore, _ := os.ReadFile("/etc/resolv.conf")
	node := startDHCPNode(t, "nodenet.lan-lease=10", "10.89.0.0/24")
	a, b := testenv.NewNetns(t), testenv.NewNetns(t)
	ma := node.join(t, "dl", "a", a)
	mb := node.join(t, "dl", "b", b)
	t.Run("dhclient", func(t *testing.T) { t.Parallel(); dhclientRenewRelease(t, node, a, ma.IP) })
	t.Run("dhcpcd", func(t *testing.T) { t.Parallel(); dhcpcdRenewRelease(t, node, b, mb.IP) })
	t.Cleanup(func() {
		if after, _ := os.ReadFile("/etc/resolv.conf"); string(after) != string(resolvBefore) {
			t.Errorf("the machine's /etc/resolv.conf changed")
		}
	})
}

func dhclientRenewRelease(t *testing.T, node *lanNode, ns *testenv.Netns, ip string) {
	dir := t.TempDir()
	// The hook only puts the address on eth0: renewals and the RELEASE are
	// unicast from it.
	hook := writeScript(t, "#!/bin/sh\ncase \"$reason\" in BOUND|RENEW|REBOOT) ip addr replace \"$new_ip_address/$new_subnet_mask\" dev \"$interface\" ;; esac\n")
	dhclient := "dhclient -v -sf " + hook + " -pf " + dir + "/dhclient.pid -lf " + dir + "/dhclient.leases"
	private := "mount -t tmpfs tmpfs /var/lib/dhcp && "
	out := startClient(t, ns, private+"exec "+dhclient+" -d eth0")
	waitFor(t, out, "DHCPACK of "+ip)
	bound := leaseOf(t, node, ip)
	// RENEWING: a unicast REQUEST to the server at T1 (5 s).
	waitFor(t, out, "DHCPREQUEST for "+ip+" on eth0 to 10.89.0.1 port 67")
	waitForCount(t, out, "DHCPACK of "+ip, 2)
	if renewed := leaseOf(t, node, ip); !renewed.Expires.After(bound.Expires) {
		t.Errorf("dhclient renewed, but the server's lease still expires at %v (was %v)", renewed.Expires, bound.Expires)
	}
	// dhclient -r stops the running client (its pid file) and releases.
	rel, err := ns.Output("unshare", "-m", "sh", "-c", private+dhclient+" -r eth0 2>&1")
	if err != nil || !strings.Contains(rel, "DHCPRELEASE of "+ip) {
		t.Errorf("dhclient -r: %v\n%s", err, rel)
	}
	waitReleased(t, node, ip)
}

func dhcpcdRenewRelease(t *testing.T, node *lanNode, ns *testenv.Netns, ip string) {
	// -B: stay in the foreground; /run private for its control socket,
	// which dhcpcd -k reaches by entering its mount namespace.
	cmd, out := startClientCmd(t, ns, "mount -t tmpfs tmpfs /var/lib/dhcpcd 2>/dev/null; mount -t tmpfs tmpfs /run && "+
		"exec dhcpcd "+dhcpcdQuiet+" -B -d eth0")
	waitFor(t, out, "leased "+ip)
	bound := leaseOf(t, node, ip)
	if addrs := strings.Join(ns.Addrs(t, "eth0"), " "); !strings.Contains(addrs, ip+"/24") {
		t.Errorf("dhcpcd: eth0 has %q, want %s/24", addrs, ip)
	}
	// RENEWING at T1 (5 s): a unicast REQUEST, answered to the lease's
	// address, where dhcpcd listens with an ordinary UDP socket.
	waitFor(t, out, "renewing lease of "+ip)
	waitForCount(t, out, "acknowledged "+ip, 2)
	if renewed := leaseOf(t, node, ip); !renewed.Expires.After(bound.Expires) {
		t.Errorf("dhcpcd renewed, but the server's lease still expires at %v (was %v)", renewed.Expires, bound.Expires)
	}
	// The same options as the daemon: should -k ever miss the control
	// socket and run on its own, it still runs no hook.
	ctl := append([]string{"nsenter", "-t", fmt.Sprint(cmd.Process.Pid), "-m", "dhcpcd"}, strings.Fields(dhcpcdQuiet)...)
	if o, err := ns.Output(append(ctl, "-k", "eth0")...); err != nil {
		t.Fatalf("dhcpcd -k: %v\n%s", err, o)
	}
	waitFor(t, out, "releasing lease of "+ip)
	waitReleased(t, node, ip)
}

// dhcpcdQuiet: IPv4 only, no ARP probe, no config file and no hook (the
// default hook rewrites the machine's /etc/resolv.conf).
const dhcpcdQuiet = "-4 -A -f /dev/null -c /bin/true"

// startClient runs script in ns, in a mount namespace of its own, and
// collects its output until the test ends.
func startClient(t *testing.T, ns *testenv.Netns, script string) *syncBuffer {
	_, out := startClientCmd(t, ns, script)
	return out
}

func startClientCmd(t *testing.T, ns *testenv.Netns, script string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	// Over the machine's resolv.conf, a file of the test's: a client hook
	// that slips through writes there.
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(resolv, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := ns.Command("unshare", "-m", "sh", "-c", "mount --bind "+resolv+" /etc/resolv.conf && "+script)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	// A group of its own: dhcpcd's privilege-separated helpers are its
	// children and must go with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() })
	return cmd, out
}

// leaseOf is the server's lease of ip.
func leaseOf(t *testing.T, node *lanNode, ip string) dhcpd.Lease {
	t.Helper()
	l, err := node.c.Leases(context.Background(), "dl")
	if err != nil {
		t.Fatal(err)
	}
	for _, le := range l.Leases {
		if le.IP == ip {
			return le
		}
	}
	t.Fatalf("no lease of %s in %+v", ip, l.Leases)
	return dhcpd.Lease{}
}

// waitReleased waits until the server holds ip as a reservation only.
func waitReleased(t *testing.T, node *lanNode, ip string) {
	t.Helper()
	testenv.Eventually(t, 5*time.Second, "release seen by the server", func() error {
		if l := leaseOf(t, node, ip); l.State != dhcpd.StateReserved {
			return fmt.Errorf("lease of %s: %+v", ip, l)
		}
		return nil
	})
}

func waitForCount(t *testing.T, out *syncBuffer, want string, n int) {
	t.Helper()
	waitFor(t, out, want)
	testenv.Eventually(t, 10*time.Second, fmt.Sprintf("%d times %q", n, want), func() error {
		if c := strings.Count(out.String(), want); c < n {
			return fmt.Errorf("%d times in:\n%s", c, out.String())
		}
		return nil
	})
}

func waitFor(t *testing.T, out *syncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Contains(out.String(), want) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no %q in:\n%s", want, out.String())
}

const sigUSR1, sigUSR2 = syscall.SIGUSR1, syscall.SIGUSR2

// syncBuffer collects a child's output while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newClient(d *testenv.Daemon) *api.Client { return api.NewClient(d.Socket) }

// The LAN's DNS: members by name (A and PTR), other names forwarded to the
// node's resolver (a dnsmasq in a test namespace playing the internet's),
// and nothing answered to a query that arrives from outside the LAN.
func TestLANDNS(t *testing.T) {
	testenv.Require(t, "dig", "dnsmasq")
	up := testenv.NewNetns(t)
	node := startDHCPNode(t, "nameserver=10.99.0.53", "10.90.0.0/24")
	testenv.Veth(t, node.ns, "toup", up, "fromnode")
	node.ns.Run(t, "ip", "addr", "add", "10.99.0.1/24", "dev", "toup")
	node.ns.Run(t, "ip", "link", "set", "toup", "up")
	up.Run(t, "ip", "addr", "add", "10.99.0.53/24", "dev", "fromnode")
	up.Run(t, "ip", "link", "set", "fromnode", "up")
	up.Run(t, "ip", "route", "add", "10.90.0.0/24", "via", "10.99.0.1")
	dnsmasq := up.Command("dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
		"--bind-interfaces", "--listen-address=10.99.0.53", "--address=/upstream.test/10.77.0.53", "--log-queries", "--log-facility=-")
	var upLog syncBuffer
	dnsmasq.Stdout, dnsmasq.Stderr = &upLog, &upLog
	if err := dnsmasq.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { dnsmasq.Process.Kill(); dnsmasq.Wait() }()

	a, b := testenv.NewNetns(t), testenv.NewNetns(t)
	ma := node.join(t, "dl", "a", a)
	mb := node.join(t, "dl", "web", b)
	a.Run(t, "ip", "addr", "add", ma.IP+"/24", "dev", "eth0")
	dig := func(ns *testenv.Netns, args ...string) string {
		out, _ := ns.Output(append([]string{"dig", "@10.90.0.1", "+short", "+time=2", "+tries=1"}, args...)...)
		return strings.TrimSpace(out)
	}
	var got string
	testenv.Eventually(t, 10*time.Second, "A of a member", func() error {
		if got = dig(a, "web.dl.internal"); got != mb.IP {
			return fmt.Errorf("web.dl.internal: %q, want %s", got, mb.IP)
		}
		return nil
	})
	if got = dig(a, "-x", mb.IP); got != "web.dl.internal." {
		t.Errorf("PTR of %s: %q", mb.IP, got)
	}
	if got = dig(a, "www.upstream.test"); got != "10.77.0.53" {
		t.Errorf("forwarded name: %q\nupstream log:\n%s", got, upLog.String())
	}
	if out, _ := a.Output("dig", "@10.90.0.1", "+time=2", "+tries=1", "nosuch.dl.internal"); !strings.Contains(out, "NXDOMAIN") {
		t.Errorf("unknown LAN name: %s", out)
	}
	// From the uplink side, even with a route to the gateway: silence.
	if out, err := up.Output("dig", "@10.90.0.1", "+time=1", "+tries=1", "web.dl.internal"); err == nil && strings.Contains(out, "ANSWER SECTION") {
		t.Errorf("a query from outside the LAN was answered:\n%s", out)
	}
}
