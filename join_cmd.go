package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"

	"nodenet/api"
	"nodenet/lan"
)

const joinUsage = `usage:
  nodenet join NETWORK [NIC] [--netns NS] [--ifname NAME] [--tap] [--mac MAC] [-p [HOSTIP:]HOSTPORT[/tcp|/udp]=PORT]... [--json]
  nodenet leave NETWORK NIC
`

// joinCmd is a parsed `nodenet join`.
type joinCmd struct {
	socket, network, nic string
	opts                 lan.JoinOptions
	ports                lan.PortForwards
	json                 bool
}

func parseJoin(args []string, socket string, stderr io.Writer) (joinCmd, error) {
	c := joinCmd{socket: socket}
	var tap bool
	ports := portsFlag{}
	fs := newFlagSet("join", joinUsage, stderr)
	fs.StringVar(&c.socket, "socket", socket, "control socket `path`")
	fs.BoolVar(&c.json, "json", false, "print the API's JSON")
	fs.StringVar(&c.opts.Netns, "netns", "", "`netns` for the member: a name under /run/netns, /run/netns/NAME or /proc/PID/ns/net")
	fs.StringVar(&c.opts.Ifname, "ifname", "", "interface `name` inside the netns (default: the NIC)")
	fs.BoolVar(&tap, "tap", false, "make a tap for a VM instead of a veth")
	fs.StringVar(&c.opts.MAC, "mac", "", "the member's `MAC` (default: derived from its name)")
	fs.Var(ports, "p", "forward a host port to the member: `[HOSTIP:]HOSTPORT[/tcp|/udp]=PORT`; repeatable")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return c, err
	}
	if len(pos) < 1 || len(pos) > 2 {
		return c, usagef("join: want NETWORK [NIC], got %d arguments", len(pos))
	}
	c.network = pos[0]
	if len(pos) == 2 {
		c.nic = pos[1]
	}
	if tap {
		c.opts.Kind = "tap"
	}
	if len(ports) > 0 {
		c.ports = lan.PortForwards(ports)
	}
	return c, nil
}

// runJoin is `nodenet join`: it prints the new member.
func runJoin(args []string, socket string, stdout, stderr io.Writer) error {
	c, err := parseJoin(args, socket, stderr)
	if err != nil {
		return err
	}
	m, err := api.NewClient(c.socket).Join(context.Background(), c.network, c.nic, c.ports, c.opts)
	if err != nil {
		return err
	}
	if c.json {
		return printJSON(stdout, m)
	}
	printMembers(stdout, []lan.Member{m})
	return nil
}

// runLeave is `nodenet leave`: silent on success.
func runLeave(args []string, socket string, stderr io.Writer) error {
	fs := newFlagSet("leave", joinUsage, stderr)
	fs.StringVar(&socket, "socket", socket, "control socket `path`")
	fs.Bool("json", false, "accepted for symmetry; leave prints nothing")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usagef("leave: want NETWORK NIC, got %d arguments", len(pos))
	}
	return api.NewClient(socket).Leave(context.Background(), pos[0], pos[1])
}

// portsFlag collects -p flags, each checked as it is given.
type portsFlag lan.PortForwards

func (p portsFlag) String() string { return "" }

func (p portsFlag) Set(s string) error {
	key, port, err := parsePortForward(s)
	if err != nil {
		return err
	}
	if _, dup := p[key]; dup {
		return fmt.Errorf("%s is forwarded twice", key)
	}
	p[key] = port
	return nil
}

// parsePortForward reads "[HOSTIP:]HOSTPORT[/tcp|/udp]=PORT" and returns
// the key as lan.PortForwards spells it, normalized, and the member port.
func parsePortForward(s string) (string, uint32, error) {
	const want = "want [HOSTIP:]HOSTPORT[/tcp|/udp]=PORT, such as 8080=80 or 127.0.0.1:5353/udp=53"
	spec, memberPort, ok := strings.Cut(s, "=")
	if !ok || spec == "" || memberPort == "" {
		return "", 0, errors.New(want)
	}
	port, err := parsePort(memberPort)
	if err != nil {
		return "", 0, fmt.Errorf("member port %w", err)
	}
	host, proto, hasProto := strings.Cut(spec, "/")
	if hasProto && proto != "tcp" && proto != "udp" {
		return "", 0, fmt.Errorf("protocol %q: want tcp or udp", proto)
	}
	var key string
	if strings.ContainsAny(host, ":[") {
		ap, err := netip.ParseAddrPort(host)
		if err != nil || ap.Port() == 0 {
			return "", 0, fmt.Errorf("host %q: want IP:PORT, IPv6 in brackets", host)
		}
		key = ap.String()
	} else {
		hostPort, err := parsePort(host)
		if err != nil {
			return "", 0, fmt.Errorf("host port %w", err)
		}
		key = strconv.Itoa(int(hostPort))
	}
	if hasProto {
		key += "/" + proto
	}
	return key, port, nil
}

func parsePort(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%q: want 1-65535", s)
	}
	return uint32(n), nil
}
