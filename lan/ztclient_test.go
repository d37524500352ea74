package lan

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// ztJoined is GET /network/<id> as zerotier-one 1.14.1 answered it once
// configured (TESTING.md), with fields nodenet does not read left in.
const ztJoined = `{"allowDNS":false,"allowDefault":false,"allowGlobal":false,"allowManaged":true,
"assignedAddresses":["10.147.17.6/24","fd80:56c2:e21c:0:199:93fb:77d0:257a/88"],"bridge":false,
"broadcastEnabled":true,"dhcp":false,"dns":{"domain":"","servers":[]},"id":"8056c2e21c000001",
"mac":"32:07:DF:07:02:6D","mtu":2800,"multicastSubscriptions":[],"name":"earth","netconfRevision":12,
"nwid":"8056c2e21c000001","portDeviceName":"zt3ygwe6vs","portError":0,
"routes":[{"flags":0,"metric":0,"target":"10.147.17.0/24","via":null}],"status":"OK","type":"PUBLIC"}`

// ztHome writes a service home: the token and, when port is not "",
// zerotier-one.port.
func ztHome(t *testing.T, token, port string) string {
	t.Helper()
	home := t.TempDir()
	if token != "" {
		if err := os.WriteFile(filepath.Join(home, "authtoken.secret"), []byte(token), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if port != "" {
		if err := os.WriteFile(filepath.Join(home, "zerotier-one.port"), []byte(port), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return home
}

// fakeZT is an httptest server recording what it was asked.
type fakeZT struct {
	srv  *httptest.Server
	home string

	mu   sync.Mutex
	reqs []string // "METHOD PATH BODY AUTH"
}

func startFakeZT(t *testing.T, handler http.HandlerFunc) *fakeZT {
	f := &fakeZT{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, strings.Join([]string{r.Method, r.URL.Path, string(body), r.Header.Get("X-ZT1-Auth")}, " "))
		f.mu.Unlock()
		handler(w, r)
	}))
	t.Cleanup(f.srv.Close)
	u, _ := url.Parse(f.srv.URL)
	f.home = ztHome(t, "tok3n\n", u.Port()+"\n") // the real files end without a newline; a stray one is fine
	return f
}

func (f *fakeZT) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.reqs...)
}

func TestZTClientCalls(t *testing.T) {
	f := startFakeZT(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/network/8056c2e21c000001" && r.Method != http.MethodDelete:
			io.WriteString(w, ztJoined)
		case r.Method == http.MethodDelete:
			io.WriteString(w, `{"result":true}`)
		default:
			w.WriteHeader(http.StatusNotFound) // GET of a network not joined: empty body
		}
	})
	c := newZTClient(f.home)
	ctx := context.Background()
	if err := c.join(ctx, "8056c2e21c000001"); err != nil {
		t.Fatalf("join: %v", err)
	}
	nw, joined, err := c.network(ctx, "8056c2e21c000001")
	if err != nil || !joined {
		t.Fatalf("network: %v, joined %v", err, joined)
	}
	want := ztNetwork{ID: "8056c2e21c000001", Status: "OK", PortDeviceName: "zt3ygwe6vs",
		AssignedAddresses: []string{"10.147.17.6/24", "fd80:56c2:e21c:0:199:93fb:77d0:257a/88"},
		MTU:               2800, MAC: "32:07:DF:07:02:6D", Name: "earth", Type: "PUBLIC"}
	if !reflect.DeepEqual(nw, want) {
		t.Errorf("network:\n got %+v\nwant %+v", nw, want)
	}
	if err := nw.statusErr(); err != nil {
		t.Errorf("statusErr of OK: %v", err)
	}
	if _, joined, err := c.network(ctx, "0000000000000001"); err != nil || joined {
		t.Errorf("network not joined: joined %v, %v; want false, nil", joined, err)
	}
	if err := c.leave(ctx, "8056c2e21c000001"); err != nil {
		t.Errorf("leave: %v", err)
	}
	got := f.requests()
	wantReqs := []string{
		"POST /network/8056c2e21c000001 {} tok3n",
		"GET /network/8056c2e21c000001  tok3n",
		"GET /network/0000000000000001  tok3n",
		"DELETE /network/8056c2e21c000001  tok3n",
	}
	if !reflect.DeepEqual(got, wantReqs) {
		t.Errorf("requests:\n got %q\nwant %q", got, wantReqs)
	}
}

