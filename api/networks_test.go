package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"nodenet/api/apitest"
	"nodenet/lan"
)

// request runs one request through the server's handler as a root peer.
func request(t *testing.T, s *Server, method, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r = r.WithContext(context.WithValue(r.Context(), peerKey{}, peerResult{peer: peer{UID: 0, PID: 1}}))
	w := httptest.NewRecorder()
	s.handler().ServeHTTP(w, r)
	return w
}

// compact makes JSON comparable; anything else is returned as is.
func compact(b []byte) string {
	var out bytes.Buffer
	if json.Compact(&out, b) != nil {
		return string(b)
	}
	return out.String()
}

// recorder is a backend hook that notes which operations ran.
type recorder struct {
	mu  sync.Mutex
	ops []string
}

func (r *recorder) hook(_ context.Context, op string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops = append(r.ops, op)
	return nil
}

const (
	lan1     = `{"name":"lan1","type":"bridge","network":{"dhcp":false,"cidr":"10.10.0.0/24"},"nat":true,"members":[]}`
	m1       = `{"name":"m1","network":"lan1","mac":"02:00:00:00:00:01","netns":"a","ip":"10.0.0.2","host_ifname":"nnv1","ifname":"eth0","kind":"veth","ports":{"8080":80}}`
	lan1With = `{"name":"lan1","type":"bridge","network":{"dhcp":false,"cidr":"10.10.0.0/24"},"nat":true,"members":[` + m1 + `]}`
)

// Every route, in the order a node agent uses them, with exact answers.
func TestRoutes(t *testing.T) {
	s := &Server{LANs: &apitest.Backend{}}
	for _, tt := range []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"GET", "/v1/networks", "", 200, `[]`},
		{"POST", "/v1/networks", `{"name":"lan1","type":"bridge","network":{"cidr":"10.10.0.0/24"}}`, 201, lan1},
		{"POST", "/v1/networks", `{"name":"lan1","type":"bridge"}`, 409, `{"error":"network \"lan1\" already exists","code":"conflict"}`},
		{"GET", "/v1/networks", "", 200, `[` + lan1 + `]`},
		{"GET", "/v1/networks/lan1", "", 200, lan1},
		{"GET", "/v1/networks/lan1/members", "", 200, `[]`},
		{"POST", "/v1/networks/lan1/members", `{"nic":"m1","netns":"a","ifname":"eth0","ports":{"8080":80}}`, 201, m1},
		{"POST", "/v1/networks/lan1/members", `{"nic":"m1"}`, 409, `{"error":"network \"lan1\" already has a member \"m1\"","code":"conflict"}`},
		{"GET", "/v1/networks/lan1/members", "", 200, `[` + m1 + `]`},
		{"GET", "/v1/networks/lan1/members/m1", "", 200, m1},
		{"GET", "/v1/networks/lan1", "", 200, lan1With},
		{"DELETE", "/v1/networks/lan1", "", 409, `{"error":"network \"lan1\" still has 1 members: leave them first","code":"conflict"}`},
		{"DELETE", "/v1/networks/lan1/members/m1", "", 204, ``},
		{"GET", "/v1/networks/lan1/members/m1", "", 404, `{"error":"network \"lan1\" has no member \"m1\"","code":"not_found"}`},
		{"DELETE", "/v1/networks/lan1/members/m1", "", 404, `{"error":"network \"lan1\" has no member \"m1\"","code":"not_found"}`},
		{"DELETE", "/v1/networks/lan1", "", 204, ``},
		{"GET", "/v1/networks/lan1", "", 404, `{"error":"network \"lan1\" does not exist","code":"not_found"}`},
		{"POST", "/v1/networks/lan1/members", `{}`, 404, `{"error":"network \"lan1\" does not exist","code":"not_found"}`},
	} {
		w := request(t, s, tt.method, tt.path, tt.body)
		if got := compact(w.Body.Bytes()); w.Code != tt.status || got != tt.want {
			t.Errorf("%s %s %s:\n got %d %s\nwant %d %s", tt.method, tt.path, tt.body, w.Code, got, tt.status, tt.want)
		}
		if tt.status == 201 && !strings.HasPrefix(w.Header().Get("Location"), "/v1/networks/lan1") {
			t.Errorf("%s %s: Location %q", tt.method, tt.path, w.Header().Get("Location"))
		}
		if w.Code != 204 && w.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: Content-Type %q", tt.method, tt.path, w.Header().Get("Content-Type"))
		}
	}
}

