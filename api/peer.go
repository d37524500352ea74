package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// peer is who is on the other end of a connection, as the kernel says.
type peer struct {
	PID      int32
	UID, GID uint32
	Groups   []uint32 // supplementary groups; read only for a non-root peer
}

type peerKey struct{}

// peerResult is what connContext found out about a connection.
type peerResult struct {
	peer peer
	err  error
}

// connContext reads the peer's credentials once per connection.
func (s *Server) connContext(ctx context.Context, c net.Conn) context.Context {
	lookup := s.peerOf
	if lookup == nil {
		lookup = peerCredentials
	}
	p, err := lookup(c)
	return context.WithValue(ctx, peerKey{}, peerResult{p, err})
}

// checkPeer lets root and members of Group through; everybody else gets 403.
func (s *Server) checkPeer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pr, ok := r.Context().Value(peerKey{}).(peerResult)
		if !ok {
			pr.err = errors.New("not a unix socket connection")
		}
		if err := s.allow(pr); err != nil {
			s.log().Warn("request refused", "method", r.Method, "path", r.URL.Path, "uid", pr.peer.UID, "pid", pr.peer.PID, "err", err)
			writeJSON(w, http.StatusForbidden, Error{Message: err.Error(), Code: CodeForbidden})
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) allow(pr peerResult) error {
	if pr.err != nil {
		return fmt.Errorf("permission denied: peer credentials: %w", pr.err)
	}
	p := pr.peer
	if p.UID == 0 {
		return nil
	}
	if s.Group <= 0 {
		return fmt.Errorf("permission denied: uid %d is not root and the socket has no group", p.UID)
	}
	g := uint32(s.Group)
	if p.GID == g || slices.Contains(p.Groups, g) {
		return nil
	}
	return fmt.Errorf("permission denied: uid %d is neither root nor in group %d", p.UID, s.Group)
}

// peerCredentials reads SO_PEERCRED (the peer's ids when it connected) and,
// for a non-root peer, its supplementary groups from /proc.
func peerCredentials(c net.Conn) (peer, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return peer{}, fmt.Errorf("%T is not a socket", c)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return peer{}, err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return peer{}, err
	}
	if credErr != nil {
		return peer{}, fmt.Errorf("SO_PEERCRED: %w", credErr)
	}
	p := peer{PID: cred.Pid, UID: cred.Uid, GID: cred.Gid}
	if p.UID != 0 {
		// Unreadable groups (a peer in another pid namespace shows as pid 0)
		// leave only the primary gid to match.
		p.Groups, _ = procGroups(p.PID)
	}
	return p, nil
}

// procDir is where procGroups reads; tests point it elsewhere.
var procDir = "/proc"

// procGroups reads the "Groups:" line of /proc/PID/status.
func procGroups(pid int32) ([]uint32, error) {
	if pid <= 0 {
		return nil, fmt.Errorf("pid %d: not visible from here", pid)
	}
	data, err := os.ReadFile(filepath.Join(procDir, strconv.Itoa(int(pid)), "status"))
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		rest, ok := strings.CutPrefix(line, "Groups:")
		if !ok {
			continue
		}
		var groups []uint32
		for _, f := range strings.Fields(rest) {
			g, err := strconv.ParseUint(f, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("pid %d: Groups %q: %w", pid, f, err)
			}
			groups = append(groups, uint32(g))
		}
		return groups, nil
	}
	return nil, fmt.Errorf("pid %d: no Groups line in status", pid)
}
