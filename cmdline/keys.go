package cmdline

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// handler applies one value of its key to c. It returns the problems it
// found (errors.Join for several); what it could parse it still applies.
type handler func(c *Config, val string) error

// handlers holds every key nodenet reads, after alias and '_'→'-'
// normalisation.
var handlers = map[string]handler{
	"ip":                   setIP,
	"nameserver":           setNameserver,
	"ifname":               setRename,
	"nodenet.uplinks":      func(c *Config, v string) error { return addNICs(&c.Uplinks, v) },
	"nodenet.ignore":       func(c *Config, v string) error { return addNICs(&c.Ignore, v) },
	"nodenet.mtu":          setMTU,
	"nodenet.datapath":     setDatapath,
	"nodenet.dhcp-timeout": setDHCPTimeout,
	"nodenet.lan-lease":    setLANLease,
	"nodenet.debug":        setDebug,
}

func setIP(c *Config, val string) error {
	e, err := parseIP(val)
	if err != nil {
		return err
	}
	if e.Interface == "" && e.off() {
		c.DHCPOff = true
	}
	c.IP = append(c.IP, e)
	return nil
}

// setNameserver takes an address with or without brackets; a zone is
// allowed since a link-local resolver needs one.
func setNameserver(c *Config, val string) error {
	a, err := parseAddr(val, true)
	if err != nil || !a.IsValid() || a.IsMulticast() {
		return fmt.Errorf("bad nameserver address %q", val)
	}
	c.Nameservers = append(c.Nameservers, a)
	return nil
}

// setRename reads ifname=<name>:<mac>. A name or MAC that an earlier
// ifname= already binds differently is refused: udev would apply only one.
func setRename(c *Config, val string) error {
	name, mac, ok := strings.Cut(val, ":")
	if !ok {
		return fmt.Errorf("want <name>:<mac>, got %q", val)
	}
	if err := checkIfname(name); err != nil {
		return err
	}
	hw, err := parseMAC(mac)
	if err != nil {
		return err
	}
	for _, r := range c.Renames {
		same := r.Name == name
		if sameMAC := slices.Equal(r.MAC, hw); same && sameMAC {
			return nil
		} else if same || sameMAC {
			return fmt.Errorf("conflicts with earlier ifname=%s:%s", r.Name, r.MAC)
		}
	}
	c.Renames = append(c.Renames, Rename{Name: name, MAC: hw})
	return nil
}

// addNICs appends a comma list of interface names or MACs to list, MACs in
// lowercase colon form, skipping duplicates. A 6-byte MAC in any form
// (also "aabb.ccdd.eeff", which is a valid name too) reads as a MAC.
func addNICs(list *[]string, val string) error {
	var errs []error
	for _, item := range strings.Split(val, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if mac, err := parseMAC(item); err == nil {
			item = mac.String()
		} else if strings.Contains(item, ":") {
			errs = append(errs, err)
			continue
		} else if err := checkIfname(item); err != nil {
			errs = append(errs, err)
			continue
		}
		if !slices.Contains(*list, item) {
			*list = append(*list, item)
		}
	}
	return errors.Join(errs...)
}

// setMTU reads <nic>:<mtu>[,<nic>:<mtu>]...; a later value for a NIC wins.
func setMTU(c *Config, val string) error {
	var errs []error
	for _, item := range strings.Split(val, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, mtu, ok := strings.Cut(item, ":")
		if !ok {
			errs = append(errs, fmt.Errorf("want <nic>:<mtu>, got %q", item))
			continue
		}
		if err := checkIfname(name); err != nil {
			errs = append(errs, err)
			continue
		}
		n, err := parseMTU(mtu)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			continue
		}
		if c.MTU == nil {
			c.MTU = make(map[string]int)
		}
		c.MTU[name] = n
	}
	return errors.Join(errs...)
}

func setDatapath(c *Config, val string) error {
	if val != "system" && val != "netdev" {
		return fmt.Errorf("unknown datapath %q: want system or netdev", val)
	}
	c.Datapath = val
	return nil
}

// setDHCPTimeout reads seconds as an integer or a decimal ("2.5"), in
// (0, 3600]; exponents, signs and units are refused.
func setDHCPTimeout(c *Config, val string) error {
	whole, frac, dot := strings.Cut(val, ".")
	if !isDigits(whole) || dot && !isDigits(frac) {
		return fmt.Errorf("bad number of seconds %q", val)
	}
	d, err := time.ParseDuration(val + "s")
	if err != nil || d <= 0 || d > time.Hour {
		return fmt.Errorf("bad number of seconds %q: want more than 0, at most 3600", val)
	}
	c.DHCPTimeout = d
	return nil
}

// setLANLease reads whole seconds in [10, 604800] (a week): shorter leases
// would have clients renew more often than every 5 s.
func setLANLease(c *Config, val string) error {
	n, err := strconv.Atoi(val)
	if !isDigits(val) || err != nil || n < 10 || n > 7*24*3600 {
		return fmt.Errorf("bad number of seconds %q: want a whole number from 10 to 604800", val)
	}
	c.LANLease = time.Duration(n) * time.Second
	return nil
}

// setDebug: bare (or empty) and 1/true/yes/on enable, 0/false/no/off disable.
func setDebug(c *Config, val string) error {
	switch strings.ToLower(val) {
	case "", "1", "true", "yes", "on":
		c.Debug = true
	case "0", "false", "no", "off":
		c.Debug = false
	default:
		return fmt.Errorf("bad boolean %q: want 1/true/yes/on or 0/false/no/off", val)
	}
	return nil
}
