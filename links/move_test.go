package links

import (
	"errors"
	"os"
	"testing"

	"nodenet/internal/testenv"
)

// TestMoveLink moves a tap (what zerotier-one makes) into another netns
// under a new name and back, including back to a namespace that has a
// link of the moved one's current name, and checks a clash changes nothing.
func TestMoveLink(t *testing.T) {
	node, member := testenv.NewNetns(t), testenv.NewNetns(t)
	const dev = "ztabc12345"
	node.IP(t, "tuntap", "add", "dev", dev, "mode", "tap")
	node.IP(t, "link", "set", dev, "address", "32:07:df:07:02:6d", "up")
	node.IP(t, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p") // the node's own eth0
	nodeNS, memberNS := openNS(t, node), openNS(t, member)

	if err := MoveLink(nodeNS, dev, memberNS, "eth0"); err != nil {
		t.Fatalf("move in: %v", err)
	}
	l, ok := showLink(t, member, "eth0")
	if !ok || l.Address != "32:07:df:07:02:6d" || l.Linkinfo.InfoKind != "tun" {
		t.Errorf("member eth0 = %+v, %v; want the tap with its MAC", l, ok)
	}
	if _, ok := showLink(t, node, dev); ok {
		t.Errorf("%s still in the node", dev)
	}
	if _, ok := showLink(t, node, "eth0"); !ok {
		t.Error("the node's own eth0 went missing")
	}

	// A clash: the node holds eth0, so eth0 cannot come back as eth0.
	err := MoveLink(memberNS, "eth0", nodeNS, "eth0")
	if !errors.Is(err, os.ErrExist) {
		t.Errorf("move onto a taken name: %v, want an ErrExist error", err)
	}
	if _, ok := showLink(t, member, "eth0"); !ok {
		t.Error("a refused move moved the link anyway")
	}

	// Back under its original name, past the node's eth0.
	if err := MoveLink(memberNS, "eth0", nodeNS, dev); err != nil {
		t.Fatalf("move back: %v", err)
	}
	if l, ok := showLink(t, node, dev); !ok || l.Address != "32:07:df:07:02:6d" {
		t.Errorf("node %s = %+v, %v; want the tap back", dev, l, ok)
	}
	if _, ok := showLink(t, member, "eth0"); ok {
		t.Error("eth0 still in the member")
	}
	if err := MoveLink(memberNS, "nope0", nodeNS, "x"); !IsNotExist(err) {
		t.Errorf("move of a missing link: %v, want a not-exist error", err)
	}
}
