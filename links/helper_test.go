package links

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"nodenet/internal/testenv"
)

// helperEnv carries a helperReq to the test binary re-executed inside a
// namespace by `ip netns exec`: code that works on "the caller's
// namespace" (CreateVeth's host end, CreateTap, IsolateFromHost) runs there
// as the daemon would, and the test process never leaves its own.
const helperEnv = "NODENET_LINKS_HELPER"

type helperReq struct {
	Op string // veth, tap, isolate, delete, listen, probe, send, arp

	Host, Peer, PeerNS, Ifname, MAC string // veth, tap, isolate, delete
	MTU, Owner, Group               int
	Addr                            string // listen, probe, send: "IP:port"
	Device                          string // listen: SO_BINDTODEVICE
	Target, Source                  string // arp: who-has Target tell Source
}

type helperResp struct {
	Err      string
	UDP, TCP bool     // probe: an echo came back
	MACs     []string // arp: who answered
}

func TestMain(m *testing.M) {
	if env := os.Getenv(helperEnv); env != "" {
		os.Exit(runHelper(env))
	}
	os.Exit(m.Run())
}

func runHelper(env string) int {
	var req helperReq
	if err := json.Unmarshal([]byte(env), &req); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 2
	}
	var resp helperResp
	var err error
	switch req.Op {
	case "veth":
		err = helperVeth(req)
	case "tap":
		err = CreateTap(req.Ifname, req.MTU, parseMAC(req.MAC), req.Owner, req.Group)
	case "isolate":
		err = IsolateFromHost(req.Ifname)
	case "delete":
		err = DeleteLink(req.Ifname)
	case "listen":
		err = helperListen(req)
	case "probe":
		resp.UDP, resp.TCP = probeUDP(req.Addr), probeTCP(req.Addr)
	case "send":
		err = helperSend(req)
	case "arp":
		resp.MACs, err = arpProbe(req.Ifname, req.Source, req.Target)
	default:
		err = fmt.Errorf("unknown op %q", req.Op)
	}
	if err != nil {
		resp.Err = err.Error()
	}
	b, _ := json.Marshal(resp)
	fmt.Printf("\nRESULT %s\n", b)
	return 0
}

func helperVeth(req helperReq) error {
	ns, _, err := OpenNetns(req.PeerNS)
	if err != nil {
		return err
	}
	defer ns.Close()
	if err := CreateVeth(req.Host, req.Peer, ns, req.Ifname, parseMAC(req.MAC), req.MTU); err != nil {
		return err
	}
	// As lan does once the host end is a bridge port.
	return SetUpByName(req.Host)
}

func parseMAC(s string) net.HardwareAddr {
	if s == "" {
		return nil
	}
	mac, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return mac
}

// inHelper runs one helper op inside ns and returns its answer.
func inHelper(t *testing.T, ns *testenv.Netns, req helperReq) helperResp {
	t.Helper()
	b, _ := json.Marshal(req)
	cmd := ns.Command(os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"="+string(b))
	out, err := cmd.CombinedOutput()
	_, line, ok := strings.Cut(string(out), "\nRESULT ")
	var resp helperResp
	if err != nil || !ok || json.Unmarshal([]byte(strings.SplitN(line, "\n", 2)[0]), &resp) != nil {
		t.Fatalf("helper %s in %s: %v\n%s", req.Op, ns, err, out)
	}
	return resp
}

// mustHelper is inHelper failing the test on the op's error.
func mustHelper(t *testing.T, ns *testenv.Netns, req helperReq) helperResp {
	t.Helper()
	resp := inHelper(t, ns, req)
	if resp.Err != "" {
		t.Fatalf("%s in %s: %s", req.Op, ns, resp.Err)
	}
	return resp
}

// listener is a helper process serving UDP and TCP echo inside a namespace;
// it reports every datagram it gets on lines of its own.
type listener struct {
	lines chan string
}

func startListener(t *testing.T, ns *testenv.Netns, addr, device string) *listener {
	t.Helper()
	b, _ := json.Marshal(helperReq{Op: "listen", Addr: addr, Device: device})
	cmd := ns.Command(os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"="+string(b))
	stdin, err := cmd.StdinPipe() // closing it ends the listener
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	l := &listener{lines: make(chan string, 100)}
	ready := make(chan string, 1)
	go l.read(stdout, ready)
	select {
	case line := <-ready:
		if line != "READY" {
			t.Fatalf("listener %s in %s: %s", addr, ns, line)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("listener %s in %s: not ready", addr, ns)
	}
	return l
}

func (l *listener) read(r io.Reader, ready chan<- string) {
	sc := bufio.NewScanner(r)
	first := true
	for sc.Scan() {
		line := sc.Text()
		switch {
		case first && (line == "READY" || strings.HasPrefix(line, "RESULT")):
			ready <- line
			first = false
		case strings.HasPrefix(line, "GOT "):
			select {
			case l.lines <- line:
			default:
			}
		}
	}
}

// drain returns how many datagrams arrived since the last drain, waiting
// quiet for a moment so late ones count.
func (l *listener) drain(quiet time.Duration) int {
	n := 0
	for {
		select {
		case <-l.lines:
			n++
		case <-time.After(quiet):
			return n
		}
	}
}
