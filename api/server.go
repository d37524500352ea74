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
	"path/filepath"
	"time"
)

// Server answers the control socket.
type Server struct {
	Socket string
	Status func() Status
	Log    *slog.Logger

	http *http.Server
	ln   net.Listener
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
	if err := os.Chmod(s.Socket, 0o660); err != nil {
		ln.Close()
		return fmt.Errorf("socket %s: %w", s.Socket, err)
	}
	s.ln = ln
	return nil
}

// Serve answers requests until Shutdown.
func (s *Server) Serve() error {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Status())
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, Error{Message: fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path), Code: "not_found"})
	})
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
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

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
