package testenv

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// ZerotierFake stands in for zerotier-one, which Debian does not package:
// an HTTP server of its local JSON API on 127.0.0.1 inside a test's
// namespace, with the real service's paths, auth header and field names
// (service/README.md and OneService.cpp in ZeroTierOne; TESTING.md has
// answers observed from 1.14.1). A join makes a tap device in the
// namespace, as the service does; a leave deletes it.
//
// What it simplifies: no controller and no peers (a network settles in OK,
// or in the status SetStatus gives, after configDelay); the device appears
// deviceDelay after the join, where the real one exists at once; only the
// X-ZT1-Auth header is checked (the real service also takes ?auth= and a
// bearer token); it never syncs addresses again after setting them once.
type ZerotierFake struct {
	NS    *Netns
	Home  string // authtoken.secret and zerotier-one.port: give it as --zerotier-home
	Token string
	Port  int // on 127.0.0.1 inside NS

	srv *http.Server

	mu        sync.Mutex
	nets      map[string]*fakeZTNetwork
	addresses map[string][]string // network id → assignedAddresses once OK
	statuses  map[string]string   // network id → the status it settles in
	requests  []string            // "METHOD /path", in order
}

// The fake's pace: slow enough that a client must wait for the device and
// the configuration, quick enough for tests.
const (
	fakeZTDeviceDelay = 300 * time.Millisecond
	fakeZTConfigDelay = 600 * time.Millisecond
)

type fakeZTNetwork struct {
	id        string
	joinedAt  time.Time
	dev       string // made device; "" until deviceDelay has passed
	status    string
	portError int
}

// StartZerotierFake serves the fake API in ns and writes its home; the
// test's cleanup stops it and deletes the devices it made.
func StartZerotierFake(t testing.TB, ns *Netns) *ZerotierFake {
	t.Helper()
	Require(t)
	l, err := listenInNetns(ns, "127.0.0.1:0")
	if err != nil {
		t.Fatalf("zerotier fake in %s: %v", ns, err)
	}
	f := &ZerotierFake{NS: ns, Home: t.TempDir(), Token: fmt.Sprintf("fake%x", time.Now().UnixNano()),
		Port: l.Addr().(*net.TCPAddr).Port, nets: map[string]*fakeZTNetwork{},
		addresses: map[string][]string{}, statuses: map[string]string{}}
	for name, content := range map[string]string{"authtoken.secret": f.Token, "zerotier-one.port": strconv.Itoa(f.Port)} {
		// The real service writes both without a trailing newline.
		if err := os.WriteFile(filepath.Join(f.Home, name), []byte(content), 0o600); err != nil {
			l.Close()
			t.Fatal(err)
		}
	}
	f.srv = &http.Server{Handler: f, ReadHeaderTimeout: 5 * time.Second}
	go f.srv.Serve(l)
	t.Cleanup(func() {
		f.Stop()
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, nw := range f.nets {
			f.deleteDevice(nw)
		}
	})
	return f
}

// listenInNetns makes a TCP listener inside ns: a socket belongs to the
// namespace of the thread that made it and stays there, so one locked
// thread enters ns for the listen and comes back. A thread that cannot
// come back stays locked and ends with its goroutine.
func listenInNetns(ns *Netns, addr string) (net.Listener, error) {
	type result struct {
		l   net.Listener
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{nil, fmt.Errorf("this thread's netns: %w", err)}
			return
		}
		defer unix.Close(orig)
		target, err := unix.Open(ns.Path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{nil, fmt.Errorf("open %s: %w", ns.Path, err)}
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- result{nil, fmt.Errorf("enter %s: %w", ns.Path, err)}
			return
		}
		l, lerr := net.Listen("tcp", addr)
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			if l != nil {
				l.Close()
			}
			done <- result{nil, fmt.Errorf("return from %s: %w", ns.Path, err)}
			return // still locked: the runtime ends this thread
		}
		runtime.UnlockOSThread()
		done <- result{l, lerr}
	}()
	r := <-done
	return r.l, r.err
}

// Stop closes the API: clients then find nothing on the port, as when the
// service is not running. The devices stay.
func (f *ZerotierFake) Stop() { f.srv.Close() }

// SetAddresses sets the assignedAddresses (CIDR strings) a network gets
// once it is OK.
func (f *ZerotierFake) SetAddresses(id string, addrs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.addresses[id] = addrs
}

// SetStatus makes a network settle in status (ACCESS_DENIED, NOT_FOUND,
// ...) instead of OK.
func (f *ZerotierFake) SetStatus(id, status string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.statuses[id] = status
}

// Requests returns the authorized requests so far, "METHOD /path".
func (f *ZerotierFake) Requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.requests...)
}

// Joined reports whether the fake is joined to the network.
func (f *ZerotierFake) Joined(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.nets[id] != nil
}

// ZerotierDeviceName is the device the fake makes for a network: like the
// real service's, "zt" and 8 lowercase letters and digits derived from the
// network id, so the same on every node.
func ZerotierDeviceName(id string) string {
	h := fnv.New64a()
	io.WriteString(h, id)
	s := strconv.FormatUint(h.Sum64(), 36)
	for len(s) < 8 {
		s = "0" + s
	}
	return "zt" + s[:8]
}

