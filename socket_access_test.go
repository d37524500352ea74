package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"nodenet/internal/testenv"
)

// accessGroup is the --socket-group of the test: a bare gid, so that no
// group is added to the machine's /etc/group (a number always works).
const accessGroup = 4242

// nobody is the unprivileged peer: Debian's nobody/nogroup ids.
const nobody = 65534

// peerRun is what one client run as another user saw.
type peerRun struct {
	code           int
	stdout, stderr string
}

// runAs runs bin with args as uid nobody with primary group gid and
// exactly the supplementary groups given (none: an empty list).
func runAs(t *testing.T, gid uint32, groups []uint32, bin string, args ...string) peerRun {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: gid, Groups: groups}}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("run %s as uid %d: %v", bin, nobody, err)
	}
	return peerRun{cmd.ProcessState.ExitCode(), out.String(), errb.String()}
}

// accessDir is a directory every user may enter, holding a copy of the
// nodenet binary (the build's own directory is root's alone) and, later,
// the daemon's socket.
func accessDir(t *testing.T) (dir, bin string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "nnt-access")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(testenv.BuildNodenet(t))
	if err != nil {
		t.Fatal(err)
	}
	bin = filepath.Join(dir, "nodenet")
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, bin
}

// The control socket with --socket-group: the file is root's, the group's,
// mode 0660; a peer in the group (supplementary or primary) is served; one
// outside it cannot connect, and when the file mode is opened up by hand
// the daemon still answers 403 with a JSON error; root is served.
func TestSocketAccess(t *testing.T) {
	testenv.Require(t, "unshare", "curl")
	dir, bin := accessDir(t)
	ns := testenv.NewNetns(t)
	d := testenv.StartDaemon(t, ns, testenv.DaemonOptions{Cmdline: "ip=off",
		Socket: filepath.Join(dir, "nodenet.sock"), ExtraArgs: []string{"--socket-group", "4242"}})

	fi, err := os.Stat(d.Socket)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o660 || st.Uid != 0 || st.Gid != accessGroup {
		t.Errorf("socket %s: %v uid %d gid %d; want a socket, 0660, uid 0, gid %d", d.Socket, fi.Mode(), st.Uid, st.Gid, accessGroup)
	}

	status := []string{"--socket", d.Socket, "status", "--json"}
	for _, p := range []struct {
		what   string
		gid    uint32
		groups []uint32
	}{
		{"in the group (supplementary)", nobody, []uint32{100, accessGroup}},
		{"in the group (primary)", accessGroup, []uint32{}},
	} {
		if r := runAs(t, p.gid, p.groups, bin, status...); r.code != 0 || !strings.Contains(r.stdout, `"uplinks"`) {
			t.Errorf("uid %d %s: exit %d\n%s%s", nobody, p.what, r.code, r.stdout, r.stderr)
		}
	}

	// Outside the group the file mode stops the connect itself.
	outside := []uint32{100}
	r := runAs(t, nobody, outside, bin, status...)
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "connect: permission denied") {
		t.Errorf("uid %d outside the group: exit %d, stdout %q, stderr %q; want the connect refused", nobody, r.code, r.stdout, r.stderr)
	}

	// With the mode opened up, the daemon's own check answers: 403, JSON,
	// on every endpoint, before anything else is looked at.
	if err := os.Chmod(d.Socket, 0o666); err != nil {
		t.Fatal(err)
	}
	want := "permission denied: uid 65534 is neither root nor in group 4242"
	for _, args := range [][]string{status, {"--socket", d.Socket, "network", "create", "x", "--type", "bridge"}} {
		r := runAs(t, nobody, outside, bin, args...)
		if r.code != 1 || r.stdout != "" || r.stderr != "nodenet: "+want+"\n" {
			t.Errorf("nodenet %s as uid %d outside the group: exit %d, stdout %q, stderr %q; want %q",
				strings.Join(args[2:], " "), nobody, r.code, r.stdout, r.stderr, want)
		}
	}
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Fatal(err)
	}
	r = runAs(t, nobody, outside, curl, "-s", "-w", "\n%{http_code} %{content_type}", "--unix-socket", d.Socket, "http://nodenet/v1/networks")
	wantBody := "{\n  \"error\": \"" + want + "\",\n  \"code\": \"forbidden\"\n}\n\n403 application/json"
	if r.stdout != wantBody {
		t.Errorf("curl as uid %d outside the group:\n%s\nwant:\n%s", nobody, r.stdout, wantBody)
	}
	if !strings.Contains(d.Log(), `msg="request refused" method=GET path=/v1/networks uid=65534`) {
		t.Errorf("the refusal is not in the daemon's log:\n%s", d.Log())
	}
	if code, body, err := d.Do("GET", "/v1/status", nil); err != nil || code != 200 {
		t.Errorf("root: %d %s %v", code, body, err)
	}
}

// Without --socket-group only root is served: the file is root:root 0660,
// and a non-root peer that may connect through group root is refused.
func TestSocketAccessRootOnly(t *testing.T) {
	testenv.Require(t, "unshare")
	dir, bin := accessDir(t)
	ns := testenv.NewNetns(t)
	d := testenv.StartDaemon(t, ns, testenv.DaemonOptions{Cmdline: "ip=off", Socket: filepath.Join(dir, "nodenet.sock")})
	fi, err := os.Stat(d.Socket)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); fi.Mode().Perm() != 0o660 || st.Uid != 0 || st.Gid != 0 {
		t.Errorf("socket %s: %v uid %d gid %d; want 0660 root:root", d.Socket, fi.Mode(), st.Uid, st.Gid)
	}
	r := runAs(t, nobody, []uint32{0}, bin, "--socket", d.Socket, "status")
	want := "nodenet: permission denied: uid 65534 is not root and the socket has no group\n"
	if r.code != 1 || r.stderr != want {
		t.Errorf("uid %d in group root: exit %d, stdout %q, stderr %q; want %q", nobody, r.code, r.stdout, r.stderr, want)
	}
	if code, body, err := d.Do("GET", "/v1/status", nil); err != nil || code != 200 {
		t.Errorf("root: %d %s %v", code, body, err)
	}
}
