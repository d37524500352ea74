package testenv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// OVSSchema is the Open_vSwitch schema Debian's openvswitch-common ships.
const OVSSchema = "/usr/share/openvswitch/vswitch.ovsschema"

// OVSReadyTimeout bounds how long StartOVS, StartDB and StartVswitchd wait
// for a daemon to answer.
var OVSReadyTimeout = 10 * time.Second

// OVS is one Open vSwitch (ovsdb-server and ovs-vswitchd) of one test,
// running inside the test's namespace with every file under Dir, so nothing
// lands in /var/run/openvswitch and the machine's own OVS (if any) is never
// involved. Bridges need datapath_type=netdev: the build machines' kernel
// has no openvswitch module.
type OVS struct {
	NS     *Netns
	Dir    string // conf.db, sockets, pid files and logs
	Socket string // Dir/db.sock
	DB     string // "unix:" + Socket, the OVSDB remote for clients under test

	mu sync.Mutex
	db *ovsProc // ovsdb-server
	vs *ovsProc // ovs-vswitchd
}

// ExecArgs returns `ip netns exec NAME`, the prefix that runs a program in
// this namespace, for seams that take a command prefix (boot.OVSSupervisor.Wrap).
func (n *Netns) ExecArgs() []string {
	return ipCmd("netns", "exec", n.Name).Args
}

// ovsProc is one running OVS daemon.
type ovsProc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

// StartOVS creates a fresh database and starts ovsdb-server and
// ovs-vswitchd inside ns, waiting until both answer. The database has no
// Open_vSwitch root row (a client under test inserts it; see Init). The
// test's cleanup stops both daemons and, when the test failed, logs the
// tail of both logs.
func StartOVS(t testing.TB, ns *Netns) *OVS {
	t.Helper()
	Require(t, "ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl")
	if _, err := os.Stat(OVSSchema); err != nil {
		requireFailed(t, fmt.Sprintf("no OVS schema: %v (make deps installs openvswitch-switch)", err))
	}
	// Not t.TempDir: sun_path holds 108 bytes and test names can be long.
	dir, err := os.MkdirTemp("", "nntovs")
	if err != nil {
		t.Fatal(err)
	}
	o := &OVS{NS: ns, Dir: dir, Socket: filepath.Join(dir, "db.sock")}
	o.DB = "unix:" + o.Socket
	t.Cleanup(func() {
		o.stopAll()
		if t.Failed() {
			t.Logf("OVS in %s (%s):\n%s", ns.Name, dir, o.logTail(40))
		}
		os.RemoveAll(dir)
	})
	create := exec.Command(mustTool(t, "ovsdb-tool"), "create", filepath.Join(dir, "conf.db"), OVSSchema)
	if out, err := create.CombinedOutput(); err != nil {
		t.Fatalf("ovsdb-tool create %s: %v: %s", dir, err, out)
	}
	o.StartDB(t)
	o.StartVswitchd(t)
	return o
}

// requireFailed skips, or fails under NODENET_INTEGRATION=1, like Require.
func requireFailed(t testing.TB, reason string) {
	t.Helper()
	if Integration() {
		t.Fatalf("%s=1 but this test cannot run: %s", IntegrationEnv, reason)
	}
	t.Skip(reason)
}

func (o *OVS) path(name string) string { return filepath.Join(o.Dir, name) }

// env keeps OVS's default run, db and log directories inside Dir, for the
// files a daemon or ovs-vsctl makes without being told where.
func (o *OVS) env() []string {
	return append(os.Environ(), "OVS_RUNDIR="+o.Dir, "OVS_DBDIR="+o.Dir, "OVS_LOGDIR="+o.Dir)
}

// StartDB starts ovsdb-server on Dir/conf.db and the same socket path (a
// restart after KillDB) and waits until it answers an echo.
func (o *OVS) StartDB(t testing.TB) {
	t.Helper()
	args := []string{mustTool(t, "ovsdb-server"), o.path("conf.db"),
		"--remote=punix:" + o.Socket,
		"--unixctl=" + o.path("db.ctl"),
		"--log-file=" + o.path("db.log"),
		"--pidfile=" + o.path("db.pid"),
	}
	p, err := o.start("ovsdb-server", "db", args)
	if err == nil {
		err = o.waitReady(p, o.Socket, ovsdbEcho)
	}
	if err != nil {
		t.Fatal(err)
	}
	o.mu.Lock()
	o.db = p
	o.mu.Unlock()
}

// StartVswitchd starts ovs-vswitchd on the database and waits until its
// control socket answers.
func (o *OVS) StartVswitchd(t testing.TB) {
	t.Helper()
	args := []string{mustTool(t, "ovs-vswitchd"), o.DB,
		"--unixctl=" + o.path("vs.ctl"),
		"--log-file=" + o.path("vs.log"),
		"--pidfile=" + o.path("vs.pid"),
	}
	p, err := o.start("ovs-vswitchd", "vs", args)
	if err == nil {
		err = o.waitReady(p, o.path("vs.ctl"), dialUnix)
	}
	if err != nil {
		t.Fatal(err)
	}
	o.mu.Lock()
	o.vs = p
	o.mu.Unlock()
}

