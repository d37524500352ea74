package boot

import (
	"net"
	"strings"

	"nodenet/cmdline"
	"nodenet/links"
)

// role is what nodenet does with a link it sees.
type role int

const (
	roleNone   role = iota // not ours: leave it alone
	roleLinkUp             // bring it up, configure nothing (ip=off, IPv6-only methods)
	roleDHCP
	roleStatic
)

func (r role) String() string {
	return [...]string{"none", "link-up", "dhcp", "static"}[r]
}

// decide picks the role of a link from the flags. Order matters:
// nodenet.ignore wins over everything; links enslaved to a bridge or bond
// belong to it; an ip= flag naming the link makes it an uplink; otherwise
// nodenet.uplinks, or every physical NIC when that is empty.
// anyEntry is the interface-less ip= entry still unclaimed, if any.
func decide(cfg cmdline.Config, l links.Link, physical bool, anyEntry *cmdline.IPConfig) (role, cmdline.IPConfig, string) {
	switch {
	case l.Name == "lo":
		return roleNone, cmdline.IPConfig{}, "loopback"
	case matchesAny(cfg.Ignore, l):
		return roleNone, cmdline.IPConfig{}, "nodenet.ignore"
	case l.Master != 0:
		return roleNone, cmdline.IPConfig{}, "enslaved to another device"
	}
	if e, ok := entryFor(cfg, l.Name); ok {
		return roleOf(e), e, "ip=" + l.Name
	}
	if len(cfg.Uplinks) > 0 && !matchesAny(cfg.Uplinks, l) {
		return roleNone, cmdline.IPConfig{}, "not in nodenet.uplinks"
	}
	if len(cfg.Uplinks) == 0 && !physical {
		return roleNone, cmdline.IPConfig{}, "not a physical NIC"
	}
	if anyEntry != nil {
		return roleOf(*anyEntry), *anyEntry, "ip="
	}
	if cfg.DHCPOff {
		return roleLinkUp, cmdline.IPConfig{Method: cmdline.AutoNone}, "ip=off"
	}
	return roleDHCP, cmdline.IPConfig{Method: cmdline.AutoDHCP}, "default"
}

func roleOf(e cmdline.IPConfig) role {
	switch {
	case e.Static():
		return roleStatic
	case e.Method == cmdline.AutoDHCP:
		return roleDHCP
	case e.Method == cmdline.AutoNone:
		return roleNone
	default: // IPv6 autoconf methods: the kernel does SLAAC on an up link
		return roleLinkUp
	}
}

// entryFor is the ip= flag naming the interface, the last one winning as on
// the kernel's command line.
func entryFor(cfg cmdline.Config, name string) (cmdline.IPConfig, bool) {
	var found cmdline.IPConfig
	ok := false
	for _, e := range cfg.IP {
		if e.Interface == name {
			found, ok = e, true
		}
	}
	return found, ok
}

// interfacelessEntry is an ip= flag that names no interface and says more
// than on/off: a DHCP method applies to every uplink, a static address to
// the first one only (as the kernel does).
func interfacelessEntry(cfg cmdline.Config) *cmdline.IPConfig {
	for i := len(cfg.IP) - 1; i >= 0; i-- {
		e := cfg.IP[i]
		if e.Interface == "" && (e.Static() || e.Method != cmdline.AutoNone) {
			return &e
		}
	}
	return nil
}

func matchesAny(list []string, l links.Link) bool {
	for _, s := range list {
		if s == l.Name {
			return true
		}
		if mac, err := net.ParseMAC(s); err == nil && l.MAC != nil && strings.EqualFold(mac.String(), l.MAC.String()) {
			return true
		}
	}
	return false
}