// Each of lan's codes becomes its status, with the backend's sentence.
func TestErrorMapping(t *testing.T) {
	for _, tt := range []struct {
		err    error
		status int
		code   string
	}{
		{lan.Errorf(lan.Invalid, "mac %q: bad", "x"), 400, "invalid"},
		{lan.Errorf(lan.NotFound, "network %q does not exist", "x"), 404, "not_found"},
		{lan.Errorf(lan.Conflict, "cidr overlaps"), 409, "conflict"},
		{lan.Errorf(lan.Unsupported, "network type vlan is not supported yet"), 422, "unsupported"},
		{lan.Errorf(lan.Internal, "save state: disk full"), 500, "internal"},
		{fmt.Errorf("join: %w", errors.New("netlink: busy")), 500, "internal"},              // untyped
		{fmt.Errorf("join x: %w", lan.Errorf(lan.Conflict, "taken")), 409, "conflict"},      // wrapped
		{&lan.Error{Code: "weird", Err: errors.New("a code nobody maps")}, 500, "internal"}, // unknown code
		{fmt.Errorf("join: %w", context.DeadlineExceeded), 500, "internal"},                 // timed out
	} {
		s := &Server{LANs: &apitest.Backend{Hook: func(context.Context, string) error { return tt.err }}}
		w := request(t, s, "GET", "/v1/networks/lan1", "")
		want, _ := json.Marshal(Error{Message: tt.err.Error(), Code: tt.code})
		if got := compact(w.Body.Bytes()); w.Code != tt.status || got != string(want) {
			t.Errorf("%v:\n got %d %s\nwant %d %s", tt.err, w.Code, got, tt.status, want)
		}
	}
}

