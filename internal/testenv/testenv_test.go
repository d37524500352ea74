package testenv

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain doubles as a fake `nodenet daemon` (the helper-process pattern),
// so the Daemon helper is tested without the real binary.
func TestMain(m *testing.M) {
	if os.Getenv("TESTENV_FAKE_NODENET") == "1" {
		fakeDaemon(os.Args[1:])
		return
	}
	os.Exit(m.Run())
}

func fakeDaemon(args []string) {
	if len(args) == 0 || args[0] != "daemon" {
		fmt.Fprintln(os.Stderr, "fake nodenet: want daemon")
		os.Exit(2)
	}
	fs := flag.NewFlagSet("daemon", flag.ExitOnError)
	cmdline := fs.String("cmdline", "", "")
	fs.String("config", "", "")
	fs.String("state-dir", "", "")
	socket := fs.String("socket", "", "")
	fs.String("resolv-conf", "", "")
	for _, name := range []string{"ovsdb", "ovs-supervise", "datapath"} {
		fs.String(name, "", "")
	}
	fs.Parse(args[1:])

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	// Proves the UTS namespace: the test checks the machine's name is unchanged.
	if err := syscall.Sethostname([]byte("nnt-fake-host")); err != nil {
		fmt.Fprintln(os.Stderr, "fake nodenet: sethostname:", err)
		os.Exit(1)
	}
	os.Remove(*socket) // stale, from a killed predecessor
	ln, err := net.Listen("unix", *socket)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake nodenet:", err)
		os.Exit(1)
	}
	flags, _ := os.ReadFile(*cmdline)
	http.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		host, _ := os.Hostname()
		var links []string
		ifs, _ := net.Interfaces()
		for _, i := range ifs {
			links = append(links, i.Name)
		}
		json.NewEncoder(w).Encode(map[string]any{
			"cmdline": strings.TrimSpace(string(flags)), "hostname": host,
			"pid": os.Getpid(), "links": links,
		})
	})
	go http.Serve(ln, nil)
	fmt.Fprintln(os.Stderr, "fake nodenet: serving on", *socket)
	<-sigs
	ln.Close()
	fmt.Fprintln(os.Stderr, "fake nodenet: SIGTERM, bye")
}

