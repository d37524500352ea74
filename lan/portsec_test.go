package lan

import (
	"fmt"
	"strings"
	"testing"

	"nodenet/ovsdb"
)

func TestMemberCookie(t *testing.T) {
	a, b := memberCookie("lan1", "a"), memberCookie("lan1", "b")
	if a == b || a != memberCookie("lan1", "a") {
		t.Errorf("cookies %#x %#x: want distinct and stable", a, b)
	}
	if a&cookieMarkMask != cookieMark || memberCookie("lan", "1a")&cookieMarkMask != cookieMark {
		t.Errorf("cookie %#x lacks the mark %#x", a, cookieMark)
	}
	if memberCookie("lan1", "a") == memberCookie("lan1a", "") {
		t.Errorf("network and member run together")
	}
}

func TestPortRuleFlows(t *testing.T) {
	n := &network{settings: Settings{Name: "lan1"}}
	mem := Member{Name: "a", MAC: "02:00:00:00:00:0a", IP: "10.77.0.2", HostIfname: "nnvabc"}
	r, err := memberRule(n, mem)
	if err != nil {
		t.Fatal(err)
	}
	cookie := memberCookie("lan1", "a")
	var got []string
	for _, f := range r.flows(3) {
		got = append(got, f.String())
		if _, err := f.Marshal(1); err != nil {
			t.Errorf("%s: %v", f, err)
		}
		if f.Cookie != cookie {
			t.Errorf("%s: cookie %#x, want %#x", f, f.Cookie, cookie)
		}
	}
	c := fmt.Sprintf("cookie=%#x", cookie)
	want := []string{
		"add " + c + ",priority=90,in_port=3 actions=drop",
		"add " + c + ",priority=100,in_port=3,dl_src=02:00:00:00:00:0a,dl_type=0x0800,nw_src=10.77.0.2 actions=NORMAL",
		"add " + c + ",priority=100,in_port=3,dl_src=02:00:00:00:00:0a,dl_type=0x0806,arp_spa=10.77.0.2,arp_sha=02:00:00:00:00:0a actions=NORMAL",
		"add " + c + ",priority=100,in_port=3,dl_src=02:00:00:00:00:0a,dl_type=0x0806,arp_spa=0.0.0.0,arp_sha=02:00:00:00:00:0a actions=NORMAL",
		"add " + c + ",priority=100,in_port=3,dl_src=02:00:00:00:00:0a,dl_type=0x0800,nw_proto=17,nw_src=0.0.0.0,tp_dst=67 actions=NORMAL",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("flows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// A LAN without addressing: the MAC alone.
	mem.IP = ""
	r, err = memberRule(n, mem)
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	for _, f := range r.flows(3) {
		got = append(got, f.String())
	}
	if len(got) != 2 || !strings.HasSuffix(got[1], ",priority=100,in_port=3,dl_src=02:00:00:00:00:0a actions=NORMAL") {
		t.Errorf("MAC-only flows: %q", got)
	}

	for _, bad := range []Member{{Name: "a", MAC: "nope"}, {Name: "a", MAC: "02:00:00:00:00:0a", IP: "fd00::2"}} {
		if _, err := memberRule(n, bad); err == nil {
			t.Errorf("rule for %+v: no error", bad)
		}
	}
}

func TestClearPortSelectsOnlyNodenetFlows(t *testing.T) {
	f := clearPort(7)
	if f.CookieMask != cookieMarkMask || f.Cookie != cookieMark || f.Match.InPort != 7 {
		t.Errorf("clearPort: %s", f)
	}
}

func TestOVSRunDir(t *testing.T) {
	m := &Manager{OVS: &ovsdb.Client{Addr: "unix:/tmp/x/db.sock"}}
	if got := m.mgmtSocket("nnbabc"); got != "/tmp/x/nnbabc.mgmt" {
		t.Errorf("from the OVSDB socket: %s", got)
	}
	m.OVSRunDir = "/run/ovs"
	if got := m.mgmtSocket("nnbabc"); got != "/run/ovs/nnbabc.mgmt" {
		t.Errorf("OVSRunDir: %s", got)
	}
	m = &Manager{OVS: &ovsdb.Client{Addr: "tcp:127.0.0.1:6640"}}
	if got := m.ovsRunDir(); got != "/run/openvswitch" {
		t.Errorf("tcp OVSDB: %s", got)
	}
}
