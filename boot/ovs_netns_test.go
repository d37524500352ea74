package boot_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"nodenet/boot"
	"nodenet/internal/testenv"
)

// supervised is an OVSSupervisor running in a goroutine of the test, its
// daemons in a namespace the test made and its files in a temp dir.
type supervised struct {
	t      *testing.T
	ns     *testenv.Netns
	dir    string
	sup    *boot.OVSSupervisor
	cancel context.CancelFunc
	done   chan error
	log    *syncBuffer
}

// newSupervisor configures (does not start) a supervisor for ns; the
// test's cleanup stops its Run, kills every daemon it started and removes
// its files, logging them when the test failed.
func newSupervisor(t *testing.T, ns *testenv.Netns, mode string) *supervised {
	t.Helper()
	testenv.Require(t, "ovsdb-server", "ovs-vswitchd", "ovsdb-tool", "ovs-vsctl")
	dir, err := os.MkdirTemp("", "nntsup") // short: the socket path must fit sun_path
	if err != nil {
		t.Fatal(err)
	}
	s := &supervised{t: t, ns: ns, dir: dir, log: &syncBuffer{}}
	s.sup = &boot.OVSSupervisor{
		Mode:     mode,
		DBSocket: filepath.Join(dir, "db.sock"),
		DBFile:   filepath.Join(dir, "etc", "conf.db"),
		RunDir:   filepath.Join(dir, "run"),
		LogDir:   filepath.Join(dir, "log"),
		Wrap:     ns.ExecArgs(),
		Log:      slog.New(slog.NewTextHandler(s.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	t.Cleanup(func() {
		s.stop()
		killDaemons(dir)
		if t.Failed() {
			t.Logf("supervisor log:\n%s", s.log.String())
			for _, f := range []string{"ovsdb-server.log", "ovs-vswitchd.log", "ovsdb-server.stderr", "ovs-vswitchd.stderr"} {
				b, _ := os.ReadFile(filepath.Join(dir, "log", f))
				t.Logf("%s:\n%s", f, b)
			}
		}
		os.RemoveAll(dir)
	})
	return s
}

// run starts Run in a goroutine.
func (s *supervised) run() {
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.done = cancel, make(chan error, 1)
	go func() { s.done <- s.sup.Run(ctx) }()
}

// stop cancels Run and waits (bounded) for it to return; the daemons stay.
func (s *supervised) stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	select {
	case err := <-s.done:
		if err != nil {
			s.t.Errorf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		s.t.Errorf("Run did not return within 5s of its context's end")
	}
}

// waitRunning waits until both daemons run and returns their pids.
func (s *supervised) waitRunning(notDB, notVS int) (db, vs int) {
	s.t.Helper()
	testenv.Eventually(s.t, 15*time.Second, "ovsdb-server and ovs-vswitchd running", func() error {
		st := s.sup.Status()
		if st.DBServer != "running" || st.Vswitchd != "running" || st.DBServerPid == notDB || st.VswitchdPid == notVS {
			return fmt.Errorf("status %+v", st)
		}
		db, vs = st.DBServerPid, st.VswitchdPid
		return nil
	})
	return db, vs
}

func (s *supervised) vsctl(args ...string) (string, error) {
	return s.ns.Output(append([]string{"ovs-vsctl", "--db=unix:" + s.sup.DBSocket, "--timeout=10"}, args...)...)
}

// killDaemons SIGKILLs what the pid files under dir/run name: the
// supervisor leaves its daemons running by design.
func killDaemons(dir string) {
	for _, f := range []string{"ovsdb-server.pid", "ovs-vswitchd.pid"} {
		b, err := os.ReadFile(filepath.Join(dir, "run", f))
		var pid int
		if err == nil && json.Unmarshal(bytes.TrimSpace(b), &pid) == nil && pid > 0 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// echo is the readiness check a client does: an RFC 7047 echo and a JSON reply.
func echo(t *testing.T, socket string) {
	t.Helper()
	conn, err := net.DialTimeout("unix", socket, 2*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", socket, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte(`{"method":"echo","params":[],"id":0}`)); err != nil {
		t.Fatal(err)
	}
	var reply map[string]any
	if err := json.NewDecoder(conn).Decode(&reply); err != nil {
		t.Fatalf("echo reply from %s: %v", socket, err)
	}
	if reply["id"] != float64(0) || reply["error"] != nil {
		t.Fatalf("echo reply from %s: %v", socket, reply)
	}
}

func alive(pid int) bool {
	return pid > 0 && !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// inNetns checks that every pid runs inside ns, in a process group of its own.
func inNetns(t *testing.T, ns *testenv.Netns, pids ...int) {
	t.Helper()
	in, err := ns.Pids()
	if err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if !slices.Contains(in, pid) {
			t.Errorf("pid %d is not in %s (its pids: %v)", pid, ns, in)
		}
		if pgid, err := syscall.Getpgid(pid); err != nil || pgid != pid {
			t.Errorf("pid %d: process group %d (%v), want its own", pid, pgid, err)
		}
	}
}

func TestOVSSupervisorRestartsDaemons(t *testing.T) {
	ns := testenv.NewNetns(t)
	s := newSupervisor(t, ns, boot.OVSAlways)
	s.run()
	db, vs := s.waitRunning(0, 0)
	echo(t, s.sup.DBSocket)
	inNetns(t, ns, db, vs)
	if _, err := os.Stat(s.sup.DBFile); err != nil {
		t.Fatalf("database not created: %v", err)
	}
	if st := s.sup.Status(); st.Mode != "always" || !st.Supervised || st.Restarts != 0 {
		t.Errorf("status %+v", st)
	}
	if _, err := s.vsctl("add-br", "br0", "--", "set", "bridge", "br0", "datapath_type=netdev"); err != nil {
		t.Fatal(err)
	}
	ns.IP(t, "link", "show", "br0") // ovs-vswitchd works, in the test's namespace

	syscall.Kill(vs, syscall.SIGKILL)
	_, vs2 := s.waitRunning(0, vs)
	if st := s.sup.Status(); st.DBServerPid != db || st.Restarts != 1 || !strings.Contains(st.LastError, "ovs-vswitchd") {
		t.Errorf("after killing ovs-vswitchd: %+v", st)
	}
	inNetns(t, ns, vs2)

	syscall.Kill(db, syscall.SIGKILL)
	db2, _ := s.waitRunning(db, 0)
	echo(t, s.sup.DBSocket)
	inNetns(t, ns, db2)
	if out, err := s.vsctl("br-exists", "br0"); err != nil {
		t.Errorf("br0 lost with the restarted ovsdb-server (same database): %v %s", err, out)
	}
	if st := s.sup.Status(); st.Restarts != 2 || !strings.Contains(st.LastError, "ovsdb-server") || !strings.Contains(st.LastError, "killed") {
		t.Errorf("after killing ovsdb-server: %+v", st)
	}
	if _, err := s.vsctl("add-br", "br1", "--", "set", "bridge", "br1", "datapath_type=netdev"); err != nil {
		t.Errorf("ovs-vswitchd did not reconnect to the new ovsdb-server: %v", err)
	}
}

func TestOVSSupervisorAdoptsItsPredecessorsDaemons(t *testing.T) {
	ns := testenv.NewNetns(t)
	first := newSupervisor(t, ns, boot.OVSAuto)
	first.run()
	db, vs := first.waitRunning(0, 0)
	first.stop()
	if !alive(db) || !alive(vs) {
		t.Fatalf("daemons died with the supervisor's Run: db %v, vswitchd %v", alive(db), alive(vs))
	}

	// A restarted nodenet: same files, a new supervisor.
	next := newSupervisor(t, ns, boot.OVSAuto)
	cfg := first.sup
	next.sup = &boot.OVSSupervisor{Mode: cfg.Mode, DBSocket: cfg.DBSocket, DBFile: cfg.DBFile,
		RunDir: cfg.RunDir, LogDir: cfg.LogDir, Wrap: cfg.Wrap, Log: next.sup.Log}
	next.run()
	if db2, vs2 := next.waitRunning(0, 0); db2 != db || vs2 != vs {
		t.Fatalf("pids %d, %d after restart, want the adopted %d, %d", db2, vs2, db, vs)
	}
	if st := next.sup.Status(); !st.Supervised {
		t.Errorf("adopted but not supervised: %+v", st)
	}
	syscall.Kill(vs, syscall.SIGKILL)
	next.waitRunning(0, vs)
	syscall.Kill(db, syscall.SIGKILL)
	next.waitRunning(db, 0)
	echo(t, cfg.DBSocket)
}

func TestOVSSupervisorLeavesAnotherOVSAlone(t *testing.T) {
	for _, mode := range []string{boot.OVSAuto, boot.OVSAlways} {
		t.Run(mode, func(t *testing.T) {
			ns := testenv.NewNetns(t)
			other := testenv.StartOVS(t, ns)
			before, _ := ns.Pids()
			s := newSupervisor(t, ns, mode)
			s.sup.DBSocket = other.Socket
			// A distribution's OVS writes the same pid file names; no marker, no adoption.
			dbPid, _ := other.Pids()
			os.MkdirAll(s.sup.RunDir, 0o755)
			os.WriteFile(filepath.Join(s.sup.RunDir, "ovsdb-server.pid"), []byte(fmt.Sprintln(dbPid)), 0o644)
			s.run()
			testenv.Eventually(t, 5*time.Second, "external OVS seen", func() error {
				if st := s.sup.Status(); st.DBServer != "external" || st.Vswitchd != "external" || st.Supervised {
					return fmt.Errorf("status %+v", st)
				}
				return nil
			})
			time.Sleep(300 * time.Millisecond) // time to start something, were it going to
			after, _ := ns.Pids()
			slices.Sort(before)
			slices.Sort(after)
			if !slices.Equal(before, after) {
				t.Errorf("processes in the namespace changed from %v to %v", before, after)
			}
			if _, err := os.Stat(s.sup.DBFile); err == nil {
				t.Errorf("created a database although another OVS runs")
			}
		})
	}
}

func TestOVSSupervisorNeverStartsAnything(t *testing.T) {
	ns := testenv.NewNetns(t)
	s := newSupervisor(t, ns, boot.OVSNever)
	s.run()
	testenv.Eventually(t, 5*time.Second, "status disabled", func() error {
		if st := s.sup.Status(); st.DBServer != "disabled" || st.Mode != "never" || st.Supervised {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	time.Sleep(300 * time.Millisecond)
	if pids, _ := ns.Pids(); len(pids) != 0 {
		t.Errorf("processes started in the namespace: %v", pids)
	}
	entries, _ := os.ReadDir(s.dir)
	if len(entries) != 0 {
		t.Errorf("files made under %s: %v", s.dir, entries)
	}
}

// syncBuffer is a bytes.Buffer safe for the supervisor's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
