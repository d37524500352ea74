package boot

import (
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

func ackWith(t *testing.T, mods ...dhcpv4.Modifier) *Lease {
	t.Helper()
	l := savedTestLease(t, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	for _, m := range mods {
		m(l.ACK)
	}
	return l
}

// RFC 3442: when classless static routes are present, the router option is
// ignored entirely.
func TestLeaseRoutesClasslessWinOverRouter(t *testing.T) {
	_, dst, _ := net.ParseCIDR("192.168.50.0/24")
	_, def, _ := net.ParseCIDR("0.0.0.0/0")
	l := ackWith(t, dhcpv4.WithOption(dhcpv4.OptClasslessStaticRoute(
		&dhcpv4.Route{Dest: dst, Router: net.IPv4(10, 0, 0, 254)},
		&dhcpv4.Route{Dest: def, Router: net.IPv4(10, 0, 0, 2)},
		&dhcpv4.Route{Dest: &net.IPNet{IP: net.IPv4(10, 9, 0, 0), Mask: net.CIDRMask(16, 32)}, Router: net.IPv4zero},
	)))
	got := l.Routes()
	want := []RouteSpec{
		{Dst: netip.MustParsePrefix("192.168.50.0/24"), Gateway: netip.MustParseAddr("10.0.0.254")},
		{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gateway: netip.MustParseAddr("10.0.0.2")},
		{Dst: netip.MustParsePrefix("10.9.0.0/16")}, // 0.0.0.0 router: on-link
	}
	if !slices.Equal(got, want) {
		t.Fatalf("routes:\n got %v\nwant %v", got, want)
	}
}

func TestLeaseRoutesFromRouterOption(t *testing.T) {
	got := ackWith(t).Routes()
	want := []RouteSpec{{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gateway: netip.MustParseAddr("10.0.0.1")}}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestLeaseTimesDefaultAndExplicit(t *testing.T) {
	l := ackWith(t)
	if got := l.T1().Sub(l.Acquired); got != 60*time.Second {
		t.Errorf("default T1 = %s, want half the lease", got)
	}
	if got := l.T2().Sub(l.Acquired); got != 105*time.Second {
		t.Errorf("default T2 = %s, want 7/8 of the lease", got)
	}
	l = ackWith(t, dhcpv4.WithOption(dhcpv4.OptRenewTimeValue(30*time.Second)),
		dhcpv4.WithOption(dhcpv4.OptRebindingTimeValue(90*time.Second)))
	if l.T1().Sub(l.Acquired) != 30*time.Second || l.T2().Sub(l.Acquired) != 90*time.Second {
		t.Errorf("explicit T1/T2 ignored: %s %s", l.T1(), l.T2())
	}
}

func TestLeaseOptions(t *testing.T) {
	l := ackWith(t,
		dhcpv4.WithOption(dhcpv4.OptDNS(net.IPv4(10, 0, 0, 53), net.IPv4(10, 0, 0, 54))),
		dhcpv4.WithOption(dhcpv4.OptDomainName("lab.test")),
		dhcpv4.WithOption(dhcpv4.Option{Code: dhcpv4.OptionInterfaceMTU, Value: dhcpv4.Uint16(9000)}))
	if got := l.DNS(); !slices.Equal(got, []netip.Addr{netip.MustParseAddr("10.0.0.53"), netip.MustParseAddr("10.0.0.54")}) {
		t.Errorf("DNS = %v", got)
	}
	if l.Domain() != "lab.test" || l.MTU() != 9000 || l.Server() != netip.MustParseAddr("10.0.0.1") {
		t.Errorf("domain %q mtu %d server %s", l.Domain(), l.MTU(), l.Server())
	}
}

func TestLeaseSaveLoadRoundTrip(t *testing.T) {
	l := ackWith(t)
	b, err := l.marshal("up0")
	if err != nil {
		t.Fatal(err)
	}
	got, mac, err := unmarshalLease(b)
	if err != nil {
		t.Fatal(err)
	}
	if mac != testMAC.String() || !got.Acquired.Equal(l.Acquired) || got.Address() != l.Address() {
		t.Fatalf("round trip: mac %s acquired %s address %s", mac, got.Acquired, got.Address())
	}
	if _, _, err := unmarshalLease([]byte(`{"ack":"AAAA"}`)); err == nil {
		t.Fatal("a truncated ACK was accepted")
	}
}

func TestRenderResolvConf(t *testing.T) {
	got := string(renderResolvConf(
		[]netip.Addr{netip.MustParseAddr("10.99.0.53"), netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.99.0.53")},
		[]string{"lab.test", "", "lab.test", "b.test"}))
	want := "# written by nodenet from kernel flags and uplink leases\n" +
		"search lab.test b.test\nnameserver 10.99.0.53\nnameserver 10.0.0.1\n"
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

// A saved lease is read back from disk at start; whatever the file holds,
// decoding must fail cleanly or give a lease whose accessors work.
func FuzzUnmarshalLease(f *testing.F) {
	l := savedTestLease(&testing.T{}, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	good, _ := l.marshal("up0")
	f.Add(good)
	f.Add([]byte(`{"ack":"AQ=="}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, _, err := unmarshalLease(b)
		if err != nil {
			return
		}
		_ = l.Address()
		_ = l.Routes()
		_, _, _ = l.T1(), l.T2(), l.Expiry()
		_, _, _ = l.DNS(), l.MTU(), l.Server()
	})
}
