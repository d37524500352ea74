package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"nodenet/api/apitest"
	"nodenet/lan"
)

// FuzzServeHTTP sends whole requests, read off the wire by net/http's own
// parser, through the server's handler to an in-memory backend holding a
// network with a member. Whatever the method, target and body: no panic,
// no redirect, no 5xx; a refusal is a JSON error with a known code and
// leaves the backend as it was; a GET changes nothing; whatever is
// accepted leaves only names and member fields Join would accept.
func FuzzServeHTTP(f *testing.F) {
	for _, seed := range []struct{ method, target, body string }{
		{"GET", "/v1/status", ""},
		{"GET", "/v1/networks", ""},
		{"POST", "/v1/networks", `{"name":"lan2","type":"bridge","network":{"dhcp":true,"cidr":"10.20.0.0/24"}}`},
		{"POST", "/v1/networks", `{"name":"v","type":"vxlan","vxlan":{"vni":100,"remotes":["192.0.2.2"]}}`},
		{"GET", "/v1/networks/lan1", ""},
		{"PATCH", "/v1/networks/lan1", `{"vxlan":{"remotes":["192.0.2.3"]}}`},
		{"DELETE", "/v1/networks/lan1", ""},
		{"GET", "/v1/networks/lan1/leases", ""},
		{"GET", "/v1/networks/lan1/members", ""},
		{"POST", "/v1/networks/lan1/members", `{"nic":"m2","netns":"/run/netns/x","ifname":"eth0","kind":"veth","mac":"02:00:00:00:00:09","ports":{"8080":80,"127.0.0.1:53/udp":53}}`},
		{"GET", "/v1/networks/lan1/members/m1", ""},
		{"DELETE", "/v1/networks/lan1/members/m1", ""},
		// Hostile ones.
		{"DELETE", "/v1/networks/lan1/members/../../lan1", ""},
		{"GET", "//v1/networks", ""},
		{"GET", "/v1/networks/%2e%2e%2flan1", ""},
		{"DELETE", "/v1/networks/lan1/members/a%2Fb", ""},
		{"GET", "/v1/networks/a%00b", ""},
		{"POST", "/v1/networks", `{"name":"x","name":"y","type":"bridge"}`},
		{"POST", "/v1/networks", `{"name":"x","type":"bridge"} {}`},
		{"POST", "/v1/networks/lan1/members", `{"nic":"m2","netns":"/proc/self/ns/../../etc"}`},
		{"POST", "/v1/networks/lan1/members", `{"nic":"m2","netns":"a","ports":{"80":80,"80/tcp":81}}`},
		{"POST", "/v1/networks/lan1/members", `{"nic":"eth%d","netns":"a","mac":"00:00:00:00:00:00"}`},
		{"PUT", "/v1/networks", ""},
		{"CONNECT", "nodenet:80", ""},
		{"OPTIONS", "*", ""},
	} {
		f.Add(seed.method, seed.target, []byte(seed.body))
	}
	f.Fuzz(func(t *testing.T, method, target string, body []byte) {
		raw := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: nodenet\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
			method, target, len(body), body)
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
		if err != nil {
			return // net/http answers 400 itself; no handler runs
		}
		b := &apitest.Backend{}
		ctx := context.Background()
		if err := b.Create(ctx, "lan1", lan.Bridge, lan.Settings{Network: lan.IPSettings{DHCP: true, CIDR: "10.10.0.0/24"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Join(ctx, "lan1", "m1", lan.PortForwards{"8080/tcp": 80}, lan.JoinOptions{Netns: "a", Ifname: "eth0"}); err != nil {
			t.Fatal(err)
		}
		before := backendState(t, b)
		s := &Server{LANs: b, Status: func() Status { return Status{Version: "fuzz"} }}
		req = req.WithContext(context.WithValue(req.Context(), peerKey{}, peerResult{peer: peer{UID: 0, PID: 1}}))
		w := httptest.NewRecorder()
		s.handler().ServeHTTP(w, req)

		after := backendState(t, b)
		what := fmt.Sprintf("%q %q %q: %d %s", method, target, body, w.Code, w.Body.Bytes())
		switch {
		case w.Code >= 300 && w.Code < 400:
			t.Fatalf("redirect: %s (Location %q)", what, w.Header().Get("Location"))
		case w.Code >= 500:
			t.Fatalf("server error: %s", what)
		case w.Code >= 400:
			checkErrorBody(t, what, w)
			if after != before {
				t.Fatalf("refused but changed the backend: %s\nbefore %s\nafter  %s", what, before, after)
			}
		case req.Method == http.MethodGet && after != before:
			t.Fatalf("a GET changed the backend: %s", what)
		}
		checkAccepted(t, what, b)
	})
}

// backendState is everything the backend holds, as one comparable string.
func backendState(t *testing.T, b *apitest.Backend) string {
	infos, err := b.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(infos)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// checkErrorBody: every refusal is {"error","code"} in JSON, nothing else.
func checkErrorBody(t *testing.T, what string, w *httptest.ResponseRecorder) {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("refusal with Content-Type %q: %s", ct, what)
	}
	var e Error
	dec := json.NewDecoder(bytes.NewReader(w.Body.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil || e.Message == "" {
		t.Fatalf("refusal is not a JSON error (%v): %s", err, what)
	}
	switch lan.Code(e.Code) {
	case lan.Invalid, lan.NotFound, lan.Conflict, lan.Unsupported:
	default:
		t.Fatalf("refusal with code %q: %s", e.Code, what)
	}
}

// checkAccepted: whatever got in passes the checks Join and Create make.
func checkAccepted(t *testing.T, what string, b *apitest.Backend) {
	t.Helper()
	infos, _ := b.List(context.Background())
	for _, n := range infos {
		if err := lan.ValidNetworkName(n.Name); err != nil {
			t.Fatalf("accepted network: %v: %s", err, what)
		}
		for _, m := range n.Members {
			errs := []error{lan.ValidNIC(m.Name), lan.ValidMAC(m.MAC), lan.ValidPorts(m.Ports)}
			if m.Ifname != "" {
				errs = append(errs, lan.ValidNIC(m.Ifname))
			}
			if m.Namespace != "" {
				errs = append(errs, lan.ValidNetns(m.Namespace))
			}
			for _, err := range errs {
				if err != nil {
					t.Fatalf("accepted member %+v: %v: %s", m, err, what)
				}
			}
		}
	}
}
