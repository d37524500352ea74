package links

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/vishvananda/netns"

	"nodenet/internal/testenv"
)

// ipLink is the part of `ip -j -d link show` the tests check.
type ipLink struct {
	Ifname   string   `json:"ifname"`
	Address  string   `json:"address"`
	MTU      int      `json:"mtu"`
	TxQLen   int      `json:"txqlen"`
	Flags    []string `json:"flags"`
	Linkinfo struct {
		InfoKind string         `json:"info_kind"`
		InfoData map[string]any `json:"info_data"`
	} `json:"linkinfo"`
}

func (l ipLink) up() bool { return hasFlag(l.Flags, "UP") }

func hasFlag(flags []string, f string) bool {
	for _, x := range flags {
		if x == f {
			return true
		}
	}
	return false
}

// showLink returns a link of ns as ip sees it, or ok=false if it does not exist.
func showLink(t *testing.T, ns *testenv.Netns, name string) (ipLink, bool) {
	t.Helper()
	var links []ipLink
	if err := json.Unmarshal([]byte(ns.IP(t, "-j", "-d", "link", "show")), &links); err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if l.Ifname == name {
			return l, true
		}
	}
	return ipLink{}, false
}

func openNS(t *testing.T, ns *testenv.Netns) netns.NsHandle {
	t.Helper()
	h, _, err := OpenNetns(ns.Path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func TestCreateVeth(t *testing.T) {
	host, peer := testenv.NewNetns(t), testenv.NewNetns(t)
	hostName, tmpName := Name("nnv", "lan1", "web"), Name("nnp", "lan1", "web")
	mac := MAC("lan1", "web")
	mustHelper(t, host, helperReq{Op: "veth", Host: hostName, Peer: tmpName, PeerNS: peer.Path,
		Ifname: "eth0", MAC: mac.String(), MTU: 1400})

	h, ok := showLink(t, host, hostName)
	if !ok || h.Linkinfo.InfoKind != "veth" || h.MTU != 1400 || !h.up() {
		t.Errorf("host end %s = %+v, want a veth, mtu 1400, up", hostName, h)
	}
	p, ok := showLink(t, peer, "eth0")
	if !ok || p.Linkinfo.InfoKind != "veth" || p.MTU != 1400 || !p.up() || p.Address != mac.String() {
		t.Errorf("peer eth0 = %+v, want a veth, mtu 1400, up, MAC %s", p, mac)
	}
	// Carrier, not operstate: the kernel updates operstate up to a second later.
	if !hasFlag(h.Flags, "LOWER_UP") || !hasFlag(p.Flags, "LOWER_UP") {
		t.Errorf("flags host %v, peer %v; want carrier (LOWER_UP) on both", h.Flags, p.Flags)
	}
	if h.TxQLen != 1000 || p.TxQLen != 1000 {
		t.Errorf("txqlen host %d, peer %d; want the kernel's default 1000", h.TxQLen, p.TxQLen)
	}
	if _, ok := showLink(t, peer, tmpName); ok {
		t.Errorf("temporary name %s still in the peer namespace", tmpName)
	}
	if _, ok := showLink(t, host, "eth0"); ok {
		t.Error("peer landed in the host namespace")
	}
	// LinkInNS sees the peer from here, without entering the namespace.
	l, err := LinkInNS(openNS(t, peer), "eth0")
	if err != nil || l.Kind != "veth" || l.MAC.String() != mac.String() || !l.Up || l.MTU != 1400 {
		t.Errorf("LinkInNS(peer, eth0) = %+v, %v", l, err)
	}
	if _, err := LinkInNS(openNS(t, peer), "nope0"); !IsNotExist(err) {
		t.Errorf("LinkInNS(peer, nope0) = %v, want a not-exist error", err)
	}

	// Deleting the host end takes the peer too; deleting again is fine.
	for range 2 {
		mustHelper(t, host, helperReq{Op: "delete", Ifname: hostName})
	}
	if _, ok := showLink(t, peer, "eth0"); ok {
		t.Error("peer survived DeleteLink of the host end")
	}
}

// TestCreateVethUndo: a failure after the pair exists leaves nothing behind,
// and a failure to create touches nothing that was there.
func TestCreateVethUndo(t *testing.T) {
	host, peer := testenv.NewNetns(t), testenv.NewNetns(t)
	testenv.Veth(t, peer, "busy0", host, "taken0") // peer already has busy0

	// peerIfname clashes: the rename fails, the pair is deleted.
	resp := inHelper(t, host, helperReq{Op: "veth", Host: "nnvundo1", Peer: "nnpundo1", PeerNS: peer.Path, Ifname: "busy0"})
	if resp.Err == "" || !strings.Contains(resp.Err, "busy0") {
		t.Errorf("clash on peer name: error %q, want one naming busy0", resp.Err)
	}
	if _, ok := showLink(t, host, "nnvundo1"); ok {
		t.Error("host end left after a failed CreateVeth")
	}
	if _, ok := showLink(t, peer, "nnpundo1"); ok {
		t.Error("temporary peer left after a failed CreateVeth")
	}
	if _, ok := showLink(t, peer, "busy0"); !ok {
		t.Error("the existing busy0 was touched")
	}

	// hostName taken: nothing is created, the existing link stays.
	resp = inHelper(t, host, helperReq{Op: "veth", Host: "taken0", Peer: "nnpundo2", PeerNS: peer.Path, Ifname: "eth1"})
	if resp.Err == "" {
		t.Error("CreateVeth over an existing host name succeeded")
	}
	if _, ok := showLink(t, host, "taken0"); !ok {
		t.Error("the existing taken0 was deleted")
	}
	if _, ok := showLink(t, peer, "nnpundo2"); ok {
		t.Error("a peer was left behind")
	}

	// Invalid names and MACs are refused before the kernel is asked.
	for _, req := range []helperReq{
		{Host: "nnv/x", Peer: "p", Ifname: "eth0"},
		{Host: "nnvok", Peer: "p", Ifname: "eth0:1"},
		{Host: "nnvok", Peer: "p", Ifname: "eth0", MAC: "01:00:5e:00:00:01"},
	} {
		req.Op, req.PeerNS = "veth", peer.Path
		if resp := inHelper(t, host, req); resp.Err == "" {
			t.Errorf("CreateVeth(%+v) succeeded", req)
		}
	}
}
