package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"nodenet/lan"
)

// OpTimeout bounds one call into the LAN backend; a Join that makes links,
// moves them into a netns and waits for OVS fits in it.
const OpTimeout = 60 * time.Second

// Server answers the control socket.
type Server struct {
	Socket string
	Status func() Status
	// LANs answers /v1/networks; while nil those endpoints answer 503.
	// Set it before Serve, or later with SetLANs.
	LANs Backend
	// Group is the gid whose members may use the socket beside root; Listen
	// gives the socket file to it. 0 or less: root only.
	Group int
	Log   *slog.Logger

	// peerOf reads who is on the other end of a connection; tests fake it.
	peerOf func(net.Conn) (peer, error)

	lans atomic.Pointer[Backend]
	http *http.Server
	ln   net.Listener
}

// SetLANs attaches (or replaces) the LAN backend while serving.
func (s *Server) SetLANs(b Backend) { s.lans.Store(&b) }

func (s *Server) backend() Backend {
	if b := s.lans.Load(); b != nil {
		return *b
	}
	return s.LANs
}

// Listen claims the socket. A stale file left by a killed daemon is replaced;
// a socket another daemon still answers on is an error, never stolen.
func (s *Server) Listen() error {
	if err := os.MkdirAll(filepath.Dir(s.Socket), 0o755); err != nil {
		return fmt.Errorf("socket %s: %w", s.Socket, err)
	}
	if c, err := net.DialTimeout("unix", s.Socket, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("socket %s: another nodenet daemon is answering on it", s.Socket)
	}
	if err := os.Remove(s.Socket); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("socket %s: remove stale file: %w", s.Socket, err)
	}
	ln, err := net.Listen("unix", s.Socket)
	if err != nil {
		return fmt.Errorf("socket %s: %w", s.Socket, err)
	}
	if err := s.restrict(); err != nil {
		ln.Close()
		return fmt.Errorf("socket %s: %w", s.Socket, err)
	}
	s.ln = ln
	s.http = &http.Server{
		Handler:           s.handler(),
		ConnContext:       s.connContext,
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    MaxHeader,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      OpTimeout + 10*time.Second, // the backend's own timeout answers first
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log().Handler(), slog.LevelDebug),
	}
	return nil
}

// restrict makes the socket 0660, owned by Group when one is set: the
// peer check below is the real gate, the mode keeps others from connecting.
func (s *Server) restrict() error {
	if s.Group > 0 {
		if err := os.Chown(s.Socket, -1, s.Group); err != nil {
			return err
		}
	}
	return os.Chmod(s.Socket, 0o660)
}

// Serve answers requests until Shutdown.
func (s *Server) Serve() error {
	if s.http == nil {
		return errors.New("api: Serve before Listen")
	}
	err := s.http.Serve(s.ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops serving and removes the socket file.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.http == nil {
		return nil
	}
	err := s.http.Shutdown(ctx)
	os.Remove(s.Socket)
	return err
}

// handler routes the API; every request passes the peer check first.
func (s *Server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/v1/status", methods{"GET": func(w http.ResponseWriter, r *http.Request) {
		var st Status
		if s.Status != nil {
			st = s.Status()
		}
		writeJSON(w, http.StatusOK, st)
	}})
	mux.Handle("/v1/networks", methods{"GET": s.lan(listNetworks), "POST": s.lan(createNetwork)})
	mux.Handle("/v1/networks/{name}", methods{"GET": s.lan(getNetwork), "PATCH": s.lan(updateNetwork), "DELETE": s.lan(destroyNetwork)})
	mux.Handle("/v1/networks/{name}/leases", methods{"GET": s.lan(getLeases)})
	mux.Handle("/v1/networks/{name}/members", methods{"GET": s.lan(listMembers), "POST": s.lan(join)})
	mux.Handle("/v1/networks/{name}/members/{nic}", methods{"GET": s.lan(getMember), "DELETE": s.lan(leave)})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, Error{Message: fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path), Code: string(lan.NotFound)})
	})
	return s.checkPeer(canonical(mux))
}