// start runs one daemon in the namespace; its stdout and stderr (where it
// reports what it could not log) go to Dir/<short>.out.
func (o *OVS) start(name, short string, args []string) (*ovsProc, error) {
	out, err := os.OpenFile(o.path(short+".out"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	defer out.Close()
	appendMarker(o.path(short+".log"), "start "+name)
	cmd := o.NS.Command(args...)
	cmd.Env = o.env()
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = orphanKill()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s in %s: %w", name, o.NS.Name, err)
	}
	p := &ovsProc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	return p, nil
}

// waitReady polls check(sock) until it succeeds; on failure it stops p.
func (o *OVS) waitReady(p *ovsProc, sock string, check func(string) error) error {
	err := poll(OVSReadyTimeout, func() error {
		select {
		case <-p.done:
			return errExited
		default:
		}
		return check(sock)
	})
	if err != nil {
		stopProcess(p.cmd, p.done, 3*time.Second)
		return fmt.Errorf("%s in %s not ready within %v: %v\n%s",
			p.name, o.NS.Name, OVSReadyTimeout, err, o.logTail(40))
	}
	return nil
}

// KillDB kills ovsdb-server with SIGKILL, leaving its socket file, lock
// and database behind as a crash would.
func (o *OVS) KillDB() { o.kill(&o.db) }

// KillVswitchd kills ovs-vswitchd with SIGKILL.
func (o *OVS) KillVswitchd() { o.kill(&o.vs) }

func (o *OVS) kill(pp **ovsProc) {
	o.mu.Lock()
	p := *pp
	*pp = nil
	o.mu.Unlock()
	if p == nil {
		return
	}
	p.cmd.Process.Kill()
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
	}
}

// stopAll ends both daemons (SIGTERM, then SIGKILL after 3 s), vswitchd
// first so it does not log a lost database.
func (o *OVS) stopAll() {
	o.mu.Lock()
	procs := []*ovsProc{o.vs, o.db}
	o.vs, o.db = nil, nil
	o.mu.Unlock()
	for _, p := range procs {
		if p != nil {
			stopProcess(p.cmd, p.done, 3*time.Second)
		}
	}
}

// Pids returns the pids of ovsdb-server and ovs-vswitchd, 0 for one that
// is not running.
func (o *OVS) Pids() (db, vswitchd int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.db.pid(), o.vs.pid()
}

func (p *ovsProc) pid() int {
	if p == nil {
		return 0
	}
	select {
	case <-p.done:
		return 0
	default:
		return p.cmd.Process.Pid
	}
}

// Init runs `ovs-vsctl init`, which inserts the Open_vSwitch root row, for
// tests that do not leave that to the client under test.
func (o *OVS) Init(t testing.TB) {
	t.Helper()
	o.Vsctl(t, "init")
}

// Vsctl runs `ovs-vsctl --db=DB --timeout=10 args...` inside the namespace
// and returns its stdout with surrounding space trimmed; an error fails the
// test. Like any ovs-vsctl command it inserts the Open_vSwitch root row when
// the database has none, so a test of a client that must insert it checks
// before its first Vsctl (or with ovsdb-client).
func (o *OVS) Vsctl(t testing.TB, args ...string) string {
	t.Helper()
	out, err := o.VsctlErr(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// VsctlErr is Vsctl returning the error (which carries stderr), for
// commands whose failure is the answer, such as br-exists.
func (o *OVS) VsctlErr(args ...string) (string, error) {
	vsctl, err := lookTool("ovs-vsctl")
	if err != nil {
		return "", err
	}
	cmd := o.NS.Command(append([]string{vsctl, "--db=" + o.DB, "--timeout=10"}, args...)...)
	cmd.Env = o.env()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return strings.TrimSpace(stdout.String()), fmt.Errorf("netns %s: ovs-vsctl %s: %w: %s",
			o.NS.Name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// Log returns both daemons' logs (and anything they printed), each under
// a header line.
func (o *OVS) Log() string { return o.logTail(0) }

// logTail is Log keeping the last n lines of each file (all when n is 0).
func (o *OVS) logTail(n int) string {
	var b strings.Builder
	for _, f := range []string{"db.log", "db.out", "vs.log", "vs.out"} {
		text, err := os.ReadFile(o.path(f))
		if err != nil || len(bytes.TrimSpace(text)) == 0 {
			continue // .out files are usually empty
		}
		fmt.Fprintf(&b, "--- %s ---\n%s", o.path(f), tailLines(string(text), n))
	}
	return b.String()
}

func tailLines(s string, n int) string {
	if n <= 0 {
		return s
	}
	lines := strings.SplitAfter(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "")
}
