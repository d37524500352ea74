package testenv

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// Veth wires namespace a to namespace b with a veth pair whose ends are
// created directly inside them (never in the machine's namespace). aName is
// the node's side and is left DOWN: bringing uplinks up is what nodenet is
// tested for. bName is the peer's side (dnsmasq, a client) and is set up.
func Veth(t testing.TB, a *Netns, aName string, b *Netns, bName string) {
	t.Helper()
	if out, err := ipCmd("link", "add", aName, "netns", a.Name, "type", "veth",
		"peer", "name", bName, "netns", b.Name).CombinedOutput(); err != nil {
		t.Fatalf("veth %s/%s <-> %s/%s: %v: %s", a.Name, aName, b.Name, bName, err, out)
	}
	LinkUp(t, b, bName)
}

// LinkUp sets a link of ns up.
func LinkUp(t testing.TB, ns *Netns, name string) {
	t.Helper()
	ns.IP(t, "link", "set", "dev", name, "up")
}

// LinkDown sets a link of ns down (no carrier on its peer).
func LinkDown(t testing.TB, ns *Netns, name string) {
	t.Helper()
	ns.IP(t, "link", "set", "dev", name, "down")
}

// AddAddr adds an address in CIDR form to a link of ns.
func AddAddr(t testing.TB, ns *Netns, ifname, cidr string) {
	t.Helper()
	ns.IP(t, "addr", "add", cidr, "dev", ifname)
}

// Addrs returns the IPv4 addresses of ifname in CIDR form ("10.77.0.100/24").
func (n *Netns) Addrs(t testing.TB, ifname string) []string {
	t.Helper()
	addrs, err := n.addrs(ifname)
	if err != nil {
		t.Fatal(err)
	}
	return addrs
}

func (n *Netns) addrs(ifname string) ([]string, error) {
	out, err := ipCmd("-n", n.Name, "-j", "-4", "addr", "show", "dev", ifname).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("netns %s: addresses of %s: %v: %s", n.Name, ifname, err, out)
	}
	var links []struct {
		AddrInfo []struct {
			Family    string `json:"family"`
			Local     string `json:"local"`
			Prefixlen int    `json:"prefixlen"`
		} `json:"addr_info"`
	}
	if err := json.Unmarshal(out, &links); err != nil {
		return nil, fmt.Errorf("netns %s: addresses of %s: %w: %s", n.Name, ifname, err, out)
	}
	addrs := []string{}
	for _, l := range links {
		for _, a := range l.AddrInfo {
			if a.Family == "inet" {
				addrs = append(addrs, fmt.Sprintf("%s/%d", a.Local, a.Prefixlen))
			}
		}
	}
	return addrs, nil
}

// Route is one IPv4 default route as `ip -j route` shows it.
type Route struct {
	Dev      string `json:"dev"`
	Gateway  string `json:"gateway"`
	Metric   int    `json:"metric"`
	Protocol string `json:"protocol"`
}

func (r Route) String() string {
	return fmt.Sprintf("default via %s dev %s metric %d proto %s", r.Gateway, r.Dev, r.Metric, r.Protocol)
}

// DefaultRoutes returns the IPv4 default routes of the main table.
func (n *Netns) DefaultRoutes(t testing.TB) []Route {
	t.Helper()
	out := n.IP(t, "-j", "-4", "route", "show", "default")
	routes := []Route{}
	if strings.TrimSpace(out) == "" {
		return routes
	}
	if err := json.Unmarshal([]byte(out), &routes); err != nil {
		t.Fatalf("netns %s: default routes: %v: %s", n.Name, err, out)
	}
	return routes
}
