package lan

import (
	"context"
	"net/http"
	"testing"
)

// TestZerotierCreateInvalid: settings a zerotier network cannot honour are
// refused before the service hears of them, and no network is left.
func TestZerotierCreateInvalid(t *testing.T) {
	f := startFakeZT(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotFound) })
	m := &Manager{StateDir: t.TempDir(), ZerotierHome: f.home}
	yes := true
	id := func(s string) *ZerotierSettings { return &ZerotierSettings{NetworkID: s} }
	cases := []struct {
		name string
		s    Settings
		want string
	}{
		{"no block", Settings{}, "a zerotier network needs zerotier.network_id"},
		{"empty id", Settings{Zerotier: id("")}, "a zerotier network needs zerotier.network_id"},
		{"short id", Settings{Zerotier: id("8056c2e21c00001")}, `zerotier.network_id "8056c2e21c00001": want 16 hex digits`},
		{"not hex", Settings{Zerotier: id("8056c2e21c00000g")}, "want 16 hex digits"},
		{"cidr", Settings{Zerotier: id("8056c2e21c000001"), Network: IPSettings{CIDR: "10.9.0.0/24"}}, "addresses come from its ZeroTier controller"},
		{"nat", Settings{Zerotier: id("8056c2e21c000001"), NAT: &yes}, "no gateway on this node"},
		{"mtu", Settings{Zerotier: id("8056c2e21c000001"), MTU: 1400}, "MTU comes from its ZeroTier controller"},
	}
	for _, c := range cases {
		err := m.Create(context.Background(), "zt1", Zerotier, c.s)
		wantCode(t, c.name, err, Invalid, c.want)
		if _, err := m.Get(context.Background(), "zt1"); CodeOf(err) != NotFound {
			t.Errorf("%s: network left after a refused create: %v", c.name, err)
		}
	}
	if reqs := f.requests(); len(reqs) != 0 {
		t.Errorf("the service was asked %q; want nothing", reqs)
	}
}

func TestAssignedPrefixes(t *testing.T) {
	nw := ztNetwork{AssignedAddresses: []string{"fd80::1/88", "junk", "10.147.17.6/24", "10.1.0.2/16"}}
	got := assignedPrefixes(nw)
	want := []string{"10.147.17.6/24", "10.1.0.2/16", "fd80::1/88"}
	if len(got) != len(want) {
		t.Fatalf("assignedPrefixes = %v, want %v", got, want)
	}
	for i := range got {
		if got[i].String() != want[i] {
			t.Errorf("assignedPrefixes = %v, want %v", got, want)
		}
	}
}
