package testenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// DaemonOptions describe how StartDaemon runs `nodenet daemon`.
type DaemonOptions struct {
	Cmdline    string   // kernel flags, written to a file passed as --cmdline
	StateDir   string   // --state-dir; default t.TempDir()
	Socket     string   // --socket; default StateDir/nodenet.sock (a short temp path if that is too long)
	ResolvConf string   // --resolv-conf; default StateDir/resolv.conf
	ExtraArgs  []string // appended to the daemon's arguments
	Env        []string // added to the daemon's environment ("KEY=value")
	Binary     string   // the nodenet binary; default BuildNodenet(t)
	// OVS, when set, is the test's Open vSwitch the daemon connects to.
	// Without it the daemon gets an OVSDB socket nobody serves. Either way
	// it starts no OVS of its own and loads no kernel module (--ovs-supervise
	// never, --datapath netdev); ExtraArgs can say otherwise.
	OVS *OVS
	// AllowExit stops the cleanup from failing the test when the daemon
	// exited by itself (a crash, unless the test expects it).
	AllowExit bool
}

// Daemon is a `nodenet daemon` running inside a test namespace, in its own
// UTS namespace so a hostname it sets never renames the machine.
type Daemon struct {
	NS          *Netns
	Options     DaemonOptions
	Binary      string
	Socket      string
	StateDir    string
	ResolvConf  string
	CmdlineFile string
	LogFile     string // stdout and stderr of every run, runs separated by marker lines

	client *http.Client
	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
	// waitErr is the last run's exit; stopped says the test ended that run.
	waitErr error
	stopped bool
}

// ReadyTimeout bounds how long StartDaemon and Restart wait for the
// control socket to answer GET /v1/status.
var ReadyTimeout = 10 * time.Second

// StartDaemon writes o.Cmdline to a file, runs
// `ip netns exec NS unshare --uts nodenet daemon --cmdline F --config /dev/null ...`
// and waits until GET /v1/status answers 200. The test's cleanup stops it
// and, when the test failed, logs the daemon's log.
func StartDaemon(t testing.TB, ns *Netns, o DaemonOptions) *Daemon {
	t.Helper()
	Require(t, "unshare")
	d := &Daemon{NS: ns, Options: o, Binary: o.Binary}
	if d.Binary == "" {
		d.Binary = BuildNodenet(t)
	}
	d.StateDir = o.StateDir
	if d.StateDir == "" {
		d.StateDir = t.TempDir()
	}
	d.Socket = o.Socket
	if d.Socket == "" {
		d.Socket = filepath.Join(d.StateDir, "nodenet.sock")
		if len(d.Socket) > 100 { // sun_path holds 108 bytes
			short, err := os.MkdirTemp("", "nnt")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(short) })
			d.Socket = filepath.Join(short, "nodenet.sock")
		}
	}
	d.ResolvConf = o.ResolvConf
	if d.ResolvConf == "" {
		d.ResolvConf = filepath.Join(d.StateDir, "resolv.conf")
	}
	logs := t.TempDir()
	d.LogFile = filepath.Join(logs, "daemon.log")
	d.CmdlineFile = filepath.Join(logs, "cmdline")
	if err := os.WriteFile(d.CmdlineFile, []byte(o.Cmdline+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.client = &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var dialer net.Dialer
				return dialer.DialContext(ctx, "unix", d.Socket)
			},
			DisableKeepAlives: true, // a restarted daemon must not get a dead pooled conn
		},
	}
	t.Cleanup(func() {
		d.mu.Lock()
		crashed := d.cmd != nil && !d.stopped && d.exited()
		exitErr := d.waitErr
		d.mu.Unlock()
		d.Stop()
		if crashed && !o.AllowExit {
			t.Errorf("nodenet daemon in %s exited during the test: %v", ns.Name, exitErr)
		}
		if t.Failed() {
			t.Logf("nodenet daemon in %s log (%s):\n%s", ns.Name, d.LogFile, d.Log())
		}
	})
	if err := d.start(); err != nil {
		t.Fatal(err)
	}
	return d
}

