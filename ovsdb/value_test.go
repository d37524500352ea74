package ovsdb

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
)

// sameJSON reports whether a and b are the same JSON document, whatever
// the member order and spacing.
func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var av, bv any
	if err := json.Unmarshal(a, &av); err != nil {
		t.Fatalf("not JSON: %s: %v", a, err)
	}
	if err := json.Unmarshal(b, &bv); err != nil {
		t.Fatalf("not JSON: %s: %v", b, err)
	}
	return reflect.DeepEqual(av, bv)
}

// checkJSON marshals v and compares it with want semantically.
func checkJSON(t *testing.T, v any, want string) {
	t.Helper()
	got, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("json.Marshal(%#v): %v", v, err)
	}
	if !sameJSON(t, got, []byte(want)) {
		t.Errorf("json.Marshal(%#v)\n got %s\nwant %s", v, got, want)
	}
}

const (
	uuid1 = "550e8400-e29b-41d4-a716-446655440000" // RFC 4122's example
	uuid2 = "36bb8ac4-1b62-4f2a-9a1d-2f3c0e8c1d7a"
)

func TestMarshalValues(t *testing.T) {
	for _, tt := range []struct {
		name string
		v    any
		want string
	}{
		{"uuid", UUID(uuid1), `["uuid","` + uuid1 + `"]`},
		{"named-uuid", NamedUUID("myrow"), `["named-uuid","myrow"]`},
		{"nil set is the empty set", Set(nil), `["set",[]]`},
		{"empty set", Set{}, `["set",[]]`},
		{"set of integers", SetOf(10, 20), `["set",[10,20]]`},
		{"set of uuids", SetOf(UUID(uuid1), UUID(uuid2)), `["set",[["uuid","` + uuid1 + `"],["uuid","` + uuid2 + `"]]]`},
		{"set of named-uuids", Set{NamedUUID("a"), NamedUUID("b")}, `["set",[["named-uuid","a"],["named-uuid","b"]]]`},
		{"nil map", Map(nil), `["map",[]]`},
		{"empty map", Map{}, `["map",[]]`},
		{"string map", MapOf(map[string]string{"b": "2", "a": "1"}), `["map",[["a","1"],["b","2"]]]`},
		{"integer keys", Map{int64(2): "two", int64(1): "one"}, `["map",[[1,"one"],[2,"two"]]]`},
		{"uuid values", Map{"x": UUID(uuid1)}, `["map",[["x",["uuid","` + uuid1 + `"]]]]`},
		{"row", Row{"name": "br0", "ports": NamedUUID("p"), "tag": Set{}, "mtu_request": 1500,
			"external_ids": Map{"nodenet": "lan1"}, "stp_enable": false, "weight": 0.5},
			`{"name":"br0","ports":["named-uuid","p"],"tag":["set",[]],"mtu_request":1500,
			  "external_ids":["map",[["nodenet","lan1"]]],"stp_enable":false,"weight":0.5}`},
	} {
		t.Run(tt.name, func(t *testing.T) { checkJSON(t, tt.v, tt.want) })
	}
}

// A map is encoded with its keys in one order, whatever Go's iteration
// order: a transaction's bytes do not change from run to run.
func TestMapMarshalStableOrder(t *testing.T) {
	m := Map{}
	var want strings.Builder
	want.WriteString(`["map",[`)
	for i := range 20 {
		k := fmt.Sprintf("key%02d", i)
		m[k] = i
		if i > 0 {
			want.WriteString(",")
		}
		fmt.Fprintf(&want, `[%q,%d]`, k, i)
	}
	want.WriteString(`]]`)
	for range 50 {
		got, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want.String() {
			t.Fatalf("json.Marshal(map)\n got %s\nwant %s", got, want.String())
		}
	}
}

