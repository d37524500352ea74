package qemutests

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBootToUplink: with no flags at all the uplink gets its lease from
// QEMU's DHCP server, OVS runs on the kernel datapath, and the time from
// kernel start to the uplink configured (guest uptime) is printed.
// QEMU_BOOTS=3 boots three times and prints the median (make bench-boot).
func TestBootToUplink(t *testing.T) {
	boots := 1
	if n, err := strconv.Atoi(os.Getenv("QEMU_BOOTS")); err == nil && n > 0 {
		boots = n
	}
	var times, afterHandover []time.Duration
	for i := 0; i < boots; i++ {
		vm := boot(t, fmt.Sprintf("boot%d", i+1), vmOptions{})
		m := vm.Seen("uplink leased", uplinkUp("eth0"), bootTimeout)
		if m[1] != "10.0.2.15/24" {
			t.Errorf("eth0 got %s, want QEMU's 10.0.2.15/24", m[1])
		}
		up, err := time.ParseDuration(m[2])
		if err != nil {
			t.Fatalf("uptime %q: %v", m[2], err)
		}
		times = append(times, up)
		if dp := vm.Seen("LANs ready", lansReady, bootTimeout)[1]; dp != "system" {
			t.Errorf("datapath %s, want system (the kernel's)", dp)
		}
		vm.Expect("shell", shellReady, bootTimeout)
		handover := vm.handover()
		afterHandover = append(afterHandover, (up - handover).Round(time.Millisecond))
		t.Logf("boot %d: uplink configured at %v guest uptime, %v after the kernel ran /init (at %v)", i+1, up, afterHandover[i], handover)
		st := vm.Sh("nodenet status", 20*time.Second)
		for _, want := range []string{"eth0", "10.0.2.15/24", "bound", "system"} {
			if !strings.Contains(st, want) {
				t.Errorf("nodenet status lacks %q:\n%s", want, st)
			}
		}
		vm.Sh("grep -q '^openvswitch ' /proc/modules", 10*time.Second)
		vm.stop()
	}
	report(t, fmt.Sprintf("boot to uplink configured (guest uptime): median %v of %d boots %v; after the kernel's handover to /init: median %v %v (goal 1s); image %s",
		median(times), boots, times, median(afterHandover), afterHandover, imageSize(t)))
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

var runInit = regexp.MustCompile(`\[\s*(\d+\.\d+)\] Run /init as init process`)

// handover is when the kernel handed over to userspace: its "Run /init"
// line in the kernel log (quiet keeps it off the console, not the log).
func (vm *VM) handover() time.Duration {
	vm.t.Helper()
	m := runInit.FindStringSubmatch(vm.Sh("dmesg | grep 'Run /init'", 10*time.Second))
	if m == nil {
		vm.t.Fatalf("no \"Run /init as init process\" in the kernel log")
	}
	d, err := time.ParseDuration(m[1] + "s")
	if err != nil {
		vm.t.Fatalf("kernel log time %q: %v", m[1], err)
	}
	return d
}

// report prints a figure for the README and keeps it in out/figures.txt.
func report(t *testing.T, line string) {
	t.Log(line)
	fmt.Println(line)
	os.MkdirAll("out", 0o755)
	f, err := os.OpenFile("out/figures.txt", os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err == nil {
		fmt.Fprintf(f, "%s %s\n", time.Now().Format(time.RFC3339), line)
		f.Close()
	}
}

func imageSize(t *testing.T) string {
	st, err := os.Stat(imageDir(t) + "/nodenet.cpio.gz")
	if err != nil {
		return "?"
	}
	return fmt.Sprintf("%.1f MiB", float64(st.Size())/(1<<20))
}

// TestKernelFlags: a static ip= is applied as given (address, gateway,
// hostname, no DHCP), and nodenet.ignore= keeps a second NIC untouched.
func TestKernelFlags(t *testing.T) {
	vm := boot(t, "vm", vmOptions{
		Append:   "ip=10.0.2.15::10.0.2.2:255.255.255.0:node7:eth0:none nodenet.ignore=eth1",
		ExtraArg: []string{"-netdev", "user,id=n1,restrict=on", "-device", "virtio-net-pci,netdev=n1,mac=52:54:00:12:34:57"},
	})
	if m := vm.Seen("static uplink", uplinkUp("eth0"), bootTimeout); m[1] != "10.0.2.15/24" {
		t.Errorf("eth0 configured with %s", m[1])
	}
	vm.Expect("shell", shellReady, bootTimeout)
	if got := vm.Sh("ip -4 route show default", 10*time.Second); !strings.Contains(got, "default via 10.0.2.2 dev eth0") {
		t.Errorf("default route: %q", got)
	}
	if got := vm.Sh("hostname", 10*time.Second); !strings.Contains(got, "node7") {
		t.Errorf("hostname %q, want node7 from ip=", got)
	}
	if got := vm.Sh("ip -4 addr show eth1", 10*time.Second); strings.Contains(got, "inet ") {
		t.Errorf("eth1 (nodenet.ignore=) has an address:\n%s", got)
	}
	st := vm.Sh("nodenet status", 20*time.Second)
	if !strings.Contains(st, "static") || strings.Contains(st, "eth1") {
		t.Errorf("nodenet status: eth0 static, no eth1 wanted:\n%s", st)
	}
	if strings.Contains(vm.consoleLog(), "DISCOVER") {
		t.Errorf("a DHCP exchange on a static uplink")
	}
}

// dhcpScript is a udhcpc script for the members: it configures the lease.
var dhcpScript = []string{
	`echo '#!/bin/sh' > /tmp/dhcp.sh`,
	`echo '[ "$1" = bound ] || exit 0' >> /tmp/dhcp.sh`,
	`echo 'ip addr add $ip/$mask dev $interface && ip route add default via $router' >> /tmp/dhcp.sh`,
	`chmod 755 /tmp/dhcp.sh`,
}

// member starts a process in a new netns for a LAN member; the shell
// variable name holds its pid.
func member(vm *VM, name string) {
	vm.t.Helper()
	vm.Sh(fmt.Sprintf("unshare -n sleep 100000 & %s=$!", name), 10*time.Second)
	vm.Sh(fmt.Sprintf("nsenter -t $%s -n ip link set lo up", name), 10*time.Second)
}

var nslookupAddr = regexp.MustCompile(`Address:\s*(10\.50\.0\.\d+)`)

// TestBridgeLANAndForward: a bridge LAN with nodenet's DHCP and DNS, two
// members in namespaces inside the guest lease, resolve and ping each
// other; a port forward to one is reached from the host through QEMU's
// hostfwd on 127.0.0.1; the bridge is on the kernel datapath.
func TestBridgeLANAndForward(t *testing.T) {
	port := freePort(t)
	vm := boot(t, "vm", vmOptions{UserNet: fmt.Sprintf(",hostfwd=tcp:127.0.0.1:%d-:8080", port)})
	vm.Seen("LANs ready", lansReady, bootTimeout)
	vm.Seen("uplink leased", uplinkUp("eth0"), bootTimeout)
	vm.Expect("shell", shellReady, bootTimeout)
	for _, line := range dhcpScript {
		vm.Sh(line, 10*time.Second)
	}
	vm.Sh("nodenet network create lan1 --type bridge --cidr 10.50.0.0/24 --dhcp", 60*time.Second)
	member(vm, "A")
	member(vm, "B")
	vm.Sh("nodenet join lan1 a --netns /proc/$A/ns/net --ifname eth0 -p 8080=80", 60*time.Second)
	vm.Sh("nodenet join lan1 b --netns /proc/$B/ns/net --ifname eth0", 60*time.Second)
	for _, m := range []string{"A", "B"} {
		if out, status := vm.ShStatus(fmt.Sprintf("nsenter -t $%s -n udhcpc -i eth0 -n -q -t 5 -s /tmp/dhcp.sh", m), 60*time.Second); status != 0 {
			t.Log(vm.Sh("ovs-appctl dpctl/dump-flows -m; ovs-appctl dpctl/show; for b in $(ls /sys/class/net | grep nnb); do ovs-appctl bridge/dump-flows $b; ovs-appctl fdb/show $b; done; tail -25 /var/log/openvswitch/ovs-vswitchd.log; for f in /sys/class/net/nn*; do echo $f $(cat $f/statistics/rx_packets $f/statistics/tx_packets); done", 10*time.Second))
			t.Fatalf("member %s: no lease from the LAN's DHCP:\n%s", m, out)
		}
	}
	got := vm.Sh("nsenter -t $A -n nslookup b.lan1.internal 10.50.0.1", 30*time.Second)
	m := nslookupAddr.FindStringSubmatch(got)
	if m == nil {
		t.Fatalf("a resolving b.lan1.internal:\n%s", got)
	}
	vm.Sh("nsenter -t $A -n ping -c 2 -W 5 "+m[1], 30*time.Second)
	vm.Sh("nsenter -t $B -n ping -c 2 -W 5 10.50.0.1", 30*time.Second)
	vm.Sh("ip link show ovs-system", 10*time.Second) // the kernel datapath's device
	// Every miss reached a handler (see boot.vswitchdMinUptime).
	if show := vm.Sh("ovs-appctl dpctl/show", 10*time.Second); !strings.Contains(show, " lost:0") {
		t.Errorf("kernel datapath lost upcalls:\n%s", show)
	}

	// The forward: the host's 127.0.0.1:port -> QEMU -> guest :8080 -> a:80.
	vm.Sh("mkdir -p /tmp/www && echo hello-from-a > /tmp/www/index.html", 10*time.Second)
	vm.Sh("nsenter -t $A -n httpd -p 80 -h /tmp/www", 10*time.Second)
	var body string
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			if strings.Contains(body, "hello-from-a") {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("port forward from the host: %v %q", err, body)
		}
		time.Sleep(time.Second)
	}
}

// TestVXLANTwoVMs: two VMs share a wire over loopback (QEMU socket
// netdevs); a vxlan LAN spans both, its members ping across with the
// LAN's MTU (the parent's minus 50), on the kernel datapath.
func TestVXLANTwoVMs(t *testing.T) {
	port := freePort(t)
	wire := func(mode string, mac string) []string {
		return []string{"-netdev", fmt.Sprintf("socket,id=n1,%s=127.0.0.1:%d", mode, port), "-device", "virtio-net-pci,netdev=n1,mac=" + mac}
	}
	vm1 := boot(t, "vm1", vmOptions{Append: "ip=192.168.77.1:::255.255.255.0::eth1:none", ExtraArg: wire("listen", "52:54:00:12:35:01")})
	time.Sleep(time.Second) // vm1's QEMU listens before vm2's connects
	vm2 := boot(t, "vm2", vmOptions{Append: "ip=192.168.77.2:::255.255.255.0::eth1:none", ExtraArg: wire("connect", "52:54:00:12:35:02")})
	for _, vm := range []*VM{vm1, vm2} {
		vm.Seen("underlay", uplinkUp("eth1"), bootTimeout)
		vm.Seen("LANs ready", lansReady, bootTimeout)
		vm.Expect("shell", shellReady, bootTimeout)
	}
	vm1.Sh("ping -c 2 -W 5 192.168.77.2", 30*time.Second)
	vm1.Sh("nodenet network create vx --type vxlan --vni 42 --remote 192.168.77.2 --parent eth1 --cidr 10.60.0.0/24 --gateway 10.60.0.1", 60*time.Second)
	vm2.Sh("nodenet network create vx --type vxlan --vni 42 --remote 192.168.77.1 --parent eth1", 60*time.Second)
	member(vm1, "A")
	member(vm2, "B")
	vm1.Sh("nodenet join vx a --netns /proc/$A/ns/net --ifname eth0", 60*time.Second)
	vm2.Sh("nodenet join vx b --netns /proc/$B/ns/net --ifname eth0", 60*time.Second)
	vm2.Sh("nsenter -t $B -n ip addr add 10.60.0.200/24 dev eth0", 10*time.Second)
	if link := vm1.Sh("nsenter -t $A -n ip -o link show eth0", 10*time.Second); !strings.Contains(link, "mtu 1450") {
		t.Errorf("member's link, want MTU 1450: %s", link)
	}
	vm2.Sh("nsenter -t $B -n ping -c 3 -W 5 10.60.0.2", 60*time.Second)
	vm2.Sh("nsenter -t $B -n ping -c 2 -W 5 -s 1422 10.60.0.1", 60*time.Second) // a full 1450-byte packet
	vm1.Sh("ip link show ovs-system", 10*time.Second)
}

// TestQEMUDemo runs make qemu-demo's script without a terminal: the
// scripted scenario succeeds, the VM powers itself off, and the host
// reached the member through the forward.
func TestQEMUDemo(t *testing.T) {
	port := freePort(t)
	cmd := exec.Command("../images/qemu-demo.sh", imageDir(t))
	cmd.Env = append(os.Environ(), fmt.Sprintf("DEMO_PORT=%d", port))
	cmd.Stdin = nil // not a terminal: the demo powers off at its end
	done := make(chan struct{})
	var out []byte
	var err error
	go func() {
		out, err = cmd.CombinedOutput()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(3 * time.Minute):
		cmd.Process.Kill()
		<-done
		t.Fatalf("qemu-demo did not power off within 3 minutes")
	}
	os.MkdirAll("out", 0o755)
	os.WriteFile("out/TestQEMUDemo.log", out, 0o644)
	if err != nil {
		t.Fatalf("qemu-demo: %v (log in out/TestQEMUDemo.log)", err)
	}
	for _, want := range []string{"[host] curl http://127.0.0.1:", "hello from member a", "demo done; powering off", "reboot: Power down"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("qemu-demo output lacks %q (out/TestQEMUDemo.log)", want)
		}
	}
	if strings.Contains(string(out), "demo: failed") {
		t.Errorf("a demo step failed (out/TestQEMUDemo.log)")
	}
}
