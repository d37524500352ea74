package boot_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"nodenet/internal/testenv"
)

// flapBound is the bound: after the cable comes back, lease and
// default route are back within it.
const flapBound = 3 * time.Second

// TestUplinkFlaps pulls the cable on the uplink's far side 50 times.
// After each return the lease is confirmed (a REQUEST answered by
// dnsmasq), the uplink is bound with its address and the default route is
// back, within flapBound. Halfway the DHCP server starts handing out
// another DNS server: the next confirmation carries it into resolv.conf
// and the status, replacing the old one.
func TestUplinkFlaps(t *testing.T) {
	const flaps = 50
	n := newNode(t)
	testenv.Veth(t, n.ns, "up0", n.lan, "srv0")
	opts := filepath.Join(t.TempDir(), "dhcp-opts")
	writeDNSOption(t, opts, "10.77.0.1")
	n.dhcp["up0"] = testenv.StartDnsmasq(t, n.lan, testenv.DnsmasqOptions{
		Interface: "srv0", ServerAddr: "10.77.0.1/24", Router: "10.77.0.1",
		Extra: []string{"--dhcp-optsfile=" + opts},
	})
	srv := n.dhcp["up0"]
	n.start("nodenet.uplinks=up0")
	addr := n.waitBound("up0", 10*time.Second)
	n.waitResolv(t, "10.77.0.1", "")

	var took []time.Duration
	dns, oldDNS := "10.77.0.1", ""
	for i := range flaps {
		if i == flaps/2 {
			writeDNSOption(t, opts, "10.77.0.53")
			if err := syscall.Kill(srv.Pid(), syscall.SIGHUP); err != nil { // dnsmasq rereads the file
				t.Fatal(err)
			}
			dns, oldDNS = "10.77.0.53", "10.77.0.1"
		}
		requests := srv.CountLog(requestRe)
		testenv.LinkDown(t, n.lan, "srv0")
		testenv.Eventually(t, 5*time.Second, "carrier loss seen", func() error {
			if u := n.uplink("up0"); u["state"] != "no-carrier" {
				return fmt.Errorf("status: %v", u)
			}
			return nil
		})
		testenv.LinkUp(t, n.lan, "srv0")
		back := time.Now()
		testenv.Eventually(t, flapBound, fmt.Sprintf("flap %d: lease and default route back", i+1), func() error {
			if srv.CountLog(requestRe) <= requests {
				return fmt.Errorf("no REQUEST answered yet")
			}
			if u := n.uplink("up0"); u["state"] != "bound" {
				return fmt.Errorf("status: %v", u)
			}
			if got := n.ns.Addrs(t, "up0"); !slices.Equal(got, []string{addr}) {
				return fmt.Errorf("addresses %v, want [%s]", got, addr)
			}
			if len(n.ns.DefaultRoutes(t)) != 1 {
				return fmt.Errorf("no default route")
			}
			return nil
		})
		took = append(took, time.Since(back))
		if i == flaps/2 {
			n.waitResolv(t, dns, oldDNS)
		}
	}
	n.waitResolv(t, dns, oldDNS)
	slices.Sort(took)
	t.Logf("%d flaps: lease and default route back after median %v, max %v (bound %v); DNS followed the server's change",
		flaps, took[len(took)/2].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond), flapBound)
}

func writeDNSOption(t *testing.T, path, dns string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("option:dns-server,"+dns+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitResolv waits until resolv.conf and the uplink's status name want as
// their DNS server and not gone.
func (n *node) waitResolv(t *testing.T, want, gone string) {
	t.Helper()
	testenv.Eventually(t, flapBound, "DNS "+want+" in resolv.conf and status", func() error {
		b, err := os.ReadFile(n.d.ResolvConf)
		if err != nil {
			return err
		}
		rc := string(b)
		if !strings.Contains(rc, "nameserver "+want+"\n") || (gone != "" && strings.Contains(rc, gone)) {
			return fmt.Errorf("resolv.conf:\n%s", rc)
		}
		if st := fmt.Sprint(n.uplink("up0")["dns"]); !strings.Contains(st, want) || (gone != "" && strings.Contains(st, gone)) {
			return fmt.Errorf("status dns %s", st)
		}
		return nil
	})
}
