package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"nodenet/api/apitest"
	"nodenet/lan"
)

var (
	_ lan.Network   = (*Client)(nil)
	_ lan.Inventory = (*Client)(nil)
	_ Backend       = (*lan.Manager)(nil) // what the daemon attaches
)

// wantLANError checks err is a *lan.Error with code and sentence.
func wantLANError(t *testing.T, what string, err error, code lan.Code, sentence string) {
	t.Helper()
	var le *lan.Error
	if !errors.As(err, &le) || le.Code != code || le.Error() != sentence {
		t.Errorf("%s: got %v (%T), want %s %q", what, err, err, code, sentence)
	}
	if lan.CodeOf(err) != code {
		t.Errorf("%s: CodeOf %q, want %q", what, lan.CodeOf(err), code)
	}
}

func TestClientRoundTrip(t *testing.T) {
	ctx := context.Background()
	c := serve(t, &Server{LANs: &apitest.Backend{}})
	if err := c.Create(ctx, "lan1", lan.Bridge, lan.Settings{Network: lan.IPSettings{CIDR: "10.10.0.0/24", DHCP: true}}); err != nil {
		t.Fatal(err)
	}
	info, err := c.Get(ctx, "lan1")
	if err != nil || info.Name != "lan1" || info.Type != lan.Bridge || info.Network.CIDR != "10.10.0.0/24" || info.NAT == nil || !*info.NAT {
		t.Fatalf("Get: %+v, %v", info, err)
	}
	m, err := c.Join(ctx, "lan1", "", lan.PortForwards{"127.0.0.1:8080/tcp": 80}, lan.JoinOptions{Netns: "a", Kind: "tap", MAC: "02:aa:00:00:00:01"})
	if err != nil || m.Name != "m1" || m.Kind != "tap" || m.MAC != "02:aa:00:00:00:01" || m.Ports["127.0.0.1:8080/tcp"] != 80 {
		t.Fatalf("Join: %+v, %v", m, err)
	}
	if got, err := c.Member(ctx, "lan1", "m1"); err != nil || fmt.Sprint(got) != fmt.Sprint(m) {
		t.Errorf("Member: %+v, %v; want %+v", got, err, m)
	}
	if ms, err := c.Members(ctx, "lan1"); err != nil || len(ms) != 1 || ms[0].Name != "m1" {
		t.Errorf("Members: %+v, %v", ms, err)
	}
	if infos, err := c.List(ctx); err != nil || len(infos) != 1 || len(infos[0].Members) != 1 {
		t.Errorf("List: %+v, %v", infos, err)
	}
	if l, err := c.Leases(ctx, "lan1"); err != nil || l.Leases == nil {
		t.Errorf("Leases: %+v, %v", l, err)
	}
	wantLANError(t, "Destroy with a member", c.Destroy(ctx, "lan1"), lan.Conflict, `network "lan1" still has 1 members: leave them first`)
	if err := c.Leave(ctx, "lan1", "m1"); err != nil {
		t.Fatal(err)
	}
	wantLANError(t, "Leave twice", c.Leave(ctx, "lan1", "m1"), lan.NotFound, `network "lan1" has no member "m1"`)
	if err := c.Destroy(ctx, "lan1"); err != nil {
		t.Fatal(err)
	}
	_, err = c.Get(ctx, "lan1")
	wantLANError(t, "Get after Destroy", err, lan.NotFound, `network "lan1" does not exist`)
	if infos, err := c.List(ctx); err != nil || infos == nil || len(infos) != 0 {
		t.Errorf("List of none: %#v, %v (want empty, not nil)", infos, err)
	}
}

// Names the server would refuse are refused before a request; so is a
// settings name that disagrees with the argument.
func TestClientChecksNames(t *testing.T) {
	ctx := context.Background()
	c := NewClient(filepath.Join(t.TempDir(), "none.sock")) // a request would fail differently
	wantLANError(t, "Create mismatch", c.Create(ctx, "lan1", lan.Bridge, lan.Settings{Name: "lan2"}), lan.Invalid, `settings name "lan2" differs from network "lan1"`)
	wantLANError(t, "Destroy ..", c.Destroy(ctx, ".."), lan.Invalid, `network name "..": want 1-32 of a-z, 0-9 and -, starting with a letter`)
	_, err := c.Member(ctx, "lan1", "a/b")
	wantLANError(t, "Member a/b", err, lan.Invalid, `interface name "a/b": no '/', ':', '%', spaces or non-ASCII`)
	_, err = c.Join(ctx, "Lan", "", nil, lan.JoinOptions{})
	wantLANError(t, "Join Lan", err, lan.Invalid, `network name "Lan": want 1-32 of a-z, 0-9 and -, starting with a letter`)
}

// Server-side errors keep their code through the socket, the 503 of a
// daemon without LANs included.
func TestClientErrors(t *testing.T) {
	ctx := context.Background()
	b := &apitest.Backend{Hook: func(_ context.Context, op string) error {
		if op == "create" {
			return lan.Errorf(lan.Unsupported, "network type vlan is not supported yet: only bridge networks can be created")
		}
		return nil
	}}
	c := serve(t, &Server{LANs: b})
	wantLANError(t, "Create vlan", c.Create(ctx, "v", lan.VLan, lan.Settings{}), lan.Unsupported,
		"network type vlan is not supported yet: only bridge networks can be created")
	_, err := c.Join(ctx, "lan1", "x", nil, lan.JoinOptions{Ifname: "a b"})
	wantLANError(t, "Join bad ifname", err, lan.Invalid, `ifname: interface name "a b": no '/', ':', '%', spaces or non-ASCII`)

	_, err = serve(t, &Server{}).List(ctx)
	wantLANError(t, "no LANs", err, lan.Internal, "LANs are not available yet: the daemon is still starting them")
}

// An answer that is not ours (no JSON error body) is still a *lan.Error.
func TestClientNonJSONError(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "s.sock")
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "oops", http.StatusBadGateway)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	_, err = NewClient(socket).List(context.Background())
	wantLANError(t, "502", err, lan.Internal, "GET /v1/networks: 502 Bad Gateway")
}

// A caller's deadline ends a slow Join on both sides: the client returns,
// and the backend's context (the request's) is cancelled.
func TestClientHonoursContext(t *testing.T) {
	backendDone := make(chan error, 1)
	b := &apitest.Backend{Hook: func(ctx context.Context, op string) error {
		if op != "join" {
			return nil
		}
		select {
		case <-ctx.Done():
			backendDone <- ctx.Err()
		case <-time.After(10 * time.Second):
			backendDone <- errors.New("never cancelled")
		}
		return ctx.Err()
	}}
	c := serve(t, &Server{LANs: b})
	if err := c.Create(context.Background(), "lan1", lan.Bridge, lan.Settings{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Join(ctx, "lan1", "", nil, lan.JoinOptions{})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Errorf("Join: %v after %v, want the deadline", err, time.Since(start))
	}
	if err := <-backendDone; !errors.Is(err, context.Canceled) {
		t.Errorf("backend context: %v, want cancelled", err)
	}
	if ClientTimeout < OpTimeout || ClientTimeout < 60*time.Second {
		t.Errorf("ClientTimeout %v is shorter than a slow join", ClientTimeout)
	}
}
