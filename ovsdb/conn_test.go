package ovsdb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// bound is how long a test waits for what should happen at once; it only
// turns a hang into a failure.
const bound = 10 * time.Second

// fakeServer is the server's end of a Conn: the test reads what the Conn
// sends and writes what ovsdb-server would.
type fakeServer struct {
	t   *testing.T
	nc  net.Conn
	dec *json.Decoder
}

// request is a message from the Conn: a request, or its answer to the
// server's echo.
type request struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
	Result json.RawMessage `json:"result"`
	Error  json.RawMessage `json:"error"`
}

func newFake(t *testing.T) (*Conn, *fakeServer) {
	t.Helper()
	client, server := net.Pipe()
	c := NewConn(client)
	t.Cleanup(func() {
		c.Close()
		server.Close()
	})
	return c, &fakeServer{t: t, nc: server, dec: json.NewDecoder(server)}
}

// recvRaw reads the next message the Conn sent.
func (f *fakeServer) recvRaw() json.RawMessage {
	f.t.Helper()
	f.nc.SetReadDeadline(time.Now().Add(bound))
	var raw json.RawMessage
	if err := f.dec.Decode(&raw); err != nil {
		f.t.Fatalf("server: read: %v", err)
	}
	return raw
}

func (f *fakeServer) recv() request {
	f.t.Helper()
	raw := f.recvRaw()
	var r request
	if err := json.Unmarshal(raw, &r); err != nil {
		f.t.Fatalf("server: %s: %v", raw, err)
	}
	return r
}

// expect reads the next request and checks its method and params.
func (f *fakeServer) expect(method, params string) request {
	f.t.Helper()
	r := f.recv()
	if r.Method != method || !sameJSON(f.t, r.Params, []byte(params)) {
		f.t.Fatalf("server got %s %s, want %s %s", r.Method, r.Params, method, params)
	}
	return r
}

func (f *fakeServer) send(s string) {
	f.t.Helper()
	f.nc.SetWriteDeadline(time.Now().Add(bound))
	if _, err := io.WriteString(f.nc, s); err != nil {
		f.t.Fatalf("server: write: %v", err)
	}
}

func answer(r request, result string) string {
	return fmt.Sprintf(`{"id":%s,"result":%s,"error":null}`, r.ID, result)
}

func (f *fakeServer) reply(r request, result string) {
	f.t.Helper()
	f.send(answer(r, result))
}

// async runs a call in the background; wait collects its error.
func async(call func() error) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- call() }()
	return ch
}

func wait(t *testing.T, ch <-chan error, what string) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(bound):
		t.Fatalf("%s has not returned", what)
		return nil
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	t.Cleanup(cancel)
	return ctx
}

func TestConnMethods(t *testing.T) {
	c, f := newFake(t)
	ctx := ctxT(t)

	var dbs []string
	done := async(func() (err error) { dbs, err = c.ListDBs(ctx); return err })
	f.reply(f.expect("list_dbs", `[]`), `["Open_vSwitch","_Server"]`)
	if err := wait(t, done, "ListDBs"); err != nil || !reflect.DeepEqual(dbs, []string{"Open_vSwitch", "_Server"}) {
		t.Errorf("ListDBs = %q, %v", dbs, err)
	}

	var schema *Schema
	done = async(func() (err error) { schema, err = c.GetSchema(ctx, "Open_vSwitch"); return err })
	f.reply(f.expect("get_schema", `["Open_vSwitch"]`),
		`{"name":"Open_vSwitch","version":"8.5.0","tables":{"Bridge":{"columns":{"name":{"type":"string"}},
		  "isRoot":true,"indexes":[["name"]]}}}`)
	if err := wait(t, done, "GetSchema"); err != nil {
		t.Fatal(err)
	}
	if schema.Name != "Open_vSwitch" || schema.Version != "8.5.0" || !schema.Tables["Bridge"].IsRoot ||
		!reflect.DeepEqual(schema.Tables["Bridge"].Indexes, [][]string{{"name"}}) {
		t.Errorf("schema %+v", schema)
	}

	done = async(func() error { return c.Echo(ctx) })
	f.reply(f.expect("echo", `[]`), `[]`)
	if err := wait(t, done, "Echo"); err != nil {
		t.Errorf("Echo: %v", err)
	}
	done = async(func() error { return c.Echo(ctx, "ping", 1) })
	f.reply(f.expect("echo", `["ping",1]`), `["ping",1]`)
	if err := wait(t, done, "Echo"); err != nil {
		t.Errorf("Echo: %v", err)
	}
}

