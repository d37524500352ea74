package boot

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"
)

// The --ovs-supervise modes.
const (
	OVSAuto   = "auto"   // supervise unless another OVS answers or OVS is not installed
	OVSAlways = "always" // supervise; missing binaries are an error
	OVSNever  = "never"  // start nothing
)

// Daemon states in OVSStatus.
const (
	ovsDisabled    = "disabled"    // mode never
	ovsUnavailable = "unavailable" // not installed (auto)
	ovsExternal    = "external"    // someone else runs OVS on the socket
	ovsStarting    = "starting"
	ovsRunning     = "running"
	ovsRestarting  = "restarting" // died; waiting out the backoff
)

// OVSSupervisor runs ovsdb-server and ovs-vswitchd for --ovs-supervise.
//
// The daemons are children in their own process group, with a marker in
// their environment, and nodenet never stops them: stopping nodenet must
// not tear the network down (on the netdev datapath ovs-vswitchd is the
// switch). A killed nodenet's signal to its group does not reach them, and
// the next nodenet finds them through their pid files and adopts them,
// restarting them when they die as it does its own children.
type OVSSupervisor struct {
	Mode     string // OVSAuto (""), OVSAlways or OVSNever
	DBSocket string // default /run/openvswitch/db.sock
	DBFile   string // default /etc/openvswitch/conf.db; created from Schema when missing
	Schema   string // default /usr/share/openvswitch/vswitch.ovsschema
	RunDir   string // pid files and control sockets; default /run/openvswitch
	LogDir   string // daemon logs; default /var/log/openvswitch
	// Binaries; "" looks each up in PATH, then /usr/sbin, /sbin, /usr/bin.
	OVSDBServer, OVSVswitchd, OVSDBTool string
	// Wrap, when set, goes before each daemon's command line. Tests set
	// `ip netns exec NS` so the daemons run in a namespace the test made
	// (ip execs them: the pids stay the daemons'); nodenet leaves it empty
	// and the daemons run where nodenet runs.
	Wrap []string
	// ReadyTimeout bounds the wait for a started ovsdb-server to answer
	// before ovs-vswitchd is started anyway (it reconnects); default 10 s.
	ReadyTimeout time.Duration
	Log          *slog.Logger

	mu     sync.Mutex
	status OVSStatus
}

// OVSStatus is what GET /v1/status shows about OVS.
type OVSStatus struct {
	Mode        string `json:"mode"`
	Supervised  bool   `json:"supervised"` // nodenet starts and restarts the daemons
	DBServer    string `json:"ovsdb_server"`
	Vswitchd    string `json:"ovs_vswitchd"`
	DBServerPid int    `json:"ovsdb_server_pid,omitempty"`
	VswitchdPid int    `json:"ovs_vswitchd_pid,omitempty"`
	Restarts    int    `json:"restarts"`
	LastError   string `json:"last_error,omitempty"`
}

// Status returns a snapshot.
func (s *OVSSupervisor) Status() OVSStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

func (s *OVSSupervisor) update(f func(*OVSStatus)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.status)
}

// Run does what the mode says and blocks until ctx is done; the daemons
// keep running after it returns. It returns early only for an error that
// makes supervision impossible (always, with OVS not installed). In auto
// and always alike, an OVS answering on DBSocket that no nodenet started
// is left alone: a second ovsdb-server could only fight it for the socket.
func (s *OVSSupervisor) Run(ctx context.Context) error {
	s.defaults()
	s.update(func(st *OVSStatus) { st.Mode = s.Mode })
	switch s.Mode {
	case OVSAuto, OVSAlways:
	case OVSNever:
		s.setBoth(ovsDisabled, "")
		s.log().Info("OVS supervision off", "mode", s.Mode)
		<-ctx.Done()
		return nil
	default:
		return fmt.Errorf("ovs-supervise %q: want auto, always or never", s.Mode)
	}
	if err := s.findBinaries(); err != nil {
		if s.Mode == OVSAlways {
			s.setBoth(ovsUnavailable, err.Error())
			return fmt.Errorf("ovs-supervise always: %w", err)
		}
		s.setBoth(ovsUnavailable, "OVS not installed: "+err.Error())
		s.log().Info("OVS not available; not supervising", "err", err)
		<-ctx.Done()
		return nil
	}
	db := s.adopt(s.dbServer())
	if db == nil && ovsdbEcho(s.DBSocket, time.Second) == nil {
		s.setBoth(ovsExternal, "")
		s.log().Info("another OVS answers; leaving it alone", "socket", s.DBSocket)
		<-ctx.Done()
		return nil
	}
	s.update(func(st *OVSStatus) { st.Supervised = true })
	s.supervise(ctx, db)
	return nil
}

