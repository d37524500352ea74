package ovsdb

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"reflect"
	"strconv"
	"testing"
	"time"
)

// valueSeeds are RFC 7047 5.1 values, and near misses.
var valueSeeds = []string{
	`"br0"`, `42`, `-1`, `1.5`, `1.0`, `1e3`, `true`, `false`, `""`,
	`["uuid","550e8400-e29b-41d4-a716-446655440000"]`,
	`["named-uuid","myrow"]`,
	`["set",[]]`,
	`["set",[1,2,3]]`,
	`["set",["a","b"]]`,
	`["set",[["uuid","550e8400-e29b-41d4-a716-446655440000"],["uuid","36bb8ac4-1b62-4f2a-9a1d-2f3c0e8c1d7a"]]]`,
	`["map",[]]`,
	`["map",[["a","b"]]]`,
	`["map",[["nodenet","lan1"],["remote_ip","10.0.0.2"]]]`,
	`["map",[[1,["uuid","550e8400-e29b-41d4-a716-446655440000"]]]]`,
	`["map",[[1,"a"],[1.0,"b"]]]`,
	`["set",[["set",[]]]]`,
	`["named-uuid","1x"]`,
	`["uuid"]`,
	`["map",[["a"]]]`,
	`9223372036854775808`,
	`70000000000000100.0`, // found by fuzzing: a double above 2^53 with an integer value
	`-0.0`,
	`1e400`,
	`"\ud800"`,
	`null`,
	`{}`,
}

// FuzzDecodeValue: DecodeValue takes what the server sends; it must not
// panic, and what it returns must survive being written back.
func FuzzDecodeValue(f *testing.F) {
	for _, s := range valueSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := DecodeValue(data)
		if err != nil {
			return
		}
		out, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("json.Marshal(%#v) from %q: %v", v, data, err)
		}
		back, err := DecodeValue(out)
		if err != nil {
			t.Fatalf("DecodeValue(%s), from %q: %v", out, data, err)
		}
		want, ok := canonical(v)
		if !ok {
			return
		}
		if !reflect.DeepEqual(back, want) {
			t.Fatalf("round trip of %q\n   decoded %#v\nre-encoded %s\n   decoded %#v", data, v, out, back)
		}
	})
}

// canonical is v as it reads back after json.Marshal: a real is written
// in its shortest form, without a fraction when it has an integer value
// (as ovsdb-server writes it, too), and then reads back as that int64.
// ok is false for a map whose keys collide once canonical (1 and 1.0):
// the server never sends one.
func canonical(v any) (any, bool) {
	switch x := v.(type) {
	case float64:
		if i, err := strconv.ParseInt(strconv.FormatFloat(x, 'f', -1, 64), 10, 64); err == nil {
			return i, true
		}
		return x, true
	case Set:
		out := make(Set, len(x))
		for i, e := range x {
			out[i], _ = canonical(e)
		}
		return out, true
	case Map:
		out := make(Map, len(x))
		for k, e := range x {
			ck, _ := canonical(k)
			ce, _ := canonical(e)
			out[ck] = ce
		}
		return out, len(out) == len(x)
	}
	return v, true
}

// connSeeds are what a server may send: answers to the calls FuzzConnRead
// makes (ids 1, 2 and 3), notifications, echo, and broken streams.
var connSeeds = []string{
	``,
	`{"id":1,"result":{"Bridge":{"550e8400-e29b-41d4-a716-446655440000":{"new":{"name":"br0","ports":["set",[]]}}}},"error":null}` +
		`{"id":null,"method":"update","params":["m",{"Bridge":{"550e8400-e29b-41d4-a716-446655440000":{"old":{"name":"br0"},"new":{"name":"br1"}}}}]}`,
	`{"id":2,"result":{"locked":false},"error":null}{"id":null,"method":"locked","params":["l"]}{"id":null,"method":"stolen","params":["l"]}`,
	`{"id":2,"result":{"locked":true},"error":null}`,
	`{"id":3,"result":["x"],"error":null}`,
	`{"id":3,"result":null,"error":{"error":"unknown database","details":"x"}}`,
	`{"id":1,"result":null,"error":"unknown method"}`,
	`{"method":"echo","params":["x"],"id":"echo"}`,
	`{"method":"echo","params":[],"id":null}`,
	`{"id":1,"result":{"Bridge":"x"},"error":null}`,
	`{"id":null,"method":"update","params":["m",{"Bridge":{"u":{"new":{"name":["set",[["set",[]]]]}}}}]}`,
	`{"id":1,"result":{},"error":null}{"id":null,"method":"update","params":["m",null]}`,
	`{"id":1,"result":{},"error":null}{"id":null,"method":"update","params":["m",{"T":{"u":{}}}]}`,
	"{\"id\":3,\"result\":[],\"error\":null}\n\n  {\"id\":9,\"result\":[]}",
	`{"id":3,"result":`,
	`[1,2]`,
	`nope`,
	`{"id":1,"method":5}`,
	`{"id":18446744073709551617,"result":1}`,
	`{"id":-1,"result":1}{"id":1.0,"result":{}}{"id":"1","result":{}}`,
}

// FuzzConnRead feeds arbitrary bytes as the server's side of a session
// with a monitor, a lock and a call under way: the Conn must not panic or
// hang, and ends with ErrDisconnected when the stream does.
func FuzzConnRead(f *testing.F) {
	for _, s := range connSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, stream []byte) {
		client, server := net.Pipe()
		defer server.Close()
		c := NewConn(client)
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()

		// Start the calls in a known order so that their ids are 1, 2, 3.
		dec := json.NewDecoder(server)
		var req json.RawMessage
		readReq := func() {
			server.SetReadDeadline(time.Now().Add(bound))
			if err := dec.Decode(&req); err != nil {
				t.Fatalf("server: read: %v", err)
			}
		}
		monitor := async(func() error {
			return c.Monitor(ctx, VswitchDB, "m", nil, func(TableUpdates) {})
		})
		readReq()
		lock := async(func() error { return c.Lock(ctx, "l") })
		readReq()
		echo := async(func() error { return c.Echo(ctx, "x") })
		readReq()

		// Whatever the Conn writes (echo answers, unlock) is read and dropped.
		drained := make(chan struct{})
		go func() {
			io.Copy(io.Discard, io.MultiReader(dec.Buffered(), server))
			close(drained)
		}()

		server.SetWriteDeadline(time.Now().Add(bound))
		server.Write(stream) // fails once the Conn gave up on the stream
		server.Close()

		select {
		case <-c.Done():
		case <-time.After(bound):
			t.Fatalf("the Conn did not end after the stream did: %q", stream)
		}
		if err := c.Err(); !errors.Is(err, ErrDisconnected) {
			t.Errorf("Err() = %v, want ErrDisconnected", err)
		}
		for _, call := range []<-chan error{monitor, lock, echo} {
			select {
			case <-call:
			case <-time.After(bound):
				t.Fatalf("a call has not returned after the Conn ended: %q", stream)
			}
		}
		<-drained
	})
}