func TestConnTransact(t *testing.T) {
	c, f := newFake(t)
	ctx := ctxT(t)
	ops := []Operation{
		Insert("Port", Row{"name": "p1"}, "port"),
		Mutate("Bridge", []Mutation{InsertInto("ports", NamedUUID("port"))}, Eq("name", "br0")),
	}

	var res []OpResult
	done := async(func() (err error) { res, err = c.Transact(ctx, VswitchDB, ops...); return err })
	r := f.expect("transact", `["Open_vSwitch",
		{"op":"insert","table":"Port","row":{"name":"p1"},"uuid-name":"port"},
		{"op":"mutate","table":"Bridge","where":[["name","==","br0"]],"mutations":[["ports","insert",["named-uuid","port"]]]}]`)
	f.reply(r, `[{"uuid":["uuid","`+uuid1+`"]},{"count":1}]`)
	if err := wait(t, done, "Transact"); err != nil {
		t.Fatal(err)
	}
	if want := []OpResult{{UUID: uuid1}, {Count: 1}}; !reflect.DeepEqual(res, want) {
		t.Errorf("results %+v, want %+v", res, want)
	}

	done = async(func() (err error) { _, err = c.Transact(ctx, VswitchDB, ops...); return err })
	f.reply(f.recv(), `[{"uuid":["uuid","`+uuid1+`"]},{"count":1},{"error":"constraint violation","details":"duplicate"}]`)
	var te *TransactError
	if err := wait(t, done, "Transact"); !errors.As(err, &te) || te.Index != -1 || te.Err != "constraint violation" {
		t.Errorf("commit failure: error %v, want a *TransactError with Index -1", err)
	}
}

// Answers find their callers by id, whatever their order.
func TestConnConcurrentCalls(t *testing.T) {
	c, f := newFake(t)
	ctx := ctxT(t)
	const n = 50
	errs := make(chan error, n)
	for i := range n {
		go func() {
			var got []int
			err := c.call(ctx, "echo", []any{i}, &got)
			if err == nil && !reflect.DeepEqual(got, []int{i}) {
				err = fmt.Errorf("call %d got the answer %v", i, got)
			}
			errs <- err
		}()
	}
	reqs := make([]request, 0, n)
	ids := map[string]bool{}
	for range n {
		r := f.recv()
		if ids[string(r.ID)] {
			t.Fatalf("id %s used twice", r.ID)
		}
		ids[string(r.ID)] = true
		reqs = append(reqs, r)
	}
	// Answer in reverse order: half in one write, the rest one by one.
	slices.Reverse(reqs)
	var batch strings.Builder
	for _, r := range reqs[:n/2] {
		batch.WriteString(answer(r, string(r.Params)))
	}
	f.send(batch.String())
	for _, r := range reqs[n/2:] {
		f.reply(r, string(r.Params))
	}
	for range n {
		select {
		case err := <-errs:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(bound):
			t.Fatal("calls have not returned")
		}
	}
}