func TestDecodeValue(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want any
	}{
		// Atoms (RFC 7047 5.1): integers are int64, reals float64.
		{`"br0"`, "br0"},
		{`""`, ""},
		{`42`, int64(42)},
		{`-1`, int64(-1)},
		{`0`, int64(0)},
		{`9223372036854775807`, int64(math.MaxInt64)},
		{`-9223372036854775808`, int64(math.MinInt64)},
		{`1.5`, 1.5},
		{`-0.25`, -0.25},
		{`1e3`, 1000.0},
		{`1.0`, 1.0},
		{`true`, true},
		{`false`, false},
		{` "spaces around" `, "spaces around"},
		{`"\u00e9\n"`, "é\n"},
		{`["uuid","` + uuid1 + `"]`, UUID(uuid1)},
		{`["named-uuid","myrow"]`, NamedUUID("myrow")},
		{`["named-uuid","_row_2"]`, NamedUUID("_row_2")},
		// Sets.
		{`["set",[]]`, Set{}},
		{`["set",[1,2,3]]`, Set{int64(1), int64(2), int64(3)}},
		{`["set",["a"]]`, Set{"a"}},
		{`["set",[["uuid","` + uuid1 + `"],["uuid","` + uuid2 + `"]]]`, Set{UUID(uuid1), UUID(uuid2)}},
		{`["set",[["named-uuid","x"]]]`, Set{NamedUUID("x")}},
		{`["set",[1.5,true]]`, Set{1.5, true}},
		// Maps.
		{`["map",[]]`, Map{}},
		{`["map",[["a","b"]]]`, Map{"a": "b"}},
		{`["map",[["nodenet","lan1"],["k","v"]]]`, Map{"nodenet": "lan1", "k": "v"}},
		{`["map",[[1,"one"],[2,"two"]]]`, Map{int64(1): "one", int64(2): "two"}},
		{`["map",[[["uuid","` + uuid1 + `"],["uuid","` + uuid2 + `"]]]]`, Map{UUID(uuid1): UUID(uuid2)}},
		{`["map",[["a",1],["a",2]]]`, Map{"a": int64(2)}}, // the last pair wins
	} {
		t.Run(tt.in, func(t *testing.T) {
			got, err := DecodeValue([]byte(tt.in))
			if err != nil {
				t.Fatalf("DecodeValue(%s): %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("DecodeValue(%s)\n got %#v\nwant %#v", tt.in, got, tt.want)
			}
		})
	}
}

func TestDecodeValueErrors(t *testing.T) {
	for _, in := range []string{
		``,
		`nul`,
		`null`,
		`{}`,
		`{"uuid":"x"}`,
		`[]`,
		`["set"]`,
		`["set",[],[]]`,
		`["uuid"]`,
		`["uuid","a","b"]`,
		`["uuid",1]`,
		`["uuid",null]`,
		`["UUID","` + uuid1 + `"]`,
		`["bag",[]]`,
		`[1,2]`,
		`[null,[]]`,
		`["named-uuid",""]`,
		`["named-uuid","1row"]`,
		`["named-uuid","my-row"]`,
		`["named-uuid","my row"]`,
		`["named-uuid","rów"]`,
		`["named-uuid",["x"]]`,
		`["set","a"]`,
		`["set",{}]`,
		`["set",[null]]`,
		`["set",[{}]]`,
		`["set",[["set",[]]]]`,         // nested set
		`["set",[["map",[]]]]`,         // a map in a set
		`["set",[["set",[1]]]]`,        // nested set
		`["set",[["uuid"]]]`,           // bad uuid arity in a set
		`["set",[["named-uuid","-"]]]`, // bad name in a set
		`["map","a"]`,
		`["map",[["a"]]]`,
		`["map",[["a","b","c"]]]`,
		`["map",["a","b"]]`,
		`["map",[[["set",[]],"b"]]]`, // a set as key
		`["map",[["a",["set",[]]]]]`, // a set as value
		`["map",[["a",["map",[]]]]]`, // a map as value
		`["map",[[null,"b"]]]`,
		`["map",[["a",null]]]`,
		`1e400`,
		`-1e400`,
		`"unterminated`,
		`[`,
		`["set",[1,]]`,
	} {
		t.Run(in, func(t *testing.T) {
			if got, err := DecodeValue([]byte(in)); err == nil {
				t.Errorf("DecodeValue(%s) = %#v, want an error", in, got)
			}
		})
	}
}

