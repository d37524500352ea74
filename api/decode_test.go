package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"nodenet/lan"
)

// The Settings of DESIGN.md decode whole; only type and name are required.
func TestDecodeSettings(t *testing.T) {
	design := `{"name": "lan1", "type": "bridge",
 "network": {"dhcp": true, "cidr": "10.10.0.0/24", "gateway": "10.10.0.1", "dns": ["10.10.0.1"]},
 "nat": true, "mtu": 0,
 "vlan": {"id": 10, "parent": "eth0"},
 "vxlan": {"vni": 100, "remotes": ["192.0.2.2"], "port": 4789, "parent": "eth0"},
 "macvlan": {"parent": "eth0", "mode": "bridge"},
 "passthrough": {"nic": "eth2"},
 "zerotier": {"network_id": "8056c2e21c000001"}}
`
	for _, tt := range []struct{ body, want string }{
		{design, `{"name":"lan1","type":"bridge","network":{"dhcp":true,"cidr":"10.10.0.0/24","gateway":"10.10.0.1","dns":["10.10.0.1"]},"nat":true,"vlan":{"id":10,"parent":"eth0"},"vxlan":{"vni":100,"remotes":["192.0.2.2"],"port":4789,"parent":"eth0"},"macvlan":{"parent":"eth0","mode":"bridge"},"passthrough":{"nic":"eth2"},"zerotier":{"network_id":"8056c2e21c000001"}}`},
		{`{"name":"v","type":"vlan","vlan":{"id":7,"parent":"eth0"},"nat":false}`, `{"name":"v","type":"vlan","network":{"dhcp":false},"nat":false,"vlan":{"id":7,"parent":"eth0"}}`},
		{" \n{\"type\":\"passthrough\",\"name\":\"p\"}\n\n", `{"name":"p","type":"passthrough","network":{"dhcp":false}}`},
	} {
		s, err := decodeSettings([]byte(tt.body))
		if err != nil {
			t.Errorf("%s: %v", tt.body, err)
			continue
		}
		got, _ := json.Marshal(s)
		if string(got) != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.body, got, tt.want)
		}
	}
}

func TestDecodeJoin(t *testing.T) {
	for _, tt := range []struct{ body, want string }{
		{`{}`, `{}`},
		{`{"nic":"m1","netns":"/proc/1/ns/net","ifname":"eth0","kind":"tap","mac":"02:00:00:00:00:01","ports":{"127.0.0.1:8080/udp":53}}`,
			`{"nic":"m1","netns":"/proc/1/ns/net","ifname":"eth0","kind":"tap","mac":"02:00:00:00:00:01","ports":{"127.0.0.1:8080/udp":53}}`},
	} {
		req, err := decodeJoin([]byte(tt.body))
		if err != nil {
			t.Errorf("%s: %v", tt.body, err)
			continue
		}
		got, _ := json.Marshal(req)
		if string(got) != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.body, got, tt.want)
		}
	}
}

// FuzzDecodeRequest: the request decoders never panic, refuse only with a
// typed invalid error, and what they accept re-encodes to a body they
// accept again, unchanged.
func FuzzDecodeRequest(f *testing.F) {
	for _, seed := range []string{
		`{"name":"lan1","type":"bridge","network":{"dhcp":true,"cidr":"10.10.0.0/24","gateway":"10.10.0.1","dns":["10.10.0.1"]},"nat":true,"mtu":1500}`,
		`{"name":"v","type":"vxlan","vxlan":{"vni":100,"remotes":["192.0.2.2"],"port":4789}}`,
		`{"name":"z","type":"zerotier","zerotier":{"network_id":"8056c2e21c000001"}}`,
		`{"nic":"m1","netns":"x","ifname":"eth0","kind":"veth","mac":"02:00:00:00:00:01","ports":{"8080":80}}`,
		`{"name":"lan1","type":"bridge"} {}`,
		`{"name":"lan1","type":"bridge","extra":1}`,
		`{"NAME":"a","Type":"macvlan","MacVLan":{"mode":"\u00e9"}}`,
		`{"nic":"\xff"}`, `{"ports":{"":4294967295}}`, `null`, `[]`, ``, `{`, `{"nat":null,"vlan":null}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		roundTrip(t, "settings", body, func(b []byte) (any, error) { return decodeSettings(b) })
		roundTrip(t, "join", body, func(b []byte) (any, error) { return decodeJoin(b) })
	})
}

func roundTrip(t *testing.T, what string, body []byte, decode func([]byte) (any, error)) {
	v, err := decode(body)
	if err != nil {
		var le *lan.Error
		if !errors.As(err, &le) || le.Code != lan.Invalid {
			t.Fatalf("%s %q: untyped refusal %v", what, body, err)
		}
		return
	}
	first, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("%s %q: accepted %+v does not encode: %v", what, body, v, err)
	}
	again, err := decode(first)
	if err != nil {
		t.Fatalf("%s %q: re-encoded %s refused: %v", what, body, first, err)
	}
	second, _ := json.Marshal(again)
	if !bytes.Equal(first, second) {
		t.Fatalf("%s %q: re-encoding changed it:\n%s\n%s", what, body, first, second)
	}
}

// The same key in two objects is fine; twice in one object, in any case
// encoding/json would match, is not.
func TestDuplicateKeys(t *testing.T) {
	for _, tt := range []struct{ body, want string }{
		{`{"a":{"x":1},"b":{"x":1},"c":[{"x":1},{"x":[1,{"x":2}]}],"x":0}`, ""},
		{`{"a":[],"b":{},"c":[[]],"d":"a"}`, ""},
		{`{"a":1,"a":2}`, `key "a" given twice`},
		{`{"name":1,"Name":2}`, `key "Name" given twice`},
		{`{"k":1,"\u212a":2}`, "key \"\u212a\" given twice"}, // Kelvin sign: encoding/json matches it with k
		{`{"a":[{"x":1,"y":{"z":1,"z":2}}]}`, `key "z" given twice`},
		{`{"a":{"b":1},"a":{"b":1}}`, `key "a" given twice`},
	} {
		got := ""
		if err := duplicateKeys([]byte(tt.body)); err != nil {
			got = err.Error()
		}
		if tt.want == "" && got != "" || !strings.Contains(got, tt.want) {
			t.Errorf("%s: got %q, want %q", tt.body, got, tt.want)
		}
	}
}
