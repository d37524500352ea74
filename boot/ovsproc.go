package boot

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ovsMarker goes into the environment of every daemon nodenet starts, so
// a later nodenet adopts its predecessor's daemons and leaves a
// distribution's OVS (same default pid files) alone.
const ovsMarker = "NODENET_OVS_SUPERVISOR=1"

// Restart backoff: doubling from ovsMinBackoff to ovsMaxBackoff, back to
// the minimum after a run of ovsHealthyRun.
const (
	ovsMinBackoff = 100 * time.Millisecond
	ovsMaxBackoff = 5 * time.Second
	ovsHealthyRun = 10 * time.Second
)

// ovsDaemon is one of the two programs and how to run it.
type ovsDaemon struct {
	name    string // program name, as /proc/PID/comm shows it
	binary  string
	args    []string
	pidfile string
	isDB    bool
}

func (s *OVSSupervisor) dbServer() ovsDaemon {
	pidfile := filepath.Join(s.RunDir, "ovsdb-server.pid")
	return ovsDaemon{name: "ovsdb-server", binary: s.OVSDBServer, pidfile: pidfile, isDB: true,
		args: []string{s.DBFile,
			"--remote=punix:" + s.DBSocket,
			// As ovs-ctl runs it: managers configured in the database are listened on.
			"--remote=db:Open_vSwitch,Open_vSwitch,manager_options",
			// Before --log-file, which already logs: the log file has it
			// all, and stderr keeps only fatal errors.
			"-vconsole:off",
			"--pidfile=" + pidfile,
			"--log-file=" + filepath.Join(s.LogDir, "ovsdb-server.log"),
		}}
}

func (s *OVSSupervisor) vswitchd() ovsDaemon {
	pidfile := filepath.Join(s.RunDir, "ovs-vswitchd.pid")
	return ovsDaemon{name: "ovs-vswitchd", binary: s.OVSVswitchd, pidfile: pidfile,
		args: []string{"unix:" + s.DBSocket,
			"-vconsole:off",
			"--pidfile=" + pidfile,
			"--log-file=" + filepath.Join(s.LogDir, "ovs-vswitchd.log"),
		}}
}

// ovsProcess is a running daemon: a child, or one adopted from a
// predecessor (watched through a pidfd, since only a parent can wait).
type ovsProcess struct {
	pid     int
	adopted bool
	done    chan struct{}
	exitErr error // valid once done is closed
	stderr  string
	offset  int64 // where this run's stderr starts
}

// start runs d as a child in its own process group, so it outlives nodenet.
func (s *OVSSupervisor) start(d ovsDaemon) (*ovsProcess, error) {
	for _, dir := range []string{s.RunDir, s.LogDir, filepath.Dir(s.DBSocket)} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("start %s: %w", d.name, err)
		}
	}
	p := &ovsProcess{done: make(chan struct{}), stderr: filepath.Join(s.LogDir, d.name+".stderr")}
	f, err := os.OpenFile(p.stderr, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", d.name, err)
	}
	defer f.Close()
	p.offset, _ = f.Seek(0, io.SeekEnd)
	argv := append(append(slices.Clone(s.Wrap), d.binary), d.args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), ovsMarker,
		"OVS_RUNDIR="+s.RunDir, "OVS_LOGDIR="+s.LogDir, "OVS_DBDIR="+filepath.Dir(s.DBFile))
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", d.name, err)
	}
	p.pid = cmd.Process.Pid
	go func() {
		p.exitErr = cmd.Wait()
		close(p.done)
	}()
	s.log().Info("started OVS daemon", "daemon", d.name, "pid", p.pid)
	return p, nil
}

// adopt returns d's process when its pid file names a live daemon a
// nodenet started, else nil.
func (s *OVSSupervisor) adopt(d ovsDaemon) *ovsProcess {
	b, err := os.ReadFile(d.pidfile)
	if err != nil {
		return nil
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 || !isOurDaemon(pid, d.name) {
		return nil
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil // it just died
	}
	p := &ovsProcess{pid: pid, adopted: true, done: make(chan struct{})}
	go watchPidfd(fd, p.done)
	s.log().Info("adopted OVS daemon", "daemon", d.name, "pid", pid)
	return p
}

func isOurDaemon(pid int, name string) bool {
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil || strings.TrimSpace(string(comm)) != name {
		return false
	}
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	return err == nil && slices.ContainsFunc(bytes.Split(env, []byte{0}), func(v []byte) bool { return string(v) == ovsMarker })
}

// watchPidfd closes done when the process exits (its pidfd turns readable).
// The goroutine outlives Run on purpose: the daemon does too, and one
// blocked poll per adopted daemon is all it costs.
func watchPidfd(fd int, done chan struct{}) {
	defer unix.Close(fd)
	for {
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, -1)
		if n > 0 || (err != nil && err != unix.EINTR) {
			close(done)
			return
		}
	}
}

func (p *ovsProcess) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// exitReason says how p ended, with the fatal message it printed, if any.
func (p *ovsProcess) exitReason() string {
	if p.adopted {
		return "exited"
	}
	why := "exited"
	if p.exitErr != nil {
		why = p.exitErr.Error()
	}
	f, err := os.Open(p.stderr)
	if err != nil {
		return why
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(io.NewSectionReader(f, p.offset, 1<<20), 512))
	if msg := strings.TrimSpace(string(b)); msg != "" {
		why += ": " + msg
	}
	return why
}