func (s *OVSSupervisor) setBoth(state, lastErr string) {
	s.update(func(st *OVSStatus) {
		st.DBServer, st.Vswitchd = state, state
		if lastErr != "" {
			st.LastError = lastErr
		}
	})
}

// supervise keeps both daemons running; db is an adopted ovsdb-server or nil.
func (s *OVSSupervisor) supervise(ctx context.Context, db *ovsProcess) {
	if db == nil {
		if err := s.createDB(ctx); err != nil {
			s.update(func(st *OVSStatus) { st.LastError = err.Error() })
			s.log().Error("OVS database", "err", err)
		}
	}
	s.setBoth(ovsStarting, "")
	var wg sync.WaitGroup
	dbUp := make(chan struct{}) // ovs-vswitchd is useless without its database
	wg.Go(func() { s.keep(ctx, s.dbServer(), db, dbUp) })
	select {
	case <-dbUp:
		wg.Go(func() { s.keep(ctx, s.vswitchd(), s.adopt(s.vswitchd()), nil) })
	case <-ctx.Done():
	}
	wg.Wait()
}

// createDB makes DBFile from Schema with OVS's own ovsdb-tool, as
// ovs-ctl does on a first boot.
func (s *OVSSupervisor) createDB(ctx context.Context) error {
	if _, err := os.Stat(s.DBFile); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(s.DBFile), 0o755); err != nil {
		return fmt.Errorf("create OVS database %s: %w", s.DBFile, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, s.OVSDBTool, "create", s.DBFile, s.Schema).CombinedOutput()
	if err != nil {
		return fmt.Errorf("create OVS database %s from %s: %w: %s", s.DBFile, s.Schema, err, out)
	}
	s.log().Info("created OVS database", "file", s.DBFile)
	return nil
}

func (s *OVSSupervisor) defaults() {
	if s.Mode == "" {
		s.Mode = OVSAuto
	}
	s.RunDir = orDefault(s.RunDir, "/run/openvswitch")
	s.LogDir = orDefault(s.LogDir, "/var/log/openvswitch")
	s.DBSocket = orDefault(s.DBSocket, filepath.Join(s.RunDir, "db.sock"))
	s.DBFile = orDefault(s.DBFile, "/etc/openvswitch/conf.db")
	s.Schema = orDefault(s.Schema, "/usr/share/openvswitch/vswitch.ovsschema")
	if s.ReadyTimeout == 0 {
		s.ReadyTimeout = 10 * time.Second
	}
}

// findBinaries resolves the three programs; the error names what is missing.
func (s *OVSSupervisor) findBinaries() error {
	for _, b := range []struct {
		field *string
		name  string
	}{{&s.OVSDBServer, "ovsdb-server"}, {&s.OVSVswitchd, "ovs-vswitchd"}, {&s.OVSDBTool, "ovsdb-tool"}} {
		if *b.field != "" {
			if _, err := os.Stat(*b.field); err != nil {
				return fmt.Errorf("%s: %w", b.name, err)
			}
			continue
		}
		p, err := lookBinary(b.name)
		if err != nil {
			return err
		}
		*b.field = p
	}
	return nil
}

// lookBinary searches PATH, then the sbin directories an init's PATH may lack.
func lookBinary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/usr/local/sbin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found in PATH or /usr/sbin", name)
}

func (s *OVSSupervisor) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.New(slog.DiscardHandler)
}