// Messages arrive without framing: several in one read, or one split over
// many; the decoder must take them as they come.
func TestConnStream(t *testing.T) {
	for _, tt := range []struct {
		name  string
		write func(f *fakeServer, stream string)
	}{
		{"one write", func(f *fakeServer, s string) { f.send(s) }},
		{"byte by byte", func(f *fakeServer, s string) {
			for i := range len(s) {
				f.send(s[i : i+1])
			}
		}},
		{"odd chunks", func(f *fakeServer, s string) {
			for len(s) > 0 {
				n := min(len(s), 7)
				f.send(s[:n])
				s = s[n:]
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, f := newFake(t)
			ctx := ctxT(t)
			updates := make(chan TableUpdates, 10)
			monitor := async(func() error {
				return c.Monitor(ctx, VswitchDB, "m", nil, func(u TableUpdates) { updates <- u })
			})
			r := f.expect("monitor", `["Open_vSwitch","m",null]`)
			var dbs []string
			list := async(func() (err error) { dbs, err = c.ListDBs(ctx); return err })
			l := f.expect("list_dbs", `[]`)

			stream := answer(r, `{"Bridge":{"`+uuid1+`":{"new":{"name":"br0"}}}}`) +
				"\n" + `{"id":null,"method":"update","params":["m",{"Bridge":{"` + uuid1 + `":{"old":{"name":"br0"},"new":{"name":"br1"}}}}]}` +
				"  \r\n\t" + answer(l, `["Open_vSwitch"]`) +
				`{"id":null,"method":"update","params":["m",{"Bridge":{"` + uuid1 + `":{"old":{"name":"br1"}}}}]}`
			tt.write(f, stream)

			if err := wait(t, monitor, "Monitor"); err != nil {
				t.Fatalf("Monitor: %v", err)
			}
			if err := wait(t, list, "ListDBs"); err != nil || !reflect.DeepEqual(dbs, []string{"Open_vSwitch"}) {
				t.Fatalf("ListDBs = %q, %v", dbs, err)
			}
			want := []TableUpdates{
				{"Bridge": {uuid1: {New: Row{"name": "br0"}}}},
				{"Bridge": {uuid1: {Old: Row{"name": "br0"}, New: Row{"name": "br1"}}}},
				{"Bridge": {uuid1: {Old: Row{"name": "br1"}}}},
			}
			for i, w := range want {
				select {
				case got := <-updates:
					if !reflect.DeepEqual(got, w) {
						t.Errorf("update %d\n got %+v\nwant %+v", i, got, w)
					}
				case <-time.After(bound):
					t.Fatalf("update %d has not arrived", i)
				}
			}
		})
	}
}

// The server's echo keeps the session alive (RFC 7047 4.1.11): it must be
// answered with its own params and id.
func TestConnAnswersEcho(t *testing.T) {
	c, f := newFake(t)
	for _, tt := range []struct{ in, want string }{
		{`{"method":"echo","params":["x"],"id":"echo"}`, `{"result":["x"],"error":null,"id":"echo"}`},
		{`{"method":"echo","params":[],"id":7}`, `{"result":[],"error":null,"id":7}`},
		{`{"method":"echo","params":[{"a":[1,2]},null],"id":["x",1]}`, `{"result":[{"a":[1,2]},null],"error":null,"id":["x",1]}`},
		{`{"method":"echo","id":"no params"}`, `{"result":[],"error":null,"id":"no params"}`},
	} {
		f.send(tt.in)
		if got := f.recvRaw(); !sameJSON(t, got, []byte(tt.want)) {
			t.Errorf("answer to %s\n got %s\nwant %s", tt.in, got, tt.want)
		}
	}
	select {
	case <-c.Done():
		t.Fatalf("connection ended: %v", c.Err())
	default:
	}
}

func TestConnMonitor(t *testing.T) {
	c, f := newFake(t)
	ctx := ctxT(t)
	var mu sync.Mutex
	var got []TableUpdates
	handler := func(u TableUpdates) {
		mu.Lock()
		got = append(got, u)
		mu.Unlock()
	}
	reqs := map[string]MonitorRequest{
		"Bridge": {Columns: []string{"name", "ports"}},
		"Port":   {Select: &MonitorSelect{Initial: true, Insert: true, Delete: true}},
	}
	done := async(func() error { return c.Monitor(ctx, VswitchDB, "nodenet", reqs, handler) })
	r := f.expect("monitor", `["Open_vSwitch","nodenet",{"Bridge":{"columns":["name","ports"]},
		"Port":{"select":{"initial":true,"insert":true,"delete":true,"modify":false}}}]`)
	f.reply(r, `{"Bridge":{"`+uuid1+`":{"new":{"name":"br0","ports":["set",[]]}}}}`)
	if err := wait(t, done, "Monitor"); err != nil {
		t.Fatal(err)
	}
	// The initial contents are handled before Monitor returns.
	mu.Lock()
	if want := []TableUpdates{{"Bridge": {uuid1: {New: Row{"name": "br0", "ports": Set{}}}}}}; !reflect.DeepEqual(got, want) {
		t.Errorf("after Monitor returned, handler got %+v, want %+v", got, want)
	}
	mu.Unlock()

	// Updates for other monitors are not this one's.
	f.send(`{"id":null,"method":"update","params":["other",{"Bridge":{"` + uuid2 + `":{"new":{"name":"x"}}}}]}`)
	f.send(`{"id":null,"method":"update","params":["nodenet",{"Port":{"` + uuid2 + `":{"new":{"name":"p1"}}}}]}`)

	// Cancel: the server's later updates go nowhere.
	done = async(func() error { return c.MonitorCancel(ctx, "nodenet") })
	f.reply(f.expect("monitor_cancel", `["nodenet"]`), `{}`)
	if err := wait(t, done, "MonitorCancel"); err != nil {
		t.Fatal(err)
	}
	f.send(`{"id":null,"method":"update","params":["nodenet",{"Port":{"` + uuid2 + `":{"old":{"name":"p1"}}}}]}`)
	syncReader(t, c, f)

	mu.Lock()
	defer mu.Unlock()
	want := []TableUpdates{
		{"Bridge": {uuid1: {New: Row{"name": "br0", "ports": Set{}}}}},
		{"Port": {uuid2: {New: Row{"name": "p1"}}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("handler got\n%+v\nwant\n%+v", got, want)
	}
}

// syncReader returns once the Conn has read everything the server sent
// before: the echo it answers comes after it.
func syncReader(t *testing.T, c *Conn, f *fakeServer) {
	t.Helper()
	f.send(`{"method":"echo","params":["sync"],"id":"sync"}`)
	if r := f.recv(); string(r.ID) != `"sync"` {
		t.Fatalf("server got %+v, want the answer to its echo", r)
	}
}

func TestConnMonitorError(t *testing.T) {
	c, f := newFake(t)
	ctx := ctxT(t)
	called := make(chan TableUpdates, 1)
	done := async(func() error {
		return c.Monitor(ctx, VswitchDB, "m", nil, func(u TableUpdates) { called <- u })
	})
	r := f.recv()
	f.send(fmt.Sprintf(`{"id":%s,"result":null,"error":{"error":"unknown database","details":"nope"}}`, r.ID))
	var re *RPCError
	if err := wait(t, done, "Monitor"); !errors.As(err, &re) || re.Err != "unknown database" || re.Method != "monitor" {
		t.Fatalf("Monitor error %v, want an *RPCError", err)
	}
	// A failed monitor gets no updates.
	f.send(`{"id":null,"method":"update","params":["m",{"Bridge":{"` + uuid2 + `":{"new":{"name":"x"}}}}]}`)
	syncReader(t, c, f)
	select {
	case u := <-called:
		t.Errorf("handler of a failed monitor got %+v", u)
	default:
	}
}

// A monitor's initial contents that cannot be decoded must fail Monitor:
// its caller would otherwise take an empty view for the database's.
func TestConnMonitorBadInitial(t *testing.T) {
	c, f := newFake(t)
	ctx := ctxT(t)
	called := make(chan TableUpdates, 1)
	done := async(func() error {
		return c.Monitor(ctx, VswitchDB, "m", nil, func(u TableUpdates) { called <- u })
	})
	r := f.recv()
	// ovsdb-server before 2.x put some errors in "result".
	f.reply(r, `{"error":"syntax error","details":"duplicate monitor ID"}`)
	err := wait(t, done, "Monitor")
	if err == nil {
		t.Fatal("Monitor succeeded with initial contents it could not decode")
	}
	if !errors.Is(err, ErrDisconnected) {
		t.Errorf("Monitor error %v, want ErrDisconnected (the session is ended)", err)
	}
	if len(called) != 0 {
		t.Errorf("handler called with %+v", <-called)
	}
	waitDone(t, c)
}

// An update that cannot be decoded ends the session: the monitor's view
// would be wrong for good.
func TestConnBadUpdateEndsSession(t *testing.T) {
	c, f := newFake(t)
	ctx := ctxT(t)
	done := async(func() error { return c.Monitor(ctx, VswitchDB, "m", nil, func(TableUpdates) {}) })
	f.reply(f.recv(), `{}`)
	if err := wait(t, done, "Monitor"); err != nil {
		t.Fatal(err)
	}
	f.send(`{"id":null,"method":"update","params":["m",{"Bridge":{"` + uuid1 + `":{"new":{"name":["set",[["set",[]]]]}}}}]}`)
	waitDone(t, c)
	if !errors.Is(c.Err(), ErrDisconnected) {
		t.Errorf("Err() = %v, want ErrDisconnected", c.Err())
	}
}

func waitDone(t *testing.T, c *Conn) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(bound):
		t.Fatal("the connection has not ended")
	}
}

func TestConnRPCError(t *testing.T) {
	c, f := newFake(t)
	ctx := ctxT(t)
	done := async(func() error { _, err := c.GetSchema(ctx, "nope"); return err })
	r := f.recv()
	f.send(fmt.Sprintf(`{"id":%s,"result":null,"error":"unknown database"}`, r.ID))
	var re *RPCError
	err := wait(t, done, "GetSchema")
	if !errors.As(err, &re) || re.Method != "get_schema" || re.Err != "unknown database" {
		t.Fatalf("error %v (%T), want an *RPCError for get_schema", err, err)
	}
	// The session goes on.
	done = async(func() error { return c.Echo(ctx) })
	f.reply(f.recv(), `[]`)
	if err := wait(t, done, "Echo"); err != nil {
		t.Fatal(err)
	}
}

// A call that times out returns; its late answer is dropped and does not
// reach the next call.
func TestConnDeadline(t *testing.T) {
	c, f := newFake(t)
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	var dbs []string
	done := async(func() (err error) { dbs, err = c.ListDBs(short); return err })
	late := f.expect("list_dbs", `[]`)
	if err := wait(t, done, "ListDBs"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ListDBs error %v, want context.DeadlineExceeded", err)
	}
	f.reply(late, `["late"]`)

	ctx := ctxT(t)
	done = async(func() (err error) { dbs, err = c.ListDBs(ctx); return err })
	r := f.expect("list_dbs", `[]`)
	if string(r.ID) == string(late.ID) {
		t.Fatalf("id %s reused", r.ID)
	}
	f.reply(r, `["Open_vSwitch"]`)
	if err := wait(t, done, "ListDBs"); err != nil || !reflect.DeepEqual(dbs, []string{"Open_vSwitch"}) {
		t.Errorf("ListDBs = %q, %v, want [Open_vSwitch]", dbs, err)
	}
	// A cancelled context, too.
	cctx, ccancel := context.WithCancel(ctx)
	done = async(func() error { return c.Echo(cctx) })
	f.expect("echo", `[]`)
	ccancel()
	if err := wait(t, done, "Echo"); !errors.Is(err, context.Canceled) {
		t.Errorf("Echo error %v, want context.Canceled", err)
	}
}

// When the server goes away, every pending call fails at once with
// ErrDisconnected, and so does every later one.
func TestConnServerCloses(t *testing.T) {
	c, f := newFake(t)
	ctx := ctxT(t)
	var calls []<-chan error
	for range 5 {
		calls = append(calls, async(func() error { _, err := c.ListDBs(ctx); return err }))
	}
	for range 5 {
		f.recv()
	}
	f.nc.Close()
	for i, ch := range calls {
		if err := wait(t, ch, "a pending call"); !errors.Is(err, ErrDisconnected) {
			t.Errorf("pending call %d: error %v, want ErrDisconnected", i, err)
		}
	}
	waitDone(t, c)
	if !errors.Is(c.Err(), ErrDisconnected) {
		t.Errorf("Err() = %v, want ErrDisconnected", c.Err())
	}
	if _, err := c.ListDBs(ctx); !errors.Is(err, ErrDisconnected) {
		t.Errorf("call after the end: error %v, want ErrDisconnected", err)
	}
}

func TestConnClose(t *testing.T) {
	c, f := newFake(t)
	ctx := ctxT(t)
	if err := c.Err(); err != nil {
		t.Fatalf("Err() = %v on a live connection", err)
	}
	done := async(func() error { return c.Echo(ctx) })
	f.recv()
	c.Close()
	if err := wait(t, done, "Echo"); !errors.Is(err, ErrDisconnected) {
		t.Errorf("pending call: error %v, want ErrDisconnected", err)
	}
	waitDone(t, c)
	c.Close() // twice is fine
	if !errors.Is(c.Err(), ErrDisconnected) {
		t.Errorf("Err() = %v", c.Err())
	}
}

// What the server may send besides answers does not disturb the session;
// what is not JSON-RPC ends it.
func TestConnUnexpectedMessages(t *testing.T) {
	c, f := newFake(t)
	ctx := ctxT(t)
	for _, msg := range []string{
		`{"id":999,"result":[],"error":null}`, // an id never used
		`{"id":"x","result":1,"error":null}`,  // an id not ours
		`{"id":null,"result":1,"error":null}`,
		`{"id":null,"method":"surprise","params":[]}`,  // unknown notification
		`{"id":null,"method":"update","params":"bad"}`, // malformed, for no monitor
		`{"id":null,"method":"update","params":["nobody",{"T":{}}]}`,
		`{"id":null,"method":"locked","params":["never asked"]}`,
		`{"id":null,"method":"stolen","params":[1]}`,
		`{}`,
		"\n\n",
	} {
		f.send(msg)
	}
	done := async(func() error { return c.Echo(ctx) })
	f.reply(f.recv(), `[]`)
	if err := wait(t, done, "Echo"); err != nil {
		t.Fatalf("after unexpected messages: %v", err)
	}

	for _, garbage := range []string{`nope`, `[1,2]`, `"string"`, `{"id":1,"method":5}`, `{"id":1,"result":`} {
		t.Run(garbage, func(t *testing.T) {
			c, f := newFake(t)
			ctx := ctxT(t)
			done := async(func() error { return c.Echo(ctx) })
			f.recv()
			f.send(garbage)
			f.nc.Close()
			if err := wait(t, done, "Echo"); !errors.Is(err, ErrDisconnected) {
				t.Errorf("error %v, want ErrDisconnected", err)
			}
			waitDone(t, c)
		})
	}
}

// RFC 7047 4.1.8: {"locked": false} means wait for the "locked"
// notification; "stolen" means it is gone.
func TestSplitAddr(t *testing.T) {
	for _, tt := range []struct {
		in, network, address string
	}{
		{"unix:/run/openvswitch/db.sock", "unix", "/run/openvswitch/db.sock"},
		{"tcp:127.0.0.1:6640", "tcp", "127.0.0.1:6640"},
		{"tcp:[::1]:6640", "tcp", "[::1]:6640"},
		{"unix:", "", ""},
		{"ssl:1.2.3.4:6640", "", ""},
		{"/run/openvswitch/db.sock", "", ""},
		{"", "", ""},
	} {
		network, address, err := splitAddr(tt.in)
		if network != tt.network || address != tt.address || (err != nil) != (tt.network == "") {
			t.Errorf("splitAddr(%q) = %q, %q, %v; want %q, %q", tt.in, network, address, err, tt.network, tt.address)
		}
	}
	if _, err := Dial(context.Background(), "ptcp:6640"); err == nil {
		t.Error("Dial of a bad address succeeded")
	}
}

// A Lock whose context ends before the server answered withdraws the
// request: otherwise the server could grant it to a caller who gave up.
