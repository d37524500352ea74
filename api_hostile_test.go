package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"nodenet/api"
	"nodenet/internal/testenv"
)

// hostileCase is one request and the refusal it must get.
type hostileCase struct {
	what   string
	raw    string // the request as it goes on the wire
	status int
	code   string // the JSON error's code
	err    string // a part of its sentence that names what was wrong
}

// hostileReq is a request with a Content-Length body, written by hand so
// that no client cleans the path or follows a redirect.
func hostileReq(method, target, body string) string {
	return fmt.Sprintf("%s %s HTTP/1.1\r\nHost: nodenet\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		method, target, len(body), body)
}

// hostileRaw sends raw on a fresh connection and reads one response.
func hostileRaw(socket, raw string) (*http.Response, []byte, error) {
	c, err := net.Dial("unix", socket)
	if err != nil {
		return nil, nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	go io.WriteString(c, raw) // the daemon may answer before it read it all
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp, body, err
}

func chunkedBody(n int) string {
	var b strings.Builder
	for ; n > 0; n -= 4096 {
		fmt.Fprintf(&b, "1000\r\n%s\r\n", strings.Repeat("a", 4096))
	}
	b.WriteString("0\r\n\r\n")
	return b.String()
}

// Malformed and hostile requests on the real daemon's socket, beyond what
// TestLANInvalidInput sends: each is a 4xx with a JSON error naming what
// was wrong, and after all of them the networks, members, OVS, the links
// of the node and of the member's netns and the state dir are as before.
func TestAPIHostile(t *testing.T) {
	node := startLANNode(t)
	node.create(t, "good", "10.78.0.0/24", "10.78.0.1")
	node.create(t, "spare", "10.77.0.0/24", "10.77.0.1")
	a := testenv.NewNetns(t)
	node.join(t, "good", "a", a)

	// Files under /run/netns that are not namespaces, or are the daemon's
	// own. No FIFO: iproute2 opens every entry there and would hang on it
	// (links' TestOpenNsfsFIFO shows nodenet does not open one).
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, []byte("x"), 0o600)
	links := map[string]string{"file": file, "dir": "/etc", "null": "/dev/null",
		"self": "/proc/self/ns/net", "own": fmt.Sprintf("/proc/%d/ns/net", node.d.Pid())}
	for name, target := range links {
		link := a.Path + "-" + name // under the test's prefix: swept with it
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(link) })
	}
	before := nodeSnapshot(t, node, a)

	var cases []hostileCase
	add := func(what, method, target, body string, status int, code, err string) {
		cases = append(cases, hostileCase{what, hostileReq(method, target, body), status, code, err})
	}
	join := func(fields string) string { return `{"nic":"b","netns":"` + a.Name + `",` + fields + `}` }
	const nets, members = "/v1/networks", "/v1/networks/good/members"

	// Oversize: the limit is api.MaxBody (64 KiB), also when the body is
	// announced larger than it is, or comes chunked.
	cases = append(cases,
		hostileCase{"announced 1 GiB", "POST " + nets + " HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n\r\n{", 413, "invalid", "larger than 64 KiB"},
		hostileCase{"1 MiB chunked join", "POST " + members + " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunkedBody(1<<20), 413, "invalid", "larger than 64 KiB"})
	add("100 KiB patch", "PATCH", nets+"/good", `{"vxlan":{"remotes":["`+strings.Repeat("1", 100<<10)+`"]}}`, 413, "invalid", "larger than 64 KiB")

	// Bad JSON, trailing garbage, wrong types, unknown and repeated keys.
	add("bad token", "POST", nets, `{"name":lan}`, 400, "invalid", "invalid JSON at byte 9")
	add("array", "POST", nets, `[]`, 400, "invalid", "want a JSON object")
	add("deep nesting", "POST", members, strings.Repeat("[", 20000), 400, "invalid", "want a JSON object")
	add("deep nesting in object", "POST", nets, `{"name":`+strings.Repeat("[", 20000), 400, "invalid", "request body")
	add("not UTF-8", "POST", nets, "{\"name\":\"x\xff\",\"type\":\"bridge\"}", 400, "invalid", "network name \"x\ufffd\"")
	add("second object", "POST", nets, `{"name":"x","type":"bridge"} {"name":"y","type":"bridge"}`, 400, "invalid", "data after the JSON object (at byte 30)")
	add("garbage after", "POST", members, join(`"ifname":"eth1"`)+`garbage`, 400, "invalid", "data after the JSON object")
	add("name a number", "POST", nets, `{"name":5,"type":"bridge"}`, 400, "invalid", "field name: want string, not number")
	add("mtu a string", "POST", nets, `{"name":"x","type":"bridge","mtu":"big"}`, 400, "invalid", "field mtu: want int, not string")
	add("dhcp a string", "POST", nets, `{"name":"x","type":"bridge","network":{"dhcp":"yes"}}`, 400, "invalid", "field network.dhcp: want bool")
	add("vlan id a string", "POST", nets, `{"name":"x","type":"vlan","vlan":{"id":"10","parent":"lo"}}`, 400, "invalid", "field vlan.id")
	add("port a string", "POST", members, join(`"ports":{"80":"eighty"}`), 400, "invalid", "field ports: want uint32, not string")
	add("port over 32 bits", "POST", members, join(`"ports":{"80":4294967296}`), 400, "invalid", "not number 4294967296")
	add("unknown in join", "POST", members, join(`"colour":"red"`), 400, "invalid", `unknown field "colour"`)
	add("unknown nested", "POST", nets, `{"name":"x","type":"bridge","network":{"cidr":"10.76.0.0/24","colour":1}}`, 400, "invalid", `unknown field "colour"`)
	add("unknown in patch", "PATCH", nets+"/good", `{"name":"other"}`, 400, "invalid", `unknown field "name"`)
	add("name twice", "POST", nets, `{"name":"x","name":"y","type":"bridge"}`, 400, "invalid", `key "name" given twice`)
	add("name twice, cases", "POST", nets, `{"name":"x","NAME":"y","type":"bridge"}`, 400, "invalid", `key "NAME" given twice`)
	add("port twice", "POST", members, join(`"ports":{"8080":80,"8080":81}`), 400, "invalid", `key "8080" given twice`)

	// Path tricks. The mux would redirect (307, method kept) a path with
	// . or .. or //: a client that follows it would destroy "spare".
	add("../ in path", "DELETE", members+"/../../spare", "", 400, "invalid", `not in canonical form (no empty, . or .. segments): ask for "/v1/networks/spare"`)
	add("// in path", "GET", "//v1/networks", "", 400, "invalid", "not in canonical form")
	add("./ in path", "DELETE", "/v1/networks/./spare", "", 400, "invalid", "not in canonical form")
	add("%2e%2e%2f", "DELETE", "/v1/networks/%2e%2e%2fspare", "", 400, "invalid", `network name "../spare"`)
	add("%2e%2e as nic", "DELETE", members+"/%2e%2e", "", 400, "invalid", `interface name ".."`)
	add("%2F in nic", "GET", members+"/a%2F..%2F..", "", 400, "invalid", `interface name "a/../.."`)
	add("NUL in path", "DELETE", "/v1/networks/spare%00", "", 400, "invalid", `network name "spare\x00"`)
	add("space in path", "GET", "/v1/networks/a%20b", "", 400, "invalid", `network name "a b"`)
	add("overlong path name", "GET", "/v1/networks/"+strings.Repeat("a", 4000), "", 400, "invalid", "network name")
	add("overlong name", "POST", nets, `{"name":"`+strings.Repeat("a", 33)+`","type":"bridge"}`, 400, "invalid", "want 1-32 of a-z")
	add("NUL in nic", "POST", members, `{"nic":"b\u0000","netns":"`+a.Name+`"}`, 400, "invalid", `interface name "b\x00"`)
	add("CONNECT", "CONNECT", "nodenet:80", "", 400, "invalid", `request target "nodenet:80"`)

	// Netns specs outside /run/netns/NAME and /proc/PID/ns/net, and files
	// under /run/netns that are no namespace or the node's own.
	for _, ns := range []string{"/etc/passwd", "/run/netns/../../etc/shadow", "/proc/self/ns/../../etc",
		"/proc/self/ns/net", "/proc/1/ns/../../../etc/passwd", "/proc/0/ns/net", "/run/netns/", "a\u0000b",
		strings.Repeat("n", 300), "/run/netns/" + a.Name + "/../" + a.Name + "-file/x"} {
		add("netns "+ns, "POST", members, `{"nic":"b","netns":"`+strings.ReplaceAll(ns, "\x00", `\u0000`)+`"}`, 400, "invalid", "want NAME, /run/netns/NAME or /proc/PID/ns/net")
	}
	for _, name := range []string{"file", "dir", "null"} {
		add("netns symlink to "+name, "POST", members, `{"nic":"b","netns":"`+a.Name+"-"+name+`"}`, 400, "invalid", "not a namespace")
	}
	for _, name := range []string{"self", "own"} {
		add("netns symlink to "+name, "POST", members, `{"nic":"b","netns":"`+a.Name+"-"+name+`"}`, 400, "invalid", "is the node's own network namespace")
	}

	// Interface names the kernel refuses or reads otherwise, as nic and as ifname.
	for _, n := range []string{"sixteen-bytes-xx", "eth0/1", "a:b", "a b", "a\tb", "eth%d", "..", "eth\u00e9"} {
		q, _ := json.Marshal(n)
		add("nic "+n, "POST", members, `{"nic":`+string(q)+`,"netns":"`+a.Name+`"}`, 400, "invalid", "interface name "+string(q))
		add("ifname "+n, "POST", members, join(`"ifname":`+string(q)), 400, "invalid", "ifname: interface name "+string(q))
	}

	// MACs: all zero, broadcast, not 6 bytes, not a MAC.
	for _, mac := range []string{"00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff", "02:00:00:00:00:00:00:01", "02:00:00:00:00", "zz:00:00:00:00:01", "02:00:00:00:00:01 "} {
		add("mac "+mac, "POST", members, join(`"mac":"`+mac+`"`), 400, "invalid", `mac "`+mac+`": want a unicast Ethernet address`)
	}

	// Port specs.
	for _, p := range []struct{ ports, err string }{
		{`{"80/tcp/udp":80}`, `protocol "tcp/udp"`},
		{`{"65536":80}`, `port forward "65536": host port`},
		{`{"0":80}`, `port forward "0": host port`},
		{`{"":80}`, `port forward "": host port`},
		{`{"http":80}`, `port forward "http": host port`},
		{`{"10.0.0.1:":80}`, `port forward "10.0.0.1:"`},
		{`{"999.0.0.1:80":80}`, `port forward "999.0.0.1:80"`},
		{`{"80":65536}`, "member port 65536: want 1-65535"},
		{`{"80":80,"80/tcp":81}`, `port forwards "80" and "80/tcp" both name host port 80/tcp`},
	} {
		add("ports "+p.ports, "POST", members, join(`"ports":`+p.ports), 400, "invalid", p.err)
	}

	// LAN subnets the kernel routes specially.
	for _, c := range []struct{ cidr, err string }{
		{"0.0.0.0/0", "too large for a LAN"},
		{"127.0.0.0/8", "loopback"},
		{"224.0.0.0/24", "multicast"},
		{"240.0.0.0/24", "reserved"},
	} {
		add("cidr "+c.cidr, "POST", nets, `{"name":"x","type":"bridge","network":{"cidr":"`+c.cidr+`"}}`, 400, "invalid", `cidr "`+c.cidr+`"`)
	}
	// An ifname the member's netns already has: its lo, member a's eth0.
	add("ifname lo taken", "POST", members, join(`"ifname":"lo"`), 409, "conflict", `interface "lo" already exists`)
	add("ifname eth0 taken", "POST", members, join(`"ifname":"eth0"`), 409, "conflict", `interface "eth0" already exists`)

	for _, c := range cases {
		start := time.Now()
		resp, body, err := hostileRaw(node.d.Socket, c.raw)
		if err != nil {
			t.Errorf("%s: %v", c.what, err)
			continue
		}
		var e api.Error
		jerr := json.Unmarshal(body, &e)
		if resp.StatusCode != c.status || resp.Header.Get("Content-Type") != "application/json" || jerr != nil ||
			e.Code != c.code || !strings.Contains(e.Message, c.err) {
			t.Errorf("%s: %d %s %.300s\nwant %d %s with %q", c.what, resp.StatusCode, resp.Header.Get("Content-Type"), body, c.status, c.code, c.err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s: answered after %v", c.what, d)
		}
	}

	// What net/http refuses before any handler runs: a plain-text 4xx,
	// and the daemon serves on.
	for _, c := range []struct {
		what, raw string
		status    int
	}{
		{"header over api.MaxHeader", "GET /v1/networks HTTP/1.1\r\nHost: x\r\nX-Pad: " + strings.Repeat("a", 64<<10) + "\r\n\r\n", 431},
		{"space in request line", "GET /v1/networks/a b HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"two Content-Lengths", "POST /v1/networks HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400},
		{"NUL in a header", "GET /v1/networks HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 400},
	} {
		resp, body, err := hostileRaw(node.d.Socket, c.raw)
		if err != nil || resp.StatusCode != c.status {
			t.Errorf("%s: %v %v %.200s; want %d", c.what, resp, err, body, c.status)
		}
	}

	if after := nodeSnapshot(t, node, a); after != before {
		t.Errorf("the hostile requests changed the node:\n%s", diffLines(before, after))
	}
	if log := node.d.Log(); strings.Contains(log, "panic") || strings.Contains(log, "request failed") {
		t.Errorf("the daemon logged a panic or a failed request:\n%s", log)
	}
}

// nodeSnapshot is everything a bad request must leave alone, as text.
func nodeSnapshot(t *testing.T, node *lanNode, member *testenv.Netns) string {
	t.Helper()
	var b strings.Builder
	for _, path := range []string{"/v1/networks", "/v1/networks/good/members", "/v1/networks/spare/members"} {
		code, body, err := node.d.Do(http.MethodGet, path, nil)
		fmt.Fprintf(&b, "GET %s: %d %v %s\n", path, code, err, body)
	}
	for _, br := range strings.Fields(node.vsctl(t, "list-br")) {
		fmt.Fprintf(&b, "ovs bridge %s: ports %q\n", br, node.vsctl(t, "list-ports", br))
	}
	fmt.Fprintf(&b, "ovs interfaces: %q\n", sortedFields(node.vsctl(t, "--format=csv", "--no-headings", "--columns=name", "list", "Interface")))
	fmt.Fprintf(&b, "node links: %q\n", linkNames(t, node.ns))
	fmt.Fprintf(&b, "member links: %q\n", linkNames(t, member))
	fmt.Fprintf(&b, "nft: %s\n", node.ns.Run(t, "nft", "list", "table", "inet", "nodenet"))
	filepath.WalkDir(node.d.StateDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(path)
		fmt.Fprintf(&b, "state %s: %x %v\n", strings.TrimPrefix(path, node.d.StateDir), sha256.Sum256(data), err)
		return nil
	})
	return b.String()
}

// linkNames lists the links of ns by name (their counters move on).
func linkNames(t *testing.T, ns *testenv.Netns) []string {
	t.Helper()
	var names []string
	for _, line := range strings.Split(ns.Run(t, "ip", "-o", "link", "show"), "\n") {
		if f := strings.Fields(line); len(f) > 1 {
			names = append(names, strings.TrimSuffix(f[1], ":"))
		}
	}
	slices.Sort(names)
	return names
}

func sortedFields(s string) []string {
	f := strings.Fields(s)
	slices.Sort(f)
	return f
}

// diffLines shows the lines of b that a does not have, and the reverse.
func diffLines(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out strings.Builder
	for _, l := range al {
		if !slices.Contains(bl, l) {
			fmt.Fprintf(&out, "- %.300s\n", l)
		}
	}
	for _, l := range bl {
		if !slices.Contains(al, l) {
			fmt.Fprintf(&out, "+ %.300s\n", l)
		}
	}
	return out.String()
}
