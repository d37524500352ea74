package api

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"nodenet/boot"
	"nodenet/lan"
)

func startServer(t *testing.T, socket string) *Server {
	t.Helper()
	s := &Server{Socket: socket, Status: func() Status {
		return Status{Version: "test", Uplinks: []boot.UplinkStatus{{Name: "up0", State: "bound"}}}
	}}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return s
}

func TestStatusRoundTrip(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "nodenet.sock")
	startServer(t, socket)
	st, err := NewClient(socket).Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Version != "test" || len(st.Uplinks) != 1 || st.Uplinks[0].Name != "up0" {
		t.Fatalf("got %+v", st)
	}
	if fi, _ := os.Stat(socket); fi.Mode().Perm() != 0o660 {
		t.Fatalf("socket mode %v, want 0660", fi.Mode().Perm())
	}
}

func TestUnknownPathIsJSONNotFound(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "nodenet.sock")
	startServer(t, socket)
	var out map[string]any
	err := NewClient(socket).do(context.Background(), "GET", "/v1/nope", nil, &out)
	var lanErr *lan.Error
	if !errors.As(err, &lanErr) || lanErr.Code != lan.NotFound || !strings.Contains(lanErr.Error(), "/v1/nope") {
		t.Fatalf("got %v", err)
	}
}

// A socket file left by a killed daemon is replaced; a live one is not.
func TestListenReplacesStaleSocketOnly(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "nodenet.sock")
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close() // the file stays, nobody answers: stale
	startServer(t, socket)

	second := &Server{Socket: socket}
	if err := second.Listen(); err == nil || !strings.Contains(err.Error(), "another nodenet daemon") {
		t.Fatalf("second Listen: %v", err)
	}
	if _, err := NewClient(socket).Status(context.Background()); err != nil {
		t.Fatalf("first server lost its socket: %v", err)
	}
}