// MaxHeader bounds a request's header: the API's requests carry a few
// short lines. net/http answers a larger one itself (431, plain text).
const MaxHeader = 16 << 10

// canonical refuses a path the mux would clean and redirect: it answers
// such a path with a redirect that keeps the method, so a client that
// follows it would DELETE what "/v1/networks/a/members/../../b" cleans
// to, which is not the path it sent. The mux compares the escaped path.
func canonical(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.EscapedPath()
		if !strings.HasPrefix(p, "/") { // CONNECT's host:port, OPTIONS *
			writeJSON(w, http.StatusBadRequest, Error{
				Message: fmt.Sprintf("request target %q: want a path such as /v1/networks", r.RequestURI),
				Code:    string(lan.Invalid)})
			return
		}
		if clean := cleanPath(p); clean != p {
			writeJSON(w, http.StatusBadRequest, Error{
				Message: fmt.Sprintf("path %q: not in canonical form (no empty, . or .. segments): ask for %q", p, clean),
				Code:    string(lan.Invalid)})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// cleanPath is the mux's: path.Clean, keeping a trailing slash.
func cleanPath(p string) string {
	np := path.Clean(p)
	if strings.HasSuffix(p, "/") && np != "/" {
		np += "/"
	}
	return np
}

// methods dispatches on the method, answering 405 in JSON (the mux's own
// 405 is plain text).
type methods map[string]http.HandlerFunc

func (m methods) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h, ok := m[r.Method]; ok {
		h(w, r)
		return
	}
	allowed := make([]string, 0, len(m))
	for method := range m {
		allowed = append(allowed, method)
	}
	sort.Strings(allowed)
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	writeJSON(w, http.StatusMethodNotAllowed, Error{
		Message: fmt.Sprintf("method %s not allowed on %s: use %s", r.Method, r.URL.Path, strings.Join(allowed, " or ")),
		Code:    string(lan.Invalid)})
}

// lanHandler is a LAN endpoint: it gets the backend and a bounded context
// derived from the request's, and returns an error to be mapped.
type lanHandler func(ctx context.Context, b Backend, w http.ResponseWriter, r *http.Request) error

func (s *Server) lan(h lanHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b := s.backend()
		if b == nil {
			s.writeError(w, r, &statusError{http.StatusServiceUnavailable, lan.Internal,
				"LANs are not available yet: the daemon is still starting them"})
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), OpTimeout)
		defer cancel()
		if err := h(ctx, b, w, r); err != nil {
			s.writeError(w, r, err)
		}
	}
}

// statusError is an answer whose status lan's codes do not decide.
type statusError struct {
	status int
	code   lan.Code
	msg    string
}

func (e *statusError) Error() string { return e.msg }

// httpStatus maps lan's error codes to HTTP.
var httpStatus = map[lan.Code]int{
	lan.Invalid:     http.StatusBadRequest,
	lan.NotFound:    http.StatusNotFound,
	lan.Conflict:    http.StatusConflict,
	lan.Unsupported: http.StatusUnprocessableEntity,
	lan.Internal:    http.StatusInternalServerError,
}

// writeError answers err as {"error", "code"} with its sentence.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code, status := lan.CodeOf(err), 0
	var se *statusError
	if errors.As(err, &se) {
		code, status = se.code, se.status
	} else if st, ok := httpStatus[code]; ok {
		status = st
	} else {
		code, status = lan.Internal, http.StatusInternalServerError
	}
	switch {
	case status == http.StatusServiceUnavailable:
		// Expected while the daemon starts; clients retry.
		s.log().Debug("request refused", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	case lan.Unavailable(err):
		// OVS's database is restarting: the client may retry.
		status = http.StatusServiceUnavailable
		s.log().Warn("request failed: OVS database unreachable", "method", r.Method, "path", r.URL.Path, "err", err)
	case status >= 500:
		s.log().Error("request failed", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	}
	writeJSON(w, status, Error{Message: err.Error(), Code: string(code)})
}

func (s *Server) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
