// Package cmdline turns kernel flags and the optional config file into a typed Config.
package cmdline

import (
	"net"
	"net/netip"
	"time"
)

// Config is everything nodenet reads from /proc/cmdline and /etc/nodenet.conf.
// The zero value means "no configuration": DHCP on every physical NIC.
//
// In JSON, DHCPTimeout and LANLease are duration strings ("2.5s") and MACs are
// "aa:bb:cc:dd:ee:ff" strings; see MarshalJSON.
type Config struct {
	// IP holds every ip= flag in the order given.
	IP []IPConfig `json:"ip,omitempty"`
	// DHCPOff is set by ip=off or ip=none without an interface: no automatic
	// DHCP on NICs that no ip= entry names.
	DHCPOff bool `json:"dhcp_off,omitempty"`
	// Nameservers from nameserver= (repeatable), in order.
	Nameservers []netip.Addr `json:"nameservers,omitempty"`
	// Renames from ifname=<name>:<mac>.
	Renames []Rename `json:"renames,omitempty"`
	// Uplinks from nodenet.uplinks=: interface names or MACs (lowercase,
	// colon form). Empty means every physical NIC.
	Uplinks []string `json:"uplinks,omitempty"`
	// Ignore from nodenet.ignore=: names or MACs never touched.
	Ignore []string `json:"ignore,omitempty"`
	// MTU from nodenet.mtu=<nic>:<mtu> (repeatable, comma lists allowed).
	MTU map[string]int `json:"mtu,omitempty"`
	// Datapath from nodenet.datapath=: "", "system" or "netdev".
	Datapath string `json:"datapath,omitempty"`
	// DHCPTimeout from nodenet.dhcp-timeout=<seconds>; 0 means the default.
	DHCPTimeout time.Duration `json:"dhcp_timeout,omitempty"`
	// LANLease from nodenet.lan-lease=<seconds>: the lease time the LANs'
	// DHCP servers give; 0 means their default (1 h).
	LANLease time.Duration `json:"lan_lease,omitempty"`
	// Debug from nodenet.debug (bare, or =1/=true/=yes/=on).
	Debug bool `json:"debug,omitempty"`
	// Warnings lists every malformed value that was skipped, each naming its flag.
	Warnings []string `json:"warnings,omitempty"`
}

// Autoconf is the method field of an ip= flag.
type Autoconf string

// Autoconf methods accepted by the kernel (nfsroot.rst) and dracut.
const (
	AutoNone    Autoconf = "none" // static (also "off"; the kernel's "" with a client address)
	AutoDHCP    Autoconf = "dhcp" // also "on", "any", "bootp", "both", "single-dhcp"
	AutoDHCP6   Autoconf = "dhcp6"
	AutoAuto6   Autoconf = "auto6"
	AutoEither6 Autoconf = "either6"
	AutoLink6   Autoconf = "link6"
	AutoIBFT    Autoconf = "ibft"
	AutoRARP    Autoconf = "rarp"
)

// IPConfig is one ip= flag.
type IPConfig struct {
	// Interface is the NIC this entry is for; "" means any/every NIC.
	Interface string `json:"interface,omitempty"`
	// Method is normalised: on/any/bootp/both/single-dhcp → dhcp, off → none.
	Method Autoconf `json:"method"`
	// ClientID is the DHCP client identifier of the kernel's
	// ip=dhcp,<type>,<value>; nil when not given.
	ClientID *ClientID `json:"client_id,omitempty"`
	// Static fields (long form). Zero values when absent. Client is kept with
	// a DHCP method too (the kernel's hint); only Method none makes it static.
	Client   netip.Prefix `json:"client,omitzero"` // address with its prefix length (from netmask, /prefix or the class)
	Peer     netip.Addr   `json:"peer,omitzero"`
	Gateway  netip.Addr   `json:"gateway,omitzero"`
	Hostname string       `json:"hostname,omitempty"`
	DNS      []netip.Addr `json:"dns,omitempty"`
	NTP      []netip.Addr `json:"ntp,omitempty"`
	MTU      int          `json:"mtu,omitempty"`
	MAC      MAC          `json:"mac,omitempty"` // dracut: set this address on Interface
}

// Static reports whether the entry configures an address itself (no DHCP).
func (c IPConfig) Static() bool { return c.Method == AutoNone && c.Client.IsValid() }

// off reports whether the entry is ip=off/none for its interface: no
// address and no autoconfiguration.
func (c IPConfig) off() bool { return c.Method == AutoNone && !c.Client.IsValid() }

// ClientID is a DHCP client identifier (option 61): Type, then Value's bytes.
type ClientID struct {
	Type  uint8  `json:"type"`
	Value string `json:"value"`
}

// Rename is one ifname= flag: the NIC with MAC gets Name.
type Rename struct {
	Name string `json:"name"`
	MAC  MAC    `json:"mac"`
}

// MAC is an Ethernet address that prints and marshals as "aa:bb:cc:dd:ee:ff".
// Convert with net.HardwareAddr(m) where the net package wants one.
type MAC net.HardwareAddr

func (m MAC) String() string { return net.HardwareAddr(m).String() }

// MarshalText renders m in lowercase colon form, "" for an empty MAC.
func (m MAC) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText accepts any form net.ParseMAC does, or "" for no MAC.
func (m *MAC) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*m = nil
		return nil
	}
	hw, err := net.ParseMAC(string(b))
	if err != nil {
		return err
	}
	*m = MAC(hw)
	return nil
}

// IPsFor returns the ip= entries for the NIC named ifname: every entry that
// names it, or, when none does, the interface-less entries other than
// ip=off/none. An interface-less static entry matches every NIC, as the
// kernel's does when the host has one; boot applies it to one NIC only.
func (c Config) IPsFor(ifname string) []IPConfig {
	var named, every []IPConfig
	for _, e := range c.IP {
		switch {
		case e.Interface == ifname && ifname != "":
			named = append(named, e)
		case e.Interface == "" && !e.off():
			every = append(every, e)
		}
	}
	if len(named) > 0 {
		return named
	}
	return every
}

// IPFor returns the first of IPsFor(ifname).
func (c Config) IPFor(ifname string) (IPConfig, bool) {
	if e := c.IPsFor(ifname); len(e) > 0 {
		return e[0], true
	}
	return IPConfig{}, false
}

// MTUFor returns the MTU to set on ifname: nodenet.mtu first, else the MTU
// field of its ip= entries; 0 means leave the MTU alone.
func (c Config) MTUFor(ifname string) int {
	if m, ok := c.MTU[ifname]; ok {
		return m
	}
	for _, e := range c.IPsFor(ifname) {
		if e.MTU > 0 {
			return e.MTU
		}
	}
	return 0
}
