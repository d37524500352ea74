package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"nodenet/api/apitest"
	"nodenet/ovsdb"

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

// rawRequest writes req as it is on a fresh connection to socket and
// reads one response.
func rawRequest(t *testing.T, socket, req string) (*http.Response, string) {
	t.Helper()
	c, err := net.Dial("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	go io.WriteString(c, req) // the server may answer before it read everything
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%.60q: %v", req, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// Limits net/http enforces before the handler runs, and the ones the
// handler adds: a body announced too large is refused at once, without
// waiting for bytes that never come.
func TestRequestLimits(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "nodenet.sock")
	rec := &recorder{}
	s := &Server{Socket: socket, LANs: &apitest.Backend{Hook: rec.hook}}
	serve(t, s)
	start := time.Now()
	resp, body := rawRequest(t, socket, "POST /v1/networks HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n\r\n{")
	if resp.StatusCode != 413 || !strings.Contains(body, "request body: larger than 64 KiB") || time.Since(start) > 2*time.Second {
		t.Errorf("announced 1 GiB: %d %s after %v", resp.StatusCode, body, time.Since(start))
	}
	chunked := "POST /v1/networks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	for range 20 {
		chunked += fmt.Sprintf("%x\r\n%s\r\n", 4096, strings.Repeat("a", 4096))
	}
	resp, body = rawRequest(t, socket, chunked+"0\r\n\r\n")
	if resp.StatusCode != 413 || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("80 KiB chunked: %d %s", resp.StatusCode, body)
	}
	resp, body = rawRequest(t, socket, "GET /v1/networks HTTP/1.1\r\nHost: x\r\nX-Pad: "+strings.Repeat("a", MaxHeader+8192)+"\r\n\r\n")
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("header over %d bytes: %d %s", MaxHeader, resp.StatusCode, body)
	}
	// The mux would answer 307 to /v1/networks/lan2 with the method kept.
	resp, body = rawRequest(t, socket, "DELETE /v1/networks/lan1/members/../../lan2 HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.StatusCode != 400 || resp.Header.Get("Location") != "" || !strings.Contains(body, "not in canonical form") {
		t.Errorf("DELETE with ..: %d Location %q %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	if len(rec.ops) != 0 {
		t.Errorf("the backend was called: %v", rec.ops)
	}
}

// An error from an unreachable OVS database is a 503: the client may retry.
func TestWriteErrorOVSDBUnavailable(t *testing.T) {
	w := httptest.NewRecorder()
	err := lan.Errorf(lan.Internal, "join lan1/a: OVS port nnv1: %w", ovsdb.ErrDisconnected)
	(&Server{}).writeError(w, httptest.NewRequest(http.MethodPost, "/v1/networks/lan1/members", nil), err)
	var e Error
	json.Unmarshal(w.Body.Bytes(), &e)
	if w.Code != http.StatusServiceUnavailable || e.Code != string(lan.Internal) || !strings.Contains(e.Message, "not connected") {
		t.Errorf("got %d %s", w.Code, w.Body.String())
	}
}