// Bad requests are answered before the backend is called.
func TestBadRequests(t *testing.T) {
	rec := &recorder{}
	s := &Server{LANs: &apitest.Backend{Hook: rec.hook}}
	huge := `{"name":"lan1","type":"bridge","network":{"dns":["` + strings.Repeat("1", MaxBody) + `"]}}`
	for _, tt := range []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"POST", "/v1/networks", huge, 413, "request body: larger than 64 KiB"},
		{"POST", "/v1/networks", `{"name":"lan1","type":"bridge","bogus":1}`, 400, `request body: unknown field "bogus"`},
		{"POST", "/v1/networks", `{"name":"lan1","type":"bridge","network":{"cidr":"10.0.0.0/8","gw":"x"}}`, 400, `request body: unknown field "gw"`},
		{"POST", "/v1/networks", `{"name":"lan1","type":"bridge"} x`, 400, "request body: data after the JSON object (at byte 32)"},
		{"POST", "/v1/networks", `{"name":"lan1","type":"bridge"}{}`, 400, "request body: data after the JSON object (at byte 32)"},
		{"POST", "/v1/networks", ``, 400, "request body: empty; want a JSON object"},
		{"POST", "/v1/networks", `null`, 400, "request body: want a JSON object"},
		{"POST", "/v1/networks", `{"name":"lan1"`, 400, "request body: JSON ends early"},
		{"POST", "/v1/networks", `{"name":lan1}`, 400, "request body: invalid JSON at byte 9: invalid character 'l' looking for beginning of value"},
		{"POST", "/v1/networks", `{"name":5,"type":"bridge"}`, 400, "request body: field name: want string, not number"},
		{"POST", "/v1/networks", `{"name":"lan1"}`, 400, "settings: type is required (bridge, vlan, vxlan, macvlan, passthrough or zerotier)"},
		{"POST", "/v1/networks", `{"name":"lan1","type":"token-ring"}`, 400, `request body: network type "token-ring": want bridge, vlan, vxlan, macvlan, passthrough or zerotier`},
		{"POST", "/v1/networks", `{"type":"bridge"}`, 400, "settings: name is required"},
		{"POST", "/v1/networks", `{"name":"LAN1","type":"bridge"}`, 400, `network name "LAN1": want 1-32 of a-z, 0-9 and -, starting with a letter`},
		{"GET", "/v1/networks/..%2Fx", "", 400, `network name "../x": want 1-32 of a-z, 0-9 and -, starting with a letter`},
		{"GET", "/v1/networks/UPPER", "", 400, `network name "UPPER": want 1-32 of a-z, 0-9 and -, starting with a letter`},
		{"DELETE", "/v1/networks/" + strings.Repeat("a", 33), "", 400, `network name "` + strings.Repeat("a", 33) + `": want 1-32 of a-z, 0-9 and -, starting with a letter`},
		{"GET", "/v1/networks/1lan", "", 400, `network name "1lan": want 1-32 of a-z, 0-9 and -, starting with a letter`},
		{"GET", "/v1/networks/lan1/members/a%2Fb", "", 400, `interface name "a/b": no '/', ':', '%', spaces or non-ASCII`},
		{"DELETE", "/v1/networks/lan1/members/" + strings.Repeat("n", 16), "", 400, `interface name "nnnnnnnnnnnnnnnn": want 1-15 bytes`},
		{"GET", "/v1/networks/lan1/members/a%20b", "", 400, `interface name "a b": no '/', ':', '%', spaces or non-ASCII`},
		{"POST", "/v1/networks/BAD/members", `{}`, 400, `network name "BAD": want 1-32 of a-z, 0-9 and -, starting with a letter`},
		{"POST", "/v1/networks/lan1/members", `{"nic":"a:b"}`, 400, `nic: interface name "a:b": no '/', ':', '%', spaces or non-ASCII`},
		{"POST", "/v1/networks/lan1/members", `{"ifname":"..","kind":"tap"}`, 400, `ifname: interface name "..": want 1-15 bytes`},
		{"POST", "/v1/networks/lan1/members", `{"ports":{"80":"eighty"}}`, 400, `request body: field ports: want uint32, not string`},
		{"POST", "/v1/networks/lan1/members", `{"ports":{"80":-1}}`, 400, `request body: field ports: want uint32, not number -1`},
		// Hostile input: what encoding/json alone would take.
		{"POST", "/v1/networks", `{"name":"lan1","name":"lan2","type":"bridge"}`, 400, `request body: key "name" given twice (keys match regardless of case)`},
		{"POST", "/v1/networks", `{"name":"lan1","NAME":"lan2","type":"bridge"}`, 400, `request body: key "NAME" given twice (keys match regardless of case)`},
		{"POST", "/v1/networks", `{"name":"lan1","type":"bridge","network":{"dns":[{"a":1,"a":2}]}}`, 400, `request body: field network.dns: want string, not object`},
		{"POST", "/v1/networks", `{"name":"lan1","type":"vxlan","vxlan":{"vni":1,"VNI":2}}`, 400, `request body: key "VNI" given twice (keys match regardless of case)`},
		{"POST", "/v1/networks/lan1/members", `{"ports":{"80":80,"80":81}}`, 400, `request body: key "80" given twice (keys match regardless of case)`},
		{"POST", "/v1/networks/lan1/members", `{"ports":{"80":80,"80/tcp":81}}`, 400, `port forwards "80" and "80/tcp" both name host port 80/tcp`},
		{"POST", "/v1/networks/lan1/members", `{"ports":{"80/sctp":80}}`, 400, `port forward "80/sctp": protocol "sctp": want tcp or udp: invalid`},
		{"POST", "/v1/networks/lan1/members", `{"netns":"/run/netns/../../etc/shadow"}`, 400, `netns "/run/netns/../../etc/shadow": want NAME, /run/netns/NAME or /proc/PID/ns/net`},
		{"POST", "/v1/networks/lan1/members", `{"netns":"/proc/self/ns/net"}`, 400, `netns "/proc/self/ns/net": want NAME, /run/netns/NAME or /proc/PID/ns/net`},
		{"POST", "/v1/networks/lan1/members", `{"mac":"00:00:00:00:00:00"}`, 400, `mac "00:00:00:00:00:00": want a unicast Ethernet address such as 02:00:00:00:00:01`},
		{"POST", "/v1/networks/lan1/members", `{"ifname":"eth%d"}`, 400, `ifname: interface name "eth%d": no '/', ':', '%', spaces or non-ASCII`},
		// Paths the mux would redirect (keeping the method) to another object.
		{"DELETE", "/v1/networks/lan1/members/../../lan2", "", 400, `path "/v1/networks/lan1/members/../../lan2": not in canonical form (no empty, . or .. segments): ask for "/v1/networks/lan2"`},
		{"GET", "//v1/networks", "", 400, `path "//v1/networks": not in canonical form (no empty, . or .. segments): ask for "/v1/networks"`},
		{"GET", "/v1/networks/./lan1", "", 400, `path "/v1/networks/./lan1": not in canonical form (no empty, . or .. segments): ask for "/v1/networks/lan1"`},
	} {
		w := request(t, s, tt.method, tt.path, tt.body)
		want, _ := json.Marshal(Error{Message: tt.want, Code: "invalid"})
		if got := compact(w.Body.Bytes()); w.Code != tt.status || got != string(want) {
			t.Errorf("%s %s %.60s:\n got %d %s\nwant %d %s", tt.method, tt.path, tt.body, w.Code, got, tt.status, want)
		}
	}
	if len(rec.ops) != 0 {
		t.Errorf("the backend was called: %v", rec.ops)
	}
}

