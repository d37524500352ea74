// Command nodenet is the network module of an appliance OS: it brings the
// node's uplinks up and serves virtual LANs over a control socket.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"nodenet/api"
	"nodenet/cmdline"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `usage:
  nodenet [--socket PATH] status [--json]
  nodenet network create NAME --type T [--cidr C] [--gateway IP] [--dhcp] [--dns IP,..] [--no-nat] [--mtu N]
      [--vlan ID] [--vni N] [--remote IP,..] [--parent NIC] [--nic NIC] [--zt-network ID] [--mode M] [--json]
  nodenet network ls|show NAME|rm NAME [--json]
  nodenet join NETWORK [NIC] [--netns NS] [--ifname NAME] [--tap] [--mac MAC] [-p HOSTSPEC=PORT]... [--json]
  nodenet leave NETWORK NIC
  nodenet cmdline [--cmdline FILE] [--config FILE]
  nodenet daemon [--cmdline FILE] [--config FILE] [--state-dir DIR] [--socket PATH] [--resolv-conf PATH]
      [--ovsdb unix:PATH] [--ovs-supervise auto|always|never] [--ovs-dir DIR] [--datapath auto|system|netdev]
      [--zerotier-home DIR]
  nodenet version
Flags may follow the arguments of network, join and leave; a failed request
prints the daemon's sentence and exits 1, a command line mistake exits 2.
`

func main() {
	// The image links /sbin/modprobe to nodenet: the kernel's own module
	// requests (nftables expressions, link types) come here as modprobe.
	if filepath.Base(os.Args[0]) == "modprobe" {
		os.Exit(runModprobe(os.Args[1:], os.Stderr))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	global := flag.NewFlagSet("nodenet", flag.ContinueOnError)
	global.SetOutput(stderr)
	global.Usage = func() { fmt.Fprint(stderr, usage) }
	socket := global.String("socket", defaultSocket(), "control socket `path`")
	if err := global.Parse(args); err != nil {
		return 2
	}
	if global.NArg() == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := global.Arg(0), global.Args()[1:]
	var err error
	switch cmd {
	case "daemon":
		err = runDaemon(rest, *socket, stderr)
	case "status":
		err = runStatus(rest, *socket, stdout, stderr)
	case "network":
		err = runNetwork(rest, *socket, stdout, stderr)
	case "join":
		err = runJoin(rest, *socket, stdout, stderr)
	case "leave":
		err = runLeave(rest, *socket, stderr)
	case "cmdline":
		err = runCmdline(rest, stdout)
	case "version":
		fmt.Fprintln(stdout, "nodenet", version)
	default:
		fmt.Fprintf(stderr, "nodenet: unknown command %q\n%s", cmd, usage)
		return 2
	}
	var usageErr usageError
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &usageErr):
		if !usageErr.printed {
			fmt.Fprintln(stderr, "nodenet:", usageErr.err)
		}
		return 2
	default:
		fmt.Fprintln(stderr, "nodenet:", err)
		return 1
	}
	return 0
}

func defaultSocket() string {
	if s := os.Getenv("NODENET_SOCKET"); s != "" {
		return s
	}
	return api.DefaultSocket
}

func runCmdline(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("cmdline", flag.ContinueOnError)
	cmdlinePath := fs.String("cmdline", "/proc/cmdline", "kernel command line `file`")
	configPath := fs.String("config", "/etc/nodenet.conf", "optional config `file`")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := cmdline.ParseFiles(*cmdlinePath, *configPath)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, cfg)
	}
	fmt.Fprint(stdout, cfg.Format())
	return nil
}

func runStatus(args []string, socket string, stdout, stderr io.Writer) error {
	fs := newFlagSet("status", "usage: nodenet status [--json]\n", stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	fs.StringVar(&socket, "socket", socket, "control socket `path`")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("status: takes no arguments, got %s", strings.Join(pos, " "))
	}
	st, err := api.NewClient(socket).Status(context.Background())
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, st)
	}
	printStatus(stdout, st)
	return nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func joinOrDash(ss []string) string { return orDash(strings.Join(ss, ",")) }