// Args returns the daemon's command line, `unshare --uts nodenet daemon ...`.
func (d *Daemon) Args() []string {
	unshare, err := lookTool("unshare")
	if err != nil {
		unshare = "unshare"
	}
	args := []string{unshare, "--uts", d.Binary, "daemon",
		"--cmdline", d.CmdlineFile,
		"--config", "/dev/null",
		"--state-dir", d.StateDir,
		"--socket", d.Socket,
		"--resolv-conf", d.ResolvConf,
		"--ovsdb", d.ovsdbAddr(),
		"--ovs-supervise", "never",
		"--datapath", "netdev",
	}
	return append(args, d.Options.ExtraArgs...)
}

func (d *Daemon) ovsdbAddr() string {
	if d.Options.OVS != nil {
		return d.Options.OVS.DB
	}
	return "unix:" + filepath.Join(d.StateDir, "no-ovs.sock")
}

// Command returns an unstarted second daemon with the same arguments and
// environment, for tests of what a second start does.
func (d *Daemon) Command() *exec.Cmd {
	cmd := d.NS.Command(d.Args()...)
	cmd.Env = append(os.Environ(), d.Options.Env...)
	return cmd
}

func (d *Daemon) start() error {
	logf, err := os.OpenFile(d.LogFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("nodenet daemon: %w", err)
	}
	defer logf.Close()
	cmd := d.Command()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = orphanKill()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("nodenet daemon in %s: %w", d.NS.Name, err)
	}
	done := make(chan struct{})
	d.mu.Lock()
	d.cmd, d.done, d.waitErr, d.stopped = cmd, done, nil, false
	d.mu.Unlock()
	go func() {
		err := cmd.Wait()
		d.mu.Lock()
		if d.cmd == cmd {
			d.waitErr = err
		}
		d.mu.Unlock()
		close(done)
	}()

	err = poll(ReadyTimeout, func() error {
		select {
		case <-done:
			return errExited
		default:
		}
		code, body, err := d.Do(http.MethodGet, "/v1/status", nil)
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("GET /v1/status: %d %s", code, body)
		}
		return nil
	})
	if err != nil {
		d.mu.Lock()
		exitErr := d.waitErr
		d.mu.Unlock()
		d.Stop()
		// The cleanup logs the daemon's log.
		return fmt.Errorf("nodenet daemon in %s not ready (waited up to %v): %v (exit: %v)\nargs: %s",
			d.NS.Name, ReadyTimeout, err, exitErr, strings.Join(d.Args(), " "))
	}
	return nil
}

// exited reports whether the current run ended; d.mu is held.
func (d *Daemon) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// Running reports whether the daemon process is alive.
func (d *Daemon) Running() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cmd != nil && !d.exited()
}

// Pid returns the daemon's pid (nodenet itself: ip and unshare exec it).
func (d *Daemon) Pid() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd == nil || d.cmd.Process == nil {
		return 0
	}
	return d.cmd.Process.Pid
}