func TestMethodNotAllowedAndUnknownPath(t *testing.T) {
	s := &Server{LANs: &apitest.Backend{}}
	for _, tt := range []struct {
		method, path string
		status       int
		allow, want  string
	}{
		{"PUT", "/v1/networks", 405, "GET, POST", `{"error":"method PUT not allowed on /v1/networks: use GET or POST","code":"invalid"}`},
		{"POST", "/v1/networks/lan1", 405, "DELETE, GET, PATCH", `{"error":"method POST not allowed on /v1/networks/lan1: use DELETE or GET or PATCH","code":"invalid"}`},
		{"PATCH", "/v1/networks/lan1/members/m1", 405, "DELETE, GET", `{"error":"method PATCH not allowed on /v1/networks/lan1/members/m1: use DELETE or GET","code":"invalid"}`},
		{"DELETE", "/v1/status", 405, "GET", `{"error":"method DELETE not allowed on /v1/status: use GET","code":"invalid"}`},
		{"GET", "/v1/networks/lan1/routes", 404, "", `{"error":"no such endpoint: GET /v1/networks/lan1/routes","code":"not_found"}`},
		{"POST", "/v1/networks/lan1/leases", 405, "GET", `{"error":"method POST not allowed on /v1/networks/lan1/leases: use GET","code":"invalid"}`},
		{"GET", "/v2/networks", 404, "", `{"error":"no such endpoint: GET /v2/networks","code":"not_found"}`},
	} {
		w := request(t, s, tt.method, tt.path, "")
		if got := compact(w.Body.Bytes()); w.Code != tt.status || got != tt.want || w.Header().Get("Allow") != tt.allow {
			t.Errorf("%s %s:\n got %d Allow %q %s\nwant %d Allow %q %s", tt.method, tt.path, w.Code, w.Header().Get("Allow"), got, tt.status, tt.allow, tt.want)
		}
	}
}

// Until the daemon attaches its LANs, their endpoints say so; status works.
func TestLANsNotAvailableYet(t *testing.T) {
	s := &Server{Status: func() Status { return Status{Version: "t"} }}
	w := request(t, s, "GET", "/v1/networks", "")
	want := `{"error":"LANs are not available yet: the daemon is still starting them","code":"internal"}`
	if got := compact(w.Body.Bytes()); w.Code != 503 || got != want {
		t.Errorf("got %d %s, want 503 %s", w.Code, got, want)
	}
	if w := request(t, s, "GET", "/v1/status", ""); w.Code != 200 {
		t.Errorf("status: %d %s", w.Code, w.Body)
	}
	s.SetLANs(&apitest.Backend{})
	if w := request(t, s, "GET", "/v1/networks", ""); w.Code != 200 {
		t.Errorf("after SetLANs: %d %s", w.Code, w.Body)
	}
}

// The backend runs under the request's context, bounded by OpTimeout.
func TestBackendGetsRequestContext(t *testing.T) {
	var got context.Context
	s := &Server{LANs: &apitest.Backend{Hook: func(ctx context.Context, _ string) error { got = ctx; return nil }}}
	request(t, s, "GET", "/v1/networks", "")
	if got == nil {
		t.Fatal("backend not called")
	}
	if _, ok := got.Value(peerKey{}).(peerResult); !ok {
		t.Error("backend context does not derive from the request's")
	}
	if dl, ok := got.Deadline(); !ok || time.Until(dl) > OpTimeout {
		t.Errorf("deadline %v (set %v), want within %v", dl, ok, OpTimeout)
	}
}
