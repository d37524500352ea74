package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"nodenet/api"
	"nodenet/api/apitest"
	"nodenet/lan"
)

// startAPI serves an in-memory backend on a socket; ops records the
// backend calls.
func startAPI(t *testing.T) (socket string, ops func() []string) {
	t.Helper()
	var mu sync.Mutex
	var calls []string
	b := &apitest.Backend{Hook: func(_ context.Context, op string) error {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, op)
		return nil
	}}
	s := &api.Server{Socket: filepath.Join(t.TempDir(), "nodenet.sock"), LANs: b, Group: os.Getgid()}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return s.Socket, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), calls...)
	}
}

// cli runs nodenet with args against socket.
func cli(socket string, args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(append([]string{"--socket", socket}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// A LAN's life through the CLI: tables by default, the API's JSON with
// --json, the daemon's sentence and exit 1 on a refusal.
func TestLANCommands(t *testing.T) {
	socket, _ := startAPI(t)
	steps := []struct {
		args   []string
		code   int
		stdout string // exact when not starting with "~", else a substring
		stderr string
	}{
		{[]string{"network", "create", "lan1", "--type", "bridge", "--cidr", "10.10.0.0/24", "--dhcp"}, 0, "~name:     lan1\n", ""},
		{[]string{"network", "create", "lan1", "--type", "bridge"}, 1, "", "nodenet: network \"lan1\" already exists\n"},
		{[]string{"network", "ls"}, 0, "NAME  TYPE    CIDR          GATEWAY  DHCP  NAT  MTU  MEMBERS\nlan1  bridge  10.10.0.0/24  -        yes   yes  -    0\n", ""},
		{[]string{"join", "lan1", "m1", "--netns", "a", "-p", "8080=80"}, 0,
			"MEMBER  KIND  NETNS  IFNAME  IP        MAC                HOST IFNAME  PORTS\nm1      veth  a      -       10.0.0.2  02:00:00:00:00:01  nnv1         8080->80\n", ""},
		{[]string{"join", "--json", "lan1"}, 0, `{
  "name": "m2",
  "network": "lan1",
  "mac": "02:00:00:00:00:02",
  "ip": "10.0.0.3",
  "host_ifname": "nnv2",
  "kind": "veth"
}
`, ""},
		{[]string{"network", "show", "lan1"}, 0, "~m2      veth  -      -       10.0.0.3  02:00:00:00:00:02  nnv2         -\n", ""},
		{[]string{"network", "rm", "lan1"}, 1, "", "nodenet: network \"lan1\" still has 2 members: leave them first\n"},
		{[]string{"leave", "lan1", "m1"}, 0, "", ""},
		{[]string{"leave", "lan1", "m2"}, 0, "", ""},
		{[]string{"leave", "lan1", "m2"}, 1, "", "nodenet: network \"lan1\" has no member \"m2\"\n"},
		{[]string{"network", "show", "lan1", "--json"}, 0, `{
  "name": "lan1",
  "type": "bridge",
  "network": {
    "dhcp": true,
    "cidr": "10.10.0.0/24"
  },
  "nat": true,
  "members": []
}
`, ""},
		{[]string{"network", "rm", "lan1"}, 0, "", ""},
		{[]string{"network", "ls", "--json"}, 0, "[]\n", ""},
		{[]string{"network", "show", "lan1"}, 1, "", "nodenet: network \"lan1\" does not exist\n"},
		{[]string{"network", "show", "LAN1"}, 1, "", "nodenet: network name \"LAN1\": want 1-32 of a-z, 0-9 and -, starting with a letter\n"},
	}
	for _, s := range steps {
		code, out, errOut := cli(socket, s.args...)
		okOut := out == s.stdout
		if want, sub := strings.CutPrefix(s.stdout, "~"); sub {
			okOut = strings.Contains(out, want)
		}
		if code != s.code || !okOut || errOut != s.stderr {
			t.Errorf("nodenet %s: exit %d\nstdout:\n%s\nstderr: %q\nwant exit %d, stdout %q, stderr %q",
				strings.Join(s.args, " "), code, out, errOut, s.code, s.stdout, s.stderr)
		}
	}
}

// Command line mistakes exit 2 before any request reaches the daemon.
func TestLANCommandMistakes(t *testing.T) {
	socket, ops := startAPI(t)
	for _, tt := range []struct {
		args   []string
		stderr string // a substring
	}{
		{[]string{"join", "lan1", "-p", "8080"}, `invalid value "8080" for flag -p: want [HOSTIP:]HOSTPORT[/tcp|/udp]=PORT`},
		{[]string{"join", "lan1", "-p", "8080=80", "-p", "8080=81"}, "8080 is forwarded twice"},
		{[]string{"join"}, "nodenet: join: want NETWORK [NIC], got 0 arguments\n"},
		{[]string{"leave", "lan1"}, "nodenet: leave: want NETWORK NIC, got 1 arguments\n"},
		{[]string{"network", "create", "lan1"}, "nodenet: network create: --type is required"},
		{[]string{"network", "create", "lan1", "--type", "bridge", "--vni", "5"}, "nodenet: network create: --vni is for --type vxlan, not bridge\n"},
		{[]string{"network", "create", "lan1", "--typo", "bridge"}, "flag provided but not defined: -typo"},
		{[]string{"network", "frob"}, `nodenet: network "frob": want create, ls, show, set or rm`},
		{[]string{"network"}, "nodenet: network: want create, ls, show, set or rm\n"},
		{[]string{"status", "extra"}, "nodenet: status: takes no arguments, got extra\n"},
	} {
		code, out, errOut := cli(socket, tt.args...)
		if code != 2 || out != "" || !strings.Contains(errOut, tt.stderr) {
			t.Errorf("nodenet %s: exit %d, stdout %q, stderr %q; want exit 2, stderr with %q",
				strings.Join(tt.args, " "), code, out, errOut, tt.stderr)
		}
	}
	if got := ops(); len(got) != 0 {
		t.Errorf("the daemon was asked: %v", got)
	}
}

// create passes every flag through as the Settings the API takes.
func TestCreateSendsSettings(t *testing.T) {
	socket, _ := startAPI(t)
	code, out, errOut := cli(socket, "network", "create", "lan2", "--type", "bridge", "--cidr", "10.20.0.0/24",
		"--gateway", "10.20.0.1", "--dns", "10.20.0.1,9.9.9.9", "--no-nat", "--mtu", "1400", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var info lan.Info
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(info.Settings)
	want := `{"name":"lan2","type":"bridge","network":{"dhcp":false,"cidr":"10.20.0.0/24","gateway":"10.20.0.1","dns":["10.20.0.1","9.9.9.9"]},"nat":false,"mtu":1400}`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
