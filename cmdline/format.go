package cmdline

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Format renders c for `nodenet cmdline`: one fact a line, warnings last.
// Every value in c is validated or quoted, so each fact stays on its line.
func (c Config) Format() string {
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	if len(c.IP) == 0 {
		line("ip: none given, DHCP on every uplink")
	}
	for i, e := range c.IP {
		line("ip[%d]: %s", i, e.format())
	}
	if c.DHCPOff {
		line("dhcp: off on NICs that no ip= names")
	}
	if len(c.Nameservers) > 0 {
		line("nameservers: %s", joinAddrs(c.Nameservers))
	}
	for _, r := range c.Renames {
		line("rename: %s -> %s", r.MAC, r.Name)
	}
	if len(c.Uplinks) > 0 {
		line("uplinks: %s", strings.Join(c.Uplinks, ","))
	} else {
		line("uplinks: every physical NIC")
	}
	if len(c.Ignore) > 0 {
		line("ignore: %s", strings.Join(c.Ignore, ","))
	}
	if len(c.MTU) > 0 {
		var mtus []string
		for _, nic := range slices.Sorted(maps.Keys(c.MTU)) {
			mtus = append(mtus, nic+"="+strconv.Itoa(c.MTU[nic]))
		}
		line("mtu: %s", strings.Join(mtus, " "))
	}
	if c.Datapath != "" {
		line("datapath: %s", c.Datapath)
	}
	if c.DHCPTimeout > 0 {
		line("dhcp-timeout: %s", c.DHCPTimeout)
	}
	if c.LANLease > 0 {
		line("lan-lease: %s", c.LANLease)
	}
	if c.Debug {
		line("debug: on")
	}
	for _, w := range c.Warnings {
		line("warning: %s", w)
	}
	return b.String()
}

// format renders one ip= entry as key=value pairs, omitting empty fields.
func (e IPConfig) format() string {
	iface := e.Interface
	if iface == "" {
		iface = "*"
	}
	parts := []string{"interface=" + iface, "method=" + string(e.Method)}
	add := func(key, val string) {
		if val != "" {
			parts = append(parts, key+"="+val)
		}
	}
	if e.ClientID != nil {
		add("client-id", fmt.Sprintf("%d,%q", e.ClientID.Type, e.ClientID.Value))
	}
	if e.Client.IsValid() {
		add("client", e.Client.String())
	}
	if e.Peer.IsValid() {
		add("peer", e.Peer.String())
	}
	if e.Gateway.IsValid() {
		add("gateway", e.Gateway.String())
	}
	add("hostname", e.Hostname)
	add("dns", joinAddrs(e.DNS))
	add("ntp", joinAddrs(e.NTP))
	if e.MTU > 0 {
		add("mtu", strconv.Itoa(e.MTU))
	}
	add("mac", e.MAC.String())
	return strings.Join(parts, " ")
}

func joinAddrs(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ",")
}

// plainConfig has Config's fields without its methods, so the JSON
// methods below can reuse the default encoding without recursing.
type plainConfig Config

// configJSON replaces the durations' nanosecond counts with duration
// strings; the shallower fields win over the embedded ones.
type configJSON struct {
	plainConfig
	DHCPTimeout string `json:"dhcp_timeout,omitempty"`
	LANLease    string `json:"lan_lease,omitempty"`
}

// MarshalJSON writes the durations as strings ("2.5s") rather than
// nanoseconds; MACs are strings through MAC.MarshalText.
func (c Config) MarshalJSON() ([]byte, error) {
	return json.Marshal(configJSON{plainConfig: plainConfig(c),
		DHCPTimeout: durationString(c.DHCPTimeout), LANLease: durationString(c.LANLease)})
}

func durationString(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

func parseDurationField(name, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	return d, nil
}

// UnmarshalJSON reads what MarshalJSON writes.
func (c *Config) UnmarshalJSON(b []byte) error {
	var j configJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*c = Config(j.plainConfig)
	var err1, err2 error
	c.DHCPTimeout, err1 = parseDurationField("dhcp_timeout", j.DHCPTimeout)
	c.LANLease, err2 = parseDurationField("lan_lease", j.LANLease)
	return errors.Join(err1, err2)
}