// ZerotierMAC is the MAC of the fake's device for a network: locally
// administered, derived from the id (the real one also mixes in the
// node's address).
func ZerotierMAC(id string) string {
	h := fnv.New64a()
	io.WriteString(h, "mac:"+id)
	v := h.Sum64()
	return fmt.Sprintf("32:%02x:%02x:%02x:%02x:%02x", byte(v>>32), byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

var fakeZTNetworkPath = regexp.MustCompile(`^/network/([0-9a-f]{16})$`)

// ServeHTTP answers the API; it is the fake's http.Handler.
func (f *ZerotierFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-ZT1-Auth") != f.Token {
		w.WriteHeader(http.StatusUnauthorized) // the service's answer, body {}
		io.WriteString(w, "{}")
		return
	}
	io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.Method+" "+r.URL.Path)
	m := fakeZTNetworkPath.FindStringSubmatch(r.URL.Path)
	switch {
	case r.URL.Path == "/status" && r.Method == http.MethodGet:
		writeZTJSON(w, map[string]any{"address": "fb77d0257a", "online": true, "version": "1.14.1",
			"versionMajor": 1, "versionMinor": 14, "versionRev": 1, "tcpFallbackActive": false,
			"config": map[string]any{"settings": map[string]any{"primaryPort": f.Port}}})
	case r.URL.Path == "/network" && r.Method == http.MethodGet:
		list := []map[string]any{}
		for _, nw := range f.nets {
			f.advance(nw)
			list = append(list, f.networkJSON(nw))
		}
		writeZTJSON(w, list)
	case m != nil:
		f.serveNetwork(w, r.Method, m[1])
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

// serveNetwork is GET, POST (join) and DELETE (leave) of /network/<id>,
// with the real service's codes: 404 with an empty body for GET of a
// network not joined, 200 for DELETE either way.
func (f *ZerotierFake) serveNetwork(w http.ResponseWriter, method, id string) {
	nw := f.nets[id]
	switch method {
	case http.MethodGet:
		if nw == nil {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		f.advance(nw)
		writeZTJSON(w, f.networkJSON(nw))
	case http.MethodPost, http.MethodPut:
		if nw == nil {
			nw = &fakeZTNetwork{id: id, joinedAt: time.Now(), status: "REQUESTING_CONFIGURATION"}
			f.nets[id] = nw
		}
		f.advance(nw)
		writeZTJSON(w, f.networkJSON(nw))
	case http.MethodDelete:
		if nw == nil {
			io.WriteString(w, "{}")
			return
		}
		f.deleteDevice(nw)
		delete(f.nets, id)
		io.WriteString(w, `{"result":true}`)
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

// advance moves a network along as time passes: the device once
// deviceDelay is over, then the status and (for OK) the addresses on the
// device, as the service sets them. f.mu is held.
func (f *ZerotierFake) advance(nw *fakeZTNetwork) {
	since := time.Since(nw.joinedAt)
	if nw.dev == "" && nw.portError == 0 && since >= fakeZTDeviceDelay {
		dev := ZerotierDeviceName(nw.id)
		err := f.ip("tuntap", "add", "dev", dev, "mode", "tap")
		if err == nil {
			err = f.ip("link", "set", "dev", dev, "address", ZerotierMAC(nw.id), "mtu", "2800", "up")
		}
		if err != nil {
			nw.status, nw.portError = "PORT_ERROR", -1
			return
		}
		nw.dev = dev
	}
	if nw.dev == "" || nw.status != "REQUESTING_CONFIGURATION" || since < fakeZTConfigDelay {
		return
	}
	nw.status = "OK"
	if s, ok := f.statuses[nw.id]; ok {
		nw.status = s
	}
	if nw.status == "OK" {
		for _, a := range f.addresses[nw.id] {
			f.ip("addr", "add", a, "dev", nw.dev)
		}
	}
}

// deleteDevice deletes a network's device if it is still in the fake's
// namespace (the real service's tap goes wherever it is, with its fd).
func (f *ZerotierFake) deleteDevice(nw *fakeZTNetwork) {
	if nw.dev != "" {
		f.ip("link", "del", "dev", nw.dev)
	}
}

func (f *ZerotierFake) ip(args ...string) error {
	out, err := ipCmd(append([]string{"-n", f.NS.Name}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// networkJSON is a network as the service's _networkToJson writes it.
func (f *ZerotierFake) networkJSON(nw *fakeZTNetwork) map[string]any {
	addrs, routes := []string{}, []map[string]any{}
	name, revision := "", 0
	if nw.status == "OK" {
		addrs, name, revision = f.addresses[nw.id], "nodenet-test", 1
		if addrs == nil {
			addrs = []string{}
		}
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a); err == nil {
				routes = append(routes, map[string]any{"target": p.Masked().String(), "via": nil, "flags": 0, "metric": 0})
			}
		}
	}
	return map[string]any{
		"id": nw.id, "nwid": nw.id, "mac": ZerotierMAC(nw.id), "name": name, "status": nw.status,
		"type": "PRIVATE", "mtu": 2800, "dhcp": false, "bridge": false, "broadcastEnabled": true,
		"portError": nw.portError, "netconfRevision": revision, "assignedAddresses": addrs,
		"routes": routes, "portDeviceName": nw.dev, "allowManaged": true, "allowGlobal": false,
		"allowDefault": false, "allowDNS": false,
	}
}

func writeZTJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}
