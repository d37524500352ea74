package ovsdb

import (
	"encoding/json"
	"testing"
)

// Golden JSON for every operation (RFC 7047 5.2). select, update, mutate,
// delete and wait must carry "where" even when it is empty: ovsdb-server
// rejects the operation without it.
func TestEncodeOperations(t *testing.T) {
	root := Eq("_uuid", UUID(uuid1))
	for _, tt := range []struct {
		name string
		op   Operation
		want string
	}{
		{"insert", Insert("Bridge", Row{"name": "br0", "ports": NamedUUID("port"),
			"external_ids": Map{"nodenet": "lan1", "a": "b"}}, "bridge"),
			`{"op":"insert","table":"Bridge","uuid-name":"bridge",
			  "row":{"name":"br0","ports":["named-uuid","port"],
			         "external_ids":["map",[["a","b"],["nodenet","lan1"]]]}}`},
		{"insert without uuid-name", Insert("Interface", Row{"name": "eth0"}, ""),
			`{"op":"insert","table":"Interface","row":{"name":"eth0"}}`},
		{"insert of an empty row", Insert("Open_vSwitch", nil, "root"),
			`{"op":"insert","table":"Open_vSwitch","row":{},"uuid-name":"root"}`},
		{"select", Select("Interface", []string{"name", "ofport"}, Eq("name", "eth0")),
			`{"op":"select","table":"Interface","where":[["name","==","eth0"]],"columns":["name","ofport"]}`},
		{"select everything", Select("Bridge", nil),
			`{"op":"select","table":"Bridge","where":[]}`},
		{"select no columns", Select("Bridge", []string{}),
			`{"op":"select","table":"Bridge","where":[],"columns":[]}`},
		{"update", Update("Port", Row{"tag": Set{}, "trunks": SetOf(10, 20)}, Eq("_uuid", UUID(uuid2))),
			`{"op":"update","table":"Port","where":[["_uuid","==",["uuid","` + uuid2 + `"]]],
			  "row":{"tag":["set",[]],"trunks":["set",[10,20]]}}`},
		{"update everything", Update("Interface", Row{"type": "internal"}),
			`{"op":"update","table":"Interface","where":[],"row":{"type":"internal"}}`},
		{"mutate", Mutate("Open_vSwitch", []Mutation{Add("next_cfg", 1)}, root),
			`{"op":"mutate","table":"Open_vSwitch","where":[["_uuid","==",["uuid","` + uuid1 + `"]]],
			  "mutations":[["next_cfg","+=",1]]}`},
		{"mutate sets and maps", Mutate("Bridge", []Mutation{
			InsertInto("ports", NamedUUID("port")),
			DeleteFrom("ports", SetOf(UUID(uuid2))),
			DeleteFrom("external_ids", SetOf("k")),
			InsertInto("external_ids", Map{"k": "v"}),
		}),
			`{"op":"mutate","table":"Bridge","where":[],"mutations":[
			  ["ports","insert",["named-uuid","port"]],
			  ["ports","delete",["set",[["uuid","` + uuid2 + `"]]]],
			  ["external_ids","delete",["set",["k"]]],
			  ["external_ids","insert",["map",[["k","v"]]]]]}`},
		{"delete", Delete("Bridge", Eq("name", "br0"), Includes("ports", UUID(uuid2))),
			`{"op":"delete","table":"Bridge","where":[["name","==","br0"],["ports","includes",["uuid","` + uuid2 + `"]]]}`},
		{"delete everything", Delete("Bridge"),
			`{"op":"delete","table":"Bridge","where":[]}`},
		{"wait", Wait("Open_vSwitch", 0, nil, []string{"_uuid"}, "=="),
			`{"op":"wait","table":"Open_vSwitch","where":[],"columns":["_uuid"],"until":"==","rows":[],"timeout":0}`},
		{"wait for rows", Wait("Bridge", 1000, []Condition{Eq("name", "br0")}, []string{"name"}, "!=",
			Row{"name": "br0"}),
			`{"op":"wait","table":"Bridge","where":[["name","==","br0"]],"columns":["name"],"until":"!=",
			  "rows":[{"name":"br0"}],"timeout":1000}`},
		{"wait without timeout", Operation{Op: "wait", Table: "Bridge", Columns: []string{"name"}, Until: "=="},
			`{"op":"wait","table":"Bridge","where":[],"columns":["name"],"until":"==","rows":[]}`},
		{"comment", Comment("nodenet: add br0"),
			`{"op":"comment","comment":"nodenet: add br0"}`},
		{"assert", Assert("nodenet"),
			`{"op":"assert","lock":"nodenet"}`},
	} {
		t.Run(tt.name, func(t *testing.T) { checkJSON(t, tt.op, tt.want) })
	}
}

