package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"

	"nodenet/api"
	"nodenet/lan"
)

const networkUsage = `usage:
  nodenet network create NAME --type T [--cidr C] [--gateway IP] [--dhcp] [--dns IP,..] [--no-nat] [--mtu N]
      [--vlan ID] [--vni N] [--remote IP,..] [--parent NIC] [--nic NIC] [--zt-network ID] [--mode M] [--json]
  nodenet network ls [--json]
  nodenet network show NAME [--json]
  nodenet network set NAME --remote IP,..   (a vxlan network's remotes; --remote "" for none)
  nodenet network rm NAME
`

// runNetwork is `nodenet network ...`.
func runNetwork(args []string, socket string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, networkUsage)
		return usageError{err: fmt.Errorf("network: want create, ls, show, set or rm"), printed: false}
	}
	switch args[0] {
	case "create":
		c, err := parseCreate(args[1:], socket, stderr)
		if err != nil {
			return err
		}
		client, ctx := api.NewClient(c.socket), context.Background()
		if err := client.Create(ctx, c.settings.Name, c.settings.Type, c.settings); err != nil {
			return err
		}
		info, err := client.Get(ctx, c.settings.Name)
		if err != nil {
			return err
		}
		return printInfo(stdout, info, c.json)
	case "set":
		return runNetworkSet(args[1:], socket, stdout, stderr)
	case "ls", "show", "rm":
		c, err := parseNetworkCmd(args[0], args[1:], socket, stderr)
		if err != nil {
			return err
		}
		client, ctx := api.NewClient(c.socket), context.Background()
		switch args[0] {
		case "ls":
			infos, err := client.List(ctx)
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(stdout, infos)
			}
			printNetworks(stdout, infos)
			return nil
		case "show":
			info, err := client.Get(ctx, c.name)
			if err != nil || c.json || !info.Network.DHCP {
				if err != nil {
					return err
				}
				return printInfo(stdout, info, c.json)
			}
			leases, err := client.Leases(ctx, c.name)
			if err != nil {
				return err
			}
			printNetwork(stdout, info)
			printLeases(stdout, leases)
			return nil
		default:
			return client.Destroy(ctx, c.name)
		}
	}
	fmt.Fprint(stderr, networkUsage)
	return usagef("network %q: want create, ls, show, set or rm", args[0])
}

// runNetworkSet is `nodenet network set NAME --remote IP,..`: what may
// change on a live network.
func runNetworkSet(args []string, socket string, stdout, stderr io.Writer) error {
	var remotes listFlag
	var asJSON bool
	fs := newFlagSet("network set", networkUsage, stderr)
	fs.StringVar(&socket, "socket", socket, "control socket `path`")
	fs.Var(&remotes, "remote", "VXLAN remote `addresses`, comma-separated; \"\" for none")
	fs.BoolVar(&asJSON, "json", false, "print the API's JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("network set: want one network name")
	}
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == "remote" })
	if !set {
		return usagef("network set %s: nothing to change (--remote)", pos[0])
	}
	client, ctx := api.NewClient(socket), context.Background()
	u := lan.Update{VXLan: &lan.VXLanUpdate{Remotes: append([]string{}, remotes...)}}
	if err := client.Update(ctx, pos[0], u); err != nil {
		return err
	}
	info, err := client.Get(ctx, pos[0])
	if err != nil {
		return err
	}
	return printInfo(stdout, info, asJSON)
}

func printInfo(w io.Writer, info lan.Info, asJSON bool) error {
	if asJSON {
		return printJSON(w, info)
	}
	printNetwork(w, info)
	return nil
}

// networkCmd is a parsed `network ls|show|rm`.
type networkCmd struct {
	socket, name string
	json         bool
}

func parseNetworkCmd(verb string, args []string, socket string, stderr io.Writer) (networkCmd, error) {
	c := networkCmd{socket: socket}
	fs := newFlagSet("network "+verb, networkUsage, stderr)
	fs.StringVar(&c.socket, "socket", socket, "control socket `path`")
	fs.BoolVar(&c.json, "json", false, "print the API's JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return c, err
	}
	want := 1
	if verb == "ls" {
		want = 0
	}
	if len(pos) != want {
		if want == 0 {
			return c, usagef("network ls: takes no arguments, got %s", strings.Join(pos, " "))
		}
		return c, usagef("network %s: want one NAME, got %d arguments", verb, len(pos))
	}
	if want == 1 {
		c.name = pos[0]
	}
	return c, nil
}

// createCmd is a parsed `network create`.
type createCmd struct {
	socket   string
	json     bool
	settings lan.Settings
}