func rootLinks(t *testing.T) string {
	t.Helper()
	out, err := ipCmd("-o", "link").Output()
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func TestVethPing(t *testing.T) {
	Require(t, "ping")
	a, b := NewNetns(t), NewNetns(t)
	Veth(t, a, "nnt0", b, "nntpeer0")
	if strings.Contains(rootLinks(t), "nnt0") || strings.Contains(rootLinks(t), "nntpeer0") {
		t.Fatalf("a veth end is in the machine's namespace:\n%s", rootLinks(t))
	}
	if out := a.IP(t, "-o", "link", "show", "nnt0"); strings.Contains(out, ",UP") || strings.Contains(out, "<UP") {
		t.Errorf("node side should be left down: %s", out)
	}
	AddAddr(t, a, "nnt0", "10.99.0.1/24")
	AddAddr(t, b, "nntpeer0", "10.99.0.2/24")
	LinkUp(t, a, "nnt0")
	if got, want := a.Addrs(t, "nnt0"), []string{"10.99.0.1/24"}; !slices.Equal(got, want) {
		t.Errorf("Addrs = %v, want %v", got, want)
	}
	Eventually(t, 5*time.Second, "ping across the veth", func() error {
		_, err := a.Output("ping", "-c", "1", "-W", "1", "10.99.0.2")
		return err
	})
	a.IP(t, "route", "add", "default", "via", "10.99.0.2", "metric", "7")
	got := a.DefaultRoutes(t)
	if len(got) != 1 || got[0].Dev != "nnt0" || got[0].Gateway != "10.99.0.2" || got[0].Metric != 7 {
		t.Errorf("DefaultRoutes = %v, want one via 10.99.0.2 dev nnt0 metric 7", got)
	}
	if got := b.DefaultRoutes(t); len(got) != 0 {
		t.Errorf("DefaultRoutes of the peer = %v, want none", got)
	}
	sleeper := a.Command("sleep", "600")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	go sleeper.Wait() // killed by a's cleanup
}

func TestNetnsCleanup(t *testing.T) {
	Require(t, "sleep")
	var name string
	t.Run("inner", func(t *testing.T) {
		ns := NewNetns(t)
		name = ns.Name
		ns.DisableIPv6(t)
		cmd := ns.Command("sleep", "600")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go cmd.Wait()
	})
	names, err := ListNetns()
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(names, name) {
		t.Errorf("netns %s still exists after its test ended", name)
	}
}

func TestDnsmasqLeases(t *testing.T) {
	Require(t, "dnsmasq", "busybox")
	node, lan := NewNetns(t), NewNetns(t)
	Veth(t, node, "up0", lan, "srv0")
	Veth(t, node, "up1", lan, "srv1")
	// Two servers in one namespace, one per link, as scripts/demo.sh runs them.
	d0 := StartDnsmasq(t, lan, DnsmasqOptions{Interface: "srv0", ServerAddr: "10.77.0.1/24",
		Router: "10.77.0.1", DNS: []string{"10.77.0.1"}})
	d1 := StartDnsmasq(t, lan, DnsmasqOptions{Interface: "srv1", ServerAddr: "10.78.0.1/24",
		Router: "10.78.0.1"})

	udhcpc := func(ifname string) {
		t.Helper()
		LinkUp(t, node, ifname)
		node.Run(t, "busybox", "udhcpc", "-i", ifname, "-f", "-n", "-q", "-t", "5", "-T", "1", "-s", "/bin/true")
	}
	udhcpc("up0")
	udhcpc("up1")
	ack0 := regexp.MustCompile(`DHCPACK\(srv0\) (10\.77\.0\.\d+)`)
	if m := d0.WaitLog(t, ack0, 5*time.Second); !strings.Contains(m, "10.77.0.") {
		t.Errorf("WaitLog = %q", m)
	}
	d1.WaitLog(t, regexp.MustCompile(`DHCPACK\(srv1\) 10\.78\.0\.`), 5*time.Second)
	if n := d0.CountLog(regexp.MustCompile(`DHCPACK\(srv1\)`)); n != 0 {
		t.Errorf("srv0's dnsmasq answered on srv1 %d times", n)
	}

	d0.Restart(t)
	if !strings.Contains(d0.Leases(), "10.77.0.") {
		t.Errorf("lease file lost across restart:\n%s", d0.Leases())
	}
	udhcpc("up0")
	d0.WaitCount(t, ack0, 2, 5*time.Second)
	if !strings.Contains(d0.Log(), "--- testenv: restart") {
		t.Errorf("no restart marker in the log")
	}
}

func TestDaemonHelper(t *testing.T) {
	Require(t, "unshare")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	ns := NewNetns(t)
	d := StartDaemon(t, ns, DaemonOptions{
		Cmdline: "nodenet.uplinks=up0 nodenet.ignore=up2",
		Binary:  exe,
		Env:     []string{"TESTENV_FAKE_NODENET=1"},
	})
	st := d.Status(t)
	if st["cmdline"] != "nodenet.uplinks=up0 nodenet.ignore=up2" {
		t.Errorf("cmdline = %v", st["cmdline"])
	}
	if st["hostname"] != "nnt-fake-host" {
		t.Errorf("daemon hostname = %v, want the one it set", st["hostname"])
	}
	if now, _ := os.Hostname(); now != host {
		t.Fatalf("the machine's hostname changed from %q to %q", host, now)
	}
	if links := fmt.Sprint(st["links"]); links != "[lo]" {
		t.Errorf("daemon sees links %s, want only its namespace's lo", links)
	}
	if int(st["pid"].(float64)) != d.Pid() {
		t.Errorf("status pid %v, Pid() %d: ip and unshare should exec the daemon", st["pid"], d.Pid())
	}

	first := d.Pid()
	d.Kill9()
	if d.Running() {
		t.Fatal("still running after Kill9")
	}
	if _, err := os.Stat(d.Socket); err != nil {
		t.Fatalf("Kill9 should leave the socket file behind: %v", err)
	}
	d.Restart(t)
	if d.Pid() == first || !d.Running() {
		t.Errorf("Restart: pid %d (was %d), running %v", d.Pid(), first, d.Running())
	}
	d.Status(t)
	if err := d.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	if !strings.Contains(d.Log(), "SIGTERM, bye") {
		t.Errorf("log lacks the clean exit:\n%s", d.Log())
	}
}
