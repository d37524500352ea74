package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"nodenet/api/apitest"
	"nodenet/lan"
)

// serve starts s on a socket in a fresh directory and returns a client.
func serve(t *testing.T, s *Server) *Client {
	t.Helper()
	if s.Socket == "" {
		s.Socket = filepath.Join(t.TempDir(), "nodenet.sock")
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return NewClient(s.Socket)
}

func TestAllow(t *testing.T) {
	for _, tt := range []struct {
		group int
		pr    peerResult
		want  string // "" = allowed
	}{
		{-1, peerResult{peer: peer{UID: 0, GID: 0}}, ""},
		{0, peerResult{peer: peer{UID: 0, GID: 100}}, ""},
		{-1, peerResult{peer: peer{UID: 1000, GID: 1000}}, "permission denied: uid 1000 is not root and the socket has no group"},
		{0, peerResult{peer: peer{UID: 1000, GID: 0}}, "permission denied: uid 1000 is not root and the socket has no group"},
		{50, peerResult{peer: peer{UID: 1000, GID: 50}}, ""},
		{50, peerResult{peer: peer{UID: 1000, GID: 1000, Groups: []uint32{4, 50}}}, ""},
		{50, peerResult{peer: peer{UID: 1000, GID: 1000, Groups: []uint32{4, 51}}}, "permission denied: uid 1000 is neither root nor in group 50"},
		{50, peerResult{err: errors.New("SO_PEERCRED: bad file descriptor")}, "permission denied: peer credentials: SO_PEERCRED: bad file descriptor"},
	} {
		s := &Server{Group: tt.group}
		got := ""
		if err := s.allow(tt.pr); err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("group %d, %+v: got %q, want %q", tt.group, tt.pr, got, tt.want)
		}
	}
}

// A peer that is neither root nor in the group gets 403 on every endpoint,
// status included, and the backend never hears of it.
func TestNonRootPeerRefused(t *testing.T) {
	rec := &recorder{}
	s := &Server{Group: 50, LANs: &apitest.Backend{Hook: rec.hook}, Status: func() Status { return Status{} },
		peerOf: func(net.Conn) (peer, error) { return peer{PID: 42, UID: 1000, GID: 1000, Groups: []uint32{7}}, nil }}
	c := serve(t, s)
	want := "permission denied: uid 1000 is neither root nor in group 50"
	_, errStatus := c.Status(context.Background())
	_, errList := c.List(context.Background())
	errCreate := c.Create(context.Background(), "lan1", lan.Bridge, lan.Settings{})
	for _, err := range []error{errStatus, errList, errCreate} {
		var le *lan.Error
		if !errors.As(err, &le) || le.Code != CodeForbidden || le.Error() != want {
			t.Errorf("got %v, want forbidden %q", err, want)
		}
	}
	if len(rec.ops) != 0 {
		t.Errorf("the backend was called: %v", rec.ops)
	}
}

// The real SO_PEERCRED lookup lets this (root) test process in and sees
// its own pid and uid.
func TestRootPeerAccepted(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root")
	}
	seen := make(chan peer, 1)
	s := &Server{LANs: &apitest.Backend{}, peerOf: func(c net.Conn) (peer, error) {
		p, err := peerCredentials(c)
		seen <- p
		return p, err
	}}
	if _, err := serve(t, s).List(context.Background()); err != nil {
		t.Fatal(err)
	}
	if p := <-seen; p.UID != 0 || p.PID != int32(os.Getpid()) {
		t.Errorf("peer %+v, want uid 0 pid %d", p, os.Getpid())
	}
}

// A real non-root process: let in through a supplementary group read from
// /proc, refused when it is not in the group.
func TestNonRootPeerThroughGroup(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run a child as another user")
	}
	// The go tool's build directory is root's alone: run a copy.
	bin, err := os.MkdirTemp("", "nodenet-peer-bin")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(bin)
	os.Chmod(bin, 0o755)
	exe := filepath.Join(bin, "api.test")
	if err := copyExecutable(exe); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		group int
		want  string
	}{
		{4242, "ok"},
		{4243, "forbidden: permission denied: uid 65534 is neither root nor in group 4243"},
	} {
		dir, err := os.MkdirTemp("", "nodenet-peer")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		os.Chmod(dir, 0o755)
		s := &Server{Socket: filepath.Join(dir, "s.sock"), Group: tt.group, LANs: &apitest.Backend{}}
		serve(t, s)
		os.Chmod(s.Socket, 0o666) // so that the refused child can connect at all
		cmd := exec.Command(exe, "-test.run=^TestHelperPeerClient$")
		cmd.Env = append(os.Environ(), "NODENET_TEST_PEER_SOCKET="+s.Socket)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{4242}}}
		out, err := cmd.CombinedOutput()
		if errors.Is(err, os.ErrPermission) || strings.Contains(string(out), "permission denied") && !strings.Contains(string(out), "result:") {
			t.Skipf("cannot run the test binary as uid 65534: %v %s", err, out)
		}
		if got := string(out); !strings.Contains(got, "result: "+tt.want+"\n") {
			t.Errorf("group %d: child said %q (%v), want result %q", tt.group, got, err, tt.want)
		}
	}
}

func copyExecutable(to string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	data, err := os.ReadFile(self)
	if err != nil {
		return err
	}
	return os.WriteFile(to, data, 0o755)
}

// TestHelperPeerClient is the child of TestNonRootPeerThroughGroup.
func TestHelperPeerClient(t *testing.T) {
	socket := os.Getenv("NODENET_TEST_PEER_SOCKET")
	if socket == "" {
		t.Skip("helper process only")
	}
	_, err := NewClient(socket).List(context.Background())
	var le *lan.Error
	switch {
	case err == nil:
		fmt.Println("result: ok")
	case errors.As(err, &le):
		fmt.Printf("result: %s: %s\n", le.Code, le.Error())
	default:
		fmt.Printf("result: error: %v\n", err)
	}
}

func TestProcGroups(t *testing.T) {
	dir := t.TempDir()
	old := procDir
	procDir = dir
	t.Cleanup(func() { procDir = old })
	os.MkdirAll(filepath.Join(dir, "7"), 0o755)
	os.WriteFile(filepath.Join(dir, "7", "status"), []byte("Name:\tsh\nUid:\t1000\t1000\t1000\t1000\nGroups:\t4 24 27 \nNgid:\t0\n"), 0o644)
	os.MkdirAll(filepath.Join(dir, "8"), 0o755)
	os.WriteFile(filepath.Join(dir, "8", "status"), []byte("Name:\tsh\nGroups:\n"), 0o644)
	got, err := procGroups(7)
	if err != nil || fmt.Sprint(got) != "[4 24 27]" {
		t.Errorf("pid 7: got %v, %v", got, err)
	}
	if got, err := procGroups(8); err != nil || len(got) != 0 {
		t.Errorf("pid 8 (no groups): got %v, %v", got, err)
	}
	for _, pid := range []int32{0, 9} {
		if _, err := procGroups(pid); err == nil {
			t.Errorf("pid %d: no error", pid)
		}
	}
}