// typeFlags are the flags that fill one type's block of the settings.
var typeFlags = map[string][]lan.NetworkType{
	"vlan":       {lan.VLan},
	"vni":        {lan.VXLan},
	"remote":     {lan.VXLan},
	"parent":     {lan.VLan, lan.VXLan, lan.MacVLan},
	"mode":       {lan.MacVLan},
	"nic":        {lan.PassThrough},
	"zt-network": {lan.Zerotier},
}

func parseCreate(args []string, socket string, stderr io.Writer) (createCmd, error) {
	c := createCmd{socket: socket}
	var typ, cidr, gateway, parent, nic, zt, mode string
	var dhcp, noNAT bool
	var mtu, vlan, vni int
	var dns, remotes listFlag
	fs := newFlagSet("network create", networkUsage, stderr)
	fs.StringVar(&c.socket, "socket", socket, "control socket `path`")
	fs.BoolVar(&c.json, "json", false, "print the API's JSON")
	fs.StringVar(&typ, "type", "", "network `type`: bridge, vlan, vxlan, macvlan, passthrough or zerotier")
	fs.StringVar(&cidr, "cidr", "", "IPv4 `prefix` of the LAN, such as 10.10.0.0/24")
	fs.StringVar(&gateway, "gateway", "", "gateway `address` inside the cidr, held by the node")
	fs.BoolVar(&dhcp, "dhcp", false, "serve DHCP to members (else nodenet sets their addresses)")
	fs.Var(&dns, "dns", "DNS `servers` handed to members, comma-separated")
	fs.BoolVar(&noNAT, "no-nat", false, "no masquerading out of the uplinks")
	fs.IntVar(&mtu, "mtu", 0, "`MTU` of the LAN (0: default)")
	fs.IntVar(&vlan, "vlan", 0, "VLAN `ID` (vlan)")
	fs.IntVar(&vni, "vni", 0, "VXLAN `VNI` (vxlan)")
	fs.Var(&remotes, "remote", "VXLAN remote `addresses`, comma-separated (vxlan)")
	fs.StringVar(&parent, "parent", "", "parent `NIC` (vlan, vxlan, macvlan)")
	fs.StringVar(&mode, "mode", "", "macvlan `mode` (macvlan)")
	fs.StringVar(&nic, "nic", "", "the physical `NIC` (passthrough)")
	fs.StringVar(&zt, "zt-network", "", "ZeroTier network `ID` (zerotier)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return c, err
	}
	if len(pos) != 1 {
		return c, usagef("network create: want one NAME, got %d arguments", len(pos))
	}
	if typ == "" {
		return c, usagef("network create: --type is required (bridge, vlan, vxlan, macvlan, passthrough or zerotier)")
	}
	t, err := lan.ParseNetworkType(typ)
	if err != nil {
		return c, usagef("network create: --type: %v", err)
	}
	var misplaced error
	fs.Visit(func(f *flag.Flag) {
		if types, ok := typeFlags[f.Name]; ok && misplaced == nil && !hasType(types, t) {
			misplaced = usagef("network create: --%s is for --type %s, not %s", f.Name, typeList(types), t)
		}
	})
	if misplaced != nil {
		return c, misplaced
	}
	s := lan.Settings{Name: pos[0], Type: t, MTU: mtu,
		Network: lan.IPSettings{DHCP: dhcp, CIDR: cidr, Gateway: gateway, DNS: dns}}
	if noNAT {
		s.NAT = new(bool)
	}
	switch t {
	case lan.VLan:
		s.VLan = &lan.VLanSettings{ID: vlan, Parent: parent}
	case lan.VXLan:
		s.VXLan = &lan.VXLanSettings{VNI: vni, Remotes: remotes, Parent: parent}
	case lan.MacVLan:
		s.MacVLan = &lan.MacVLanSettings{Parent: parent, Mode: mode}
	case lan.PassThrough:
		s.PassThrough = &lan.PassThroughSetting{NIC: nic}
	case lan.Zerotier:
		s.Zerotier = &lan.ZerotierSettings{NetworkID: zt}
	}
	c.settings = s
	return c, nil
}

func hasType(types []lan.NetworkType, t lan.NetworkType) bool {
	for _, x := range types {
		if x == t {
			return true
		}
	}
	return false
}

// typeList spells types as "vlan, vxlan or macvlan".
func typeList(types []lan.NetworkType) string {
	names := make([]string, len(types))
	for i, t := range types {
		names[i] = t.String()
	}
	sort.Strings(names)
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}