func TestRowUnmarshal(t *testing.T) {
	in := `{"_uuid":["uuid","` + uuid1 + `"],"name":"eth0","ofport":1,"tag":["set",[]],
		"trunks":["set",[10,20]],"options":["map",[["peer","p1"]]],"interfaces":["uuid","` + uuid2 + `"]}`
	var got Row
	if err := json.Unmarshal([]byte(in), &got); err != nil {
		t.Fatal(err)
	}
	want := Row{
		"_uuid":      UUID(uuid1),
		"name":       "eth0",
		"ofport":     int64(1),
		"tag":        Set{},
		"trunks":     Set{int64(10), int64(20)},
		"options":    Map{"peer": "p1"},
		"interfaces": UUID(uuid2),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("row\n got %#v\nwant %#v", got, want)
	}

	for _, bad := range []string{`[]`, `"row"`, `{"name":null}`, `{"ports":["set",[["set",[]]]]}`} {
		var r Row
		err := json.Unmarshal([]byte(bad), &r)
		if err == nil {
			t.Errorf("Row from %s = %#v, want an error", bad, r)
		}
	}
	// The error names the column.
	var r Row
	err := json.Unmarshal([]byte(`{"ok":1,"ports":["named-uuid","9"]}`), &r)
	if err == nil || !strings.Contains(err.Error(), `"ports"`) {
		t.Errorf("error %v does not name the column \"ports\"", err)
	}
}

// The readers accept a one-element set for its atom: without the schema a
// set column with one element arrives as the bare atom (RFC 7047 5.1).
func TestReaders(t *testing.T) {
	u1, u2 := UUID(uuid1), UUID(uuid2)
	for _, tt := range []struct {
		name   string
		v      any
		str    string
		i      int64
		iok    bool
		ints   []int64
		uuids  []UUID
		strs   []string
		strmap map[string]string
	}{
		{name: "nil", v: nil, strmap: map[string]string{}},
		{name: "string", v: "br0", str: "br0", strs: []string{"br0"}, strmap: map[string]string{}},
		{name: "string in a set", v: Set{"br0"}, str: "br0", strs: []string{"br0"}, strmap: map[string]string{}},
		{name: "empty set", v: Set{}, strmap: map[string]string{}},
		{name: "integer", v: int64(7), i: 7, iok: true, ints: []int64{7}, strmap: map[string]string{}},
		{name: "integer in a set", v: Set{int64(7)}, i: 7, iok: true, ints: []int64{7}, strmap: map[string]string{}},
		{name: "zero", v: int64(0), i: 0, iok: true, ints: []int64{0}, strmap: map[string]string{}},
		{name: "negative", v: int64(-1), i: -1, iok: true, ints: []int64{-1}, strmap: map[string]string{}},
		{name: "two integers", v: Set{int64(10), int64(20)}, ints: []int64{10, 20}, strmap: map[string]string{}},
		{name: "two strings", v: Set{"a", "b"}, strs: []string{"a", "b"}, strmap: map[string]string{}},
		{name: "uuid", v: u1, uuids: []UUID{u1}, strmap: map[string]string{}},
		{name: "uuids", v: Set{u1, u2}, uuids: []UUID{u1, u2}, strmap: map[string]string{}},
		{name: "real is not an integer", v: 1.0, strmap: map[string]string{}},
		{name: "map", v: Map{"a": "1", "b": "2", int64(3): "x", "c": int64(4)},
			strmap: map[string]string{"a": "1", "b": "2"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := String(tt.v); got != tt.str {
				t.Errorf("String = %q, want %q", got, tt.str)
			}
			if got, ok := Int(tt.v); got != tt.i || ok != tt.iok {
				t.Errorf("Int = %d, %v, want %d, %v", got, ok, tt.i, tt.iok)
			}
			if got := Ints(tt.v); !reflect.DeepEqual(got, tt.ints) {
				t.Errorf("Ints = %v, want %v", got, tt.ints)
			}
			if got := UUIDs(tt.v); !reflect.DeepEqual(got, tt.uuids) {
				t.Errorf("UUIDs = %v, want %v", got, tt.uuids)
			}
			if got := Strings(tt.v); !reflect.DeepEqual(got, tt.strs) {
				t.Errorf("Strings = %q, want %q", got, tt.strs)
			}
			if got := StringMap(tt.v); !reflect.DeepEqual(got, tt.strmap) {
				t.Errorf("StringMap = %v, want %v", got, tt.strmap)
			}
		})
	}
}

