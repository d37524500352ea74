package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"

	"nodenet/api"
	"nodenet/boot"
	"nodenet/cmdline"
	"nodenet/fw"
	"nodenet/lan"
)

type daemonFlags struct {
	cmdline, config, stateDir, socket, resolvConf string
	ovsdb, ovsSupervise, ovsDir, datapath         string
	socketGroup                                   string
	zerotierHome                                  string
	gid                                           int // socketGroup resolved; 0: root only
}

func parseDaemonFlags(args []string, socket string) (daemonFlags, error) {
	f := daemonFlags{socket: socket}
	fs := flag.NewFlagSet("daemon", flag.ContinueOnError)
	fs.StringVar(&f.cmdline, "cmdline", "/proc/cmdline", "kernel command line `file`")
	fs.StringVar(&f.config, "config", "/etc/nodenet.conf", "optional config `file`")
	fs.StringVar(&f.stateDir, "state-dir", "/var/lib/nodenet", "state `directory`")
	fs.StringVar(&f.socket, "socket", socket, "control socket `path`")
	fs.StringVar(&f.socketGroup, "socket-group", "", "`group` (name or gid) that may use the control socket beside root")
	fs.StringVar(&f.resolvConf, "resolv-conf", "/etc/resolv.conf", "resolv.conf `path` to write (empty: never)")
	fs.StringVar(&f.ovsdb, "ovsdb", "unix:/run/openvswitch/db.sock", "OVSDB `address` (unix:PATH or tcp:HOST:PORT)")
	fs.StringVar(&f.ovsSupervise, "ovs-supervise", boot.OVSAuto, "run ovsdb-server and ovs-vswitchd: auto, always or never")
	fs.StringVar(&f.ovsDir, "ovs-dir", "", "`directory` for a supervised OVS's database, pid files and logs (default: OVS's own)")
	fs.StringVar(&f.zerotierHome, "zerotier-home", lan.DefaultZerotierHome, "zerotier-one's home `directory` (its authtoken.secret and zerotier-one.port)")
	fs.StringVar(&f.datapath, "datapath", "", "OVS datapath: auto, system or netdev (default: nodenet.datapath=, else auto)")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if err := f.check(); err != nil {
		return f, err
	}
	gid, err := lookupGroup(f.socketGroup)
	f.gid = gid
	return f, err
}

// lookupGroup resolves --socket-group: a gid as is, a name through
// /etc/group (an initramfs may have none, so a number always works).
func lookupGroup(name string) (int, error) {
	if name == "" {
		return 0, nil
	}
	if gid, err := strconv.Atoi(name); err == nil && gid >= 0 {
		return gid, nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, fmt.Errorf("--socket-group %q: %w", name, err)
	}
	return strconv.Atoi(g.Gid)
}

// check refuses flag values the daemon cannot start with.
func (f daemonFlags) check() error {
	switch f.ovsSupervise {
	case boot.OVSAuto, boot.OVSAlways, boot.OVSNever:
	default:
		return fmt.Errorf("--ovs-supervise %q: want auto, always or never", f.ovsSupervise)
	}
	switch f.datapath {
	case "", "auto", boot.DatapathSystem, boot.DatapathNetdev:
	default:
		return fmt.Errorf("--datapath %q: want auto, system or netdev", f.datapath)
	}
	if !strings.HasPrefix(f.ovsdb, "unix:") && !strings.HasPrefix(f.ovsdb, "tcp:") {
		return fmt.Errorf("--ovsdb %q: want unix:PATH or tcp:HOST:PORT", f.ovsdb)
	}
	return nil
}

// runDaemon is `nodenet daemon`. Signal handlers are installed before
// anything starts; after start-up nothing exits the process but a signal.
func runDaemon(args []string, socket string, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	signal.Ignore(syscall.SIGHUP, syscall.SIGPIPE)

	f, err := parseDaemonFlags(args, socket)
	if err != nil {
		return err
	}
	// Before anything reads /proc or listens under /run: in an initramfs
	// nodenet mounts them itself.
	boot.PrepareSystem(ctx, slog.New(slog.NewTextHandler(stderr, nil)))
	cfg, err := cmdline.ParseFiles(f.cmdline, f.config)
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if cfg.Debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	for _, w := range cfg.Warnings {
		log.Warn("kernel flag skipped", "reason", w)
	}
	if err := os.MkdirAll(f.stateDir, 0o755); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}

	uplinks := &boot.Uplinks{
		Config: cfg, StateDir: f.stateDir, ResolvConf: f.resolvConf, Log: log,
		SetHostname: boot.SetHostname,
	}
	ovs := newOVSService(f, datapathWanted(f.datapath, cfg.Datapath), log)
	firewall := &fw.Firewall{Log: log}
	srv := &api.Server{Socket: f.socket, Group: f.gid, Log: log, Status: func() api.Status {
		fs := firewall.Status()
		return api.Status{Version: version, Uplinks: uplinks.Status(), OVS: ovs.status(), Firewall: &fs}
	}}
	if err := srv.Listen(); err != nil {
		return err
	}
	log.Info("nodenet started", "version", version, "socket", f.socket, "state_dir", f.stateDir)

	// Uplinks never wait for OVS: both start now, side by side.
	ovs.run(ctx)
	lans := &lanService{stateDir: f.stateDir, leaseTime: cfg.LANLease, firewall: firewall, ovs: ovs,
		uplinks: uplinks, srv: srv, log: log, zerotierHome: f.zerotierHome, ovsRunDir: f.ovsDir, heldAtStart: lan.HeldNICs(f.stateDir)}
	uplinks.Held = lans.holds
	trunks := lan.TrunkPorts(f.stateDir)
	uplinks.CarriedBy = func(nic string) string { return trunks[nic] }
	go lans.run(ctx)
	uplinksDone := make(chan error, 1)
	go func() { uplinksDone <- uplinks.Run(ctx) }()
	serveDone := make(chan error, 1)
	go func() { serveDone <- srv.Serve() }()

	select {
	case <-ctx.Done():
	case err := <-uplinksDone:
		// Only a netlink subscription failure ends this early: report and
		// keep serving, the socket still answers for the node agent.
		log.Error("uplinks stopped", "err", err)
		<-ctx.Done()
	case err := <-serveDone:
		log.Error("control socket stopped", "err", err)
		<-ctx.Done()
	}
	log.Info("nodenet stopping; addresses and routes stay in place")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(shutdownCtx)
	select {
	case <-uplinksDone:
	case <-shutdownCtx.Done():
	}
	return nil
}

// datapathWanted: the --datapath flag, else the kernel flag, else auto.
func datapathWanted(flagValue, kernelFlag string) string {
	if flagValue != "" {
		return flagValue
	}
	if kernelFlag != "" {
		return kernelFlag
	}
	return "auto"
}