func TestConditionMutationJSON(t *testing.T) {
	for _, tt := range []struct {
		name string
		v    any
		want string
	}{
		{"eq", Eq("name", "br0"), `["name","==","br0"]`},
		{"eq uuid", Eq("_uuid", UUID(uuid1)), `["_uuid","==",["uuid","` + uuid1 + `"]]`},
		{"eq empty set", Eq("tag", Set{}), `["tag","==",["set",[]]]`},
		{"includes", Includes("trunks", SetOf(10, 20)), `["trunks","includes",["set",[10,20]]]`},
		{"includes map", Includes("external_ids", Map{"nodenet": "lan1"}),
			`["external_ids","includes",["map",[["nodenet","lan1"]]]]`},
		{"other function", Condition{"ofport", "<", 0}, `["ofport","<",0]`},
		{"where uuid", WhereUUID(UUID(uuid1)), `[["_uuid","==",["uuid","` + uuid1 + `"]]]`},
		{"add", Add("next_cfg", 1), `["next_cfg","+=",1]`},
		{"insert into", InsertInto("bridges", NamedUUID("bridge")), `["bridges","insert",["named-uuid","bridge"]]`},
		{"delete from map by keys", DeleteFrom("external_ids", SetOf("a", "b")),
			`["external_ids","delete",["set",["a","b"]]]`},
		{"delete from map by pairs", DeleteFrom("external_ids", Map{"a": "1"}),
			`["external_ids","delete",["map",[["a","1"]]]]`},
		{"other mutator", Mutation{"n", "*=", 2}, `["n","*=",2]`},
	} {
		t.Run(tt.name, func(t *testing.T) { checkJSON(t, tt.v, tt.want) })
	}
}

// An optional integer column (Port.tag, Interface.mtu_request) is cleared
// by writing the empty set, not 0.
func TestEncodeOptionalInteger(t *testing.T) {
	port := Port{UUID: uuid1, Name: "p1", Tag: 10, Trunks: []int64{1, 2}}
	for _, tt := range []struct {
		name string
		spec PortSpec
		want string // "" when nothing is to change
	}{
		{"clear tag", PortSpec{Name: "p1", Trunks: []int{1, 2}},
			`[{"op":"update","table":"Port","where":[["_uuid","==",["uuid","` + uuid1 + `"]]],"row":{"tag":["set",[]]}}]`},
		{"set tag", PortSpec{Name: "p1", Tag: 20, Trunks: []int{1, 2}},
			`[{"op":"update","table":"Port","where":[["_uuid","==",["uuid","` + uuid1 + `"]]],"row":{"tag":20}}]`},
		{"clear trunks", PortSpec{Name: "p1", Tag: 10},
			`[{"op":"update","table":"Port","where":[["_uuid","==",["uuid","` + uuid1 + `"]]],"row":{"trunks":["set",[]]}}]`},
		{"no change", PortSpec{Name: "p1", Tag: 10, Trunks: []int{1, 2}}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ops := portUpdates(port, tt.spec)
			if tt.want == "" {
				if len(ops) != 0 {
					t.Errorf("portUpdates = %+v, want none", ops)
				}
				return
			}
			checkJSON(t, ops, tt.want)
		})
	}

	iface := Interface{UUID: uuid2, Name: "p1", MTURequest: 9000}
	checkJSON(t, interfaceUpdates(iface, PortSpec{Name: "p1"}),
		`[{"op":"update","table":"Interface","where":[["_uuid","==",["uuid","`+uuid2+`"]]],
		   "row":{"mtu_request":["set",[]]}}]`)
}

// The transact request as it goes on the wire: the database name, then the
// operations (RFC 7047 4.1.3).
func TestTransactParamsJSON(t *testing.T) {
	ops := []Operation{
		Insert("Interface", Row{"name": "vx0", "type": "vxlan", "options": MapOf(map[string]string{"remote_ip": "10.0.0.2", "key": "flow"})}, "iface"),
		Insert("Port", Row{"name": "vx0", "interfaces": NamedUUID("iface")}, "port"),
		Mutate("Bridge", []Mutation{InsertInto("ports", NamedUUID("port"))}, Eq("_uuid", UUID(uuid1))),
	}
	params := []any{VswitchDB}
	for _, op := range ops {
		params = append(params, op)
	}
	got, err := json.Marshal(map[string]any{"method": "transact", "params": params, "id": 1})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"method":"transact","id":1,"params":["Open_vSwitch",
		{"op":"insert","table":"Interface","uuid-name":"iface",
		 "row":{"name":"vx0","type":"vxlan","options":["map",[["key","flow"],["remote_ip","10.0.0.2"]]]}},
		{"op":"insert","table":"Port","uuid-name":"port","row":{"name":"vx0","interfaces":["named-uuid","iface"]}},
		{"op":"mutate","table":"Bridge","where":[["_uuid","==",["uuid","` + uuid1 + `"]]],
		 "mutations":[["ports","insert",["named-uuid","port"]]]}]}`
	if !sameJSON(t, got, []byte(want)) {
		t.Errorf("transact request\n got %s\nwant %s", got, want)
	}
}