// Stop sends SIGTERM and waits up to 10 s, then SIGKILLs. The error says
// whether the daemon did not exit cleanly; calling Stop twice is safe.
func (d *Daemon) Stop() error {
	d.mu.Lock()
	cmd, done := d.cmd, d.done
	d.stopped = true
	d.mu.Unlock()
	if cmd == nil {
		return nil
	}
	if !stopProcess(cmd, done, 10*time.Second) {
		return fmt.Errorf("nodenet daemon (pid %d) ignored SIGTERM for 10s; killed", cmd.Process.Pid)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.waitErr != nil {
		return fmt.Errorf("nodenet daemon (pid %d) exit: %w", cmd.Process.Pid, d.waitErr)
	}
	return nil
}

// Kill9 kills the daemon with SIGKILL, leaving its socket file and state
// behind as a crash would.
func (d *Daemon) Kill9() {
	d.mu.Lock()
	cmd, done := d.cmd, d.done
	d.stopped = true
	d.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
}

// Restart stops the daemon if it runs (see Stop to assert a clean exit)
// and starts it again with the same options, state dir and socket.
func (d *Daemon) Restart(t testing.TB) {
	t.Helper()
	if d.Running() {
		if err := d.Stop(); err != nil {
			t.Logf("restart: %v", err)
		}
	}
	appendMarker(d.LogFile, "restart")
	if err := d.start(); err != nil {
		t.Fatal(err)
	}
}

// Log returns everything the daemon wrote to stdout and stderr.
func (d *Daemon) Log() string { return readFile(d.LogFile) }

// Do sends one request to the control socket; body, when not nil, is sent
// as JSON. It returns the status code and the response body.
func (d *Daemon) Do(method, path string, body any) (int, []byte, error) {
	if body == nil {
		return d.DoRaw(method, path, "")
	}
	b, err := json.Marshal(body)
	if err != nil {
		return 0, nil, err
	}
	return d.DoRaw(method, path, string(b))
}

// DoRaw sends one request with body as it is (JSON or not, empty: none).
func (d *Daemon) DoRaw(method, path, body string) (int, []byte, error) {
	req, err := http.NewRequest(method, "http://nodenet"+path, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return resp.StatusCode, b, fmt.Errorf("%s %s: read body: %w", method, path, err)
	}
	return resp.StatusCode, b, nil
}

// Status returns GET /v1/status decoded as plain JSON, failing the test
// unless it answers 200.
func (d *Daemon) Status(t testing.TB) map[string]any {
	t.Helper()
	st, err := d.status()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (d *Daemon) status() (map[string]any, error) {
	code, body, err := d.Do(http.MethodGet, "/v1/status", nil)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("GET /v1/status: %d: %s", code, body)
	}
	var st map[string]any
	if err := json.Unmarshal(body, &st); err != nil {
		return nil, fmt.Errorf("GET /v1/status: %w: %s", err, body)
	}
	return st, nil
}

var nodenetBuild struct {
	once sync.Once
	path string
	err  error
}

// BuildNodenet returns the path of a static nodenet binary, built once per
// test process from the module root; $NODENET_BIN, when set, is used instead.
// go test does not know the test depends on this build: run with -count=1.
func BuildNodenet(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("NODENET_BIN"); p != "" {
		abs, err := filepath.Abs(p)
		if err == nil {
			_, err = os.Stat(abs)
		}
		if err != nil {
			t.Fatalf("NODENET_BIN=%s: %v", p, err)
		}
		return abs
	}
	nodenetBuild.once.Do(func() { nodenetBuild.path, nodenetBuild.err = buildNodenet() })
	if nodenetBuild.err != nil {
		t.Fatal(nodenetBuild.err)
	}
	return nodenetBuild.path
}

func buildNodenet() (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	// Not t.TempDir: the binary outlives the first test. Binaries of
	// finished test processes are removed here instead.
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("nodenet-testbin-%d", os.Geteuid()))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("build nodenet: %w", err)
	}
	removeDeadBinaries(dir)
	out := filepath.Join(dir, fmt.Sprintf("nodenet.%d", os.Getpid()))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool(), "build", "-o", out, ".")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build nodenet in %s: %v\n%s", root, err, b)
	}
	return out, nil
}

func removeDeadBinaries(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		pid, err := strconv.Atoi(strings.TrimPrefix(e.Name(), "nodenet."))
		if err != nil || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// ModuleRoot walks up from the working directory (a package's directory
// under go test) to the directory holding go.mod.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	for _, p := range []string{filepath.Join(runtime.GOROOT(), "bin", "go"), "/usr/local/go/bin/go"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "go"
}