func TestZTClientErrors(t *testing.T) {
	ctx := context.Background()
	// A port nobody listens on: taken, then closed.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, closedPort, _ := net.SplitHostPort(l.Addr().String())
	l.Close()
	refusing := startFakeZT(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, "{}")
	})
	forbidding := startFakeZT(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusForbidden) })

	tests := []struct {
		name, home string
		code       Code
		want       string
	}{
		{"not running", ztHome(t, "tok3n", closedPort), Unsupported,
			"zerotier-one is not running (no answer on 127.0.0.1:" + closedPort + ")"},
		{"401", refusing.home, Unsupported, "refused nodenet (401 Unauthorized): the token in " + refusing.home + "/authtoken.secret is not the running service's"},
		{"403", forbidding.home, Unsupported, "refused nodenet (403 Forbidden)"},
		{"no token", ztHome(t, "", closedPort), Unsupported, "zerotier-one: cannot read its auth token: open "},
		{"empty token", ztHome(t, "\n", closedPort), Unsupported, "auth token "},
		{"bad port file", ztHome(t, "tok3n", "http"), Unsupported, `zerotier-one.port holds "http", not a port`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := newZTClient(tt.home).join(ctx, "8056c2e21c000001")
			if err == nil || !strings.Contains(err.Error(), tt.want) || CodeOf(err) != tt.code {
				t.Errorf("join: %v (code %s); want %q (%s)", err, CodeOf(err), tt.want, tt.code)
			}
		})
	}
}

// TestZTEndpoint: the port file wins, 9993 otherwise (nothing is dialed).
func TestZTEndpoint(t *testing.T) {
	for _, tt := range []struct{ port, want string }{{"", "127.0.0.1:9993"}, {"9994", "127.0.0.1:9994"}} {
		addr, token, err := newZTClient(ztHome(t, "tok3n", tt.port)).endpoint()
		if err != nil || addr != tt.want || token != "tok3n" {
			t.Errorf("port file %q: endpoint = %s, %q, %v; want %s, tok3n", tt.port, addr, token, err, tt.want)
		}
	}
	if c := newZTClient(""); c.home != DefaultZerotierHome {
		t.Errorf("default home %q, want %q", c.home, DefaultZerotierHome)
	}
}

func TestZTStatusErr(t *testing.T) {
	tests := []struct {
		status string
		code   Code
		want   string
	}{
		{"OK", "", ""},
		{"REQUESTING_CONFIGURATION", "", ""},
		{"ACCESS_DENIED", Conflict, "zerotier network 8056c2e21c000001: ACCESS_DENIED: its controller has not authorized this node"},
		{"NOT_FOUND", NotFound, "zerotier network 8056c2e21c000001: NOT_FOUND: no controller knows this network id"},
		{"PORT_ERROR", Internal, "PORT_ERROR: zerotier-one could not make the network's device"},
		{"CLIENT_TOO_OLD", Unsupported, "CLIENT_TOO_OLD"},
		{"AUTHENTICATION_REQUIRED", Unsupported, "SSO"},
		{"SOMETHING_NEW", Internal, `status "SOMETHING_NEW"`},
	}
	for _, tt := range tests {
		err := ztNetwork{ID: "8056c2e21c000001", Status: tt.status}.statusErr()
		if CodeOf(err) != tt.code || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: %v (code %s); want %q (%s)", tt.status, err, CodeOf(err), tt.want, tt.code)
		}
	}
}