// Readers work on what DecodeValue returns for what the server sends.
func TestReadersOnDecoded(t *testing.T) {
	decode := func(s string) any {
		t.Helper()
		v, err := DecodeValue([]byte(s))
		if err != nil {
			t.Fatalf("DecodeValue(%s): %v", s, err)
		}
		return v
	}
	if got, ok := Int(decode(`["set",[]]`)); ok {
		t.Errorf("Int(empty optional) = %d, true; want false", got)
	}
	if got, ok := Int(decode(`100`)); !ok || got != 100 {
		t.Errorf("Int(100) = %d, %v", got, ok)
	}
	if got := UUIDs(decode(`["uuid","` + uuid1 + `"]`)); !reflect.DeepEqual(got, []UUID{uuid1}) {
		t.Errorf("UUIDs(one uuid) = %v", got)
	}
	if got := StringMap(decode(`["map",[["remote_ip","10.0.0.2"],["key","flow"]]]`)); !reflect.DeepEqual(got,
		map[string]string{"remote_ip": "10.0.0.2", "key": "flow"}) {
		t.Errorf("StringMap = %v", got)
	}
}

func TestSetOfMapOf(t *testing.T) {
	if got := SetOf[int](); got == nil || len(got) != 0 {
		t.Errorf("SetOf() = %#v, want an empty non-nil set", got)
	}
	if got, want := SetOf(UUID("a"), UUID("b")), (Set{UUID("a"), UUID("b")}); !reflect.DeepEqual(got, want) {
		t.Errorf("SetOf(uuids) = %#v, want %#v", got, want)
	}
	if got, want := MapOf(nil), (Map{}); !reflect.DeepEqual(got, want) {
		t.Errorf("MapOf(nil) = %#v, want %#v", got, want)
	}
	if got, want := MapOf(map[string]string{"k": "v"}), (Map{"k": "v"}); !reflect.DeepEqual(got, want) {
		t.Errorf("MapOf = %#v, want %#v", got, want)
	}
}

// What the package encodes, it decodes to the same value.
func TestEncodeDecodeRoundTrip(t *testing.T) {
	for _, v := range []any{
		"x", int64(-3), 2.5, true, UUID(uuid1), NamedUUID("n1"),
		Set{}, SetOf("a", "b"), SetOf(UUID(uuid1)), Set{NamedUUID("p")},
		Map{}, Map{"a": "b", "c": "d"}, Map{int64(1): UUID(uuid1)},
	} {
		data, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("json.Marshal(%#v): %v", v, err)
		}
		got, err := DecodeValue(data)
		if err != nil {
			t.Fatalf("DecodeValue(%s): %v", data, err)
		}
		if !reflect.DeepEqual(got, v) {
			t.Errorf("round trip of %#v through %s gave %#v", v, data, got)
		}
	}
}
