package links

import (
	"strings"
	"testing"

	"nodenet/internal/testenv"
)

func TestCreateTap(t *testing.T) {
	ns := testenv.NewNetns(t)
	mac := MAC("lan1", "vm1")
	mustHelper(t, ns, helperReq{Op: "tap", Ifname: "nntap1", MTU: 1400, MAC: mac.String(), Owner: 1234, Group: -1})
	mustHelper(t, ns, helperReq{Op: "tap", Ifname: "nntap2", Owner: -1, Group: 4321})

	l, ok := showLink(t, ns, "nntap1")
	if !ok || l.Linkinfo.InfoKind != "tun" || l.MTU != 1400 || l.Address != mac.String() || !l.up() {
		t.Fatalf("nntap1 = %+v, want a tun, mtu 1400, MAC %s, up", l, mac)
	}
	// The helper process has exited: the device outlived its descriptor.
	if d := l.Linkinfo.InfoData; d["type"] != "tap" || d["persist"] != true || d["pi"] != false || d["multi_queue"] != false {
		t.Errorf("nntap1 info_data = %v, want a persistent single-queue tap without PI", d)
	}
	// sysfs shows -1 for an owner or group never set.
	for _, tc := range []struct{ dev, attr, want string }{
		{"nntap1", "owner", "1234"},
		{"nntap1", "group", "-1"},
		{"nntap2", "owner", "-1"},
		{"nntap2", "group", "4321"},
	} {
		got := strings.TrimSpace(ns.Run(t, "cat", "/sys/class/net/"+tc.dev+"/"+tc.attr))
		if got != tc.want {
			t.Errorf("%s %s = %s, want %s", tc.dev, tc.attr, got, tc.want)
		}
	}

	// An existing device is never adopted, and survives the attempt.
	if resp := inHelper(t, ns, helperReq{Op: "tap", Ifname: "nntap1", Owner: 0, Group: 0}); resp.Err == "" {
		t.Error("CreateTap over an existing tap succeeded")
	}
	testenv.Veth(t, ns, "nnveth0", ns, "nnveth1")
	if resp := inHelper(t, ns, helperReq{Op: "tap", Ifname: "nnveth0", Owner: -1, Group: -1}); resp.Err == "" {
		t.Error("CreateTap over an existing veth succeeded")
	}
	if l, ok := showLink(t, ns, "nntap1"); !ok || l.Address != mac.String() {
		t.Errorf("nntap1 after a second CreateTap = %+v", l)
	}

	mustHelper(t, ns, helperReq{Op: "delete", Ifname: "nntap1"})
	if _, ok := showLink(t, ns, "nntap1"); ok {
		t.Error("DeleteLink left the persistent tap")
	}
}
