package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"testing"

	"nodenet/lan"
)

func TestParseArgsInterspersed(t *testing.T) {
	for _, tt := range []struct {
		args     []string
		wantPos  string
		wantFlag string
		wantErr  string
	}{
		{[]string{"a", "--json", "b"}, "[a b]", "json=true name=", ""},
		{[]string{"--name", "x", "a"}, "[a]", "json=false name=x", ""},
		{[]string{"a", "--name", "--json"}, "[a]", "json=false name=--json", ""}, // a value is a value
		{[]string{"a", "-name=x", "b", "-json=false"}, "[a b]", "json=false name=x", ""},
		{[]string{"a", "--", "--json", "-"}, "[a --json -]", "json=false name=", ""},
		{[]string{"-", "a"}, "[- a]", "json=false name=", ""},
		{[]string{"a", "--bogus"}, "", "", "flag provided but not defined: -bogus"},
		{[]string{"a", "--name"}, "", "", "flag needs an argument: -name"},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		asJSON := fs.Bool("json", false, "")
		name := fs.String("name", "", "")
		pos, err := parseArgs(fs, tt.args)
		if tt.wantErr != "" {
			var ue usageError
			if !errors.As(err, &ue) || !ue.printed || err.Error() != tt.wantErr {
				t.Errorf("%q: got %v, want usage error %q", tt.args, err, tt.wantErr)
			}
			continue
		}
		gotFlag := fmt.Sprintf("json=%v name=%s", *asJSON, *name)
		if err != nil || fmt.Sprint(pos) != tt.wantPos || gotFlag != tt.wantFlag {
			t.Errorf("%q: got %v %s %v, want %s %s", tt.args, pos, gotFlag, err, tt.wantPos, tt.wantFlag)
		}
	}
}

func TestParsePortForward(t *testing.T) {
	for _, tt := range []struct {
		in, key string
		port    uint32
		err     string
	}{
		{"8080=80", "8080", 80, ""},
		{"127.0.0.1:8080/udp=53", "127.0.0.1:8080/udp", 53, ""},
		{"0.0.0.0:443/tcp=8443", "0.0.0.0:443/tcp", 8443, ""},
		{"[::1]:53/udp=53", "[::1]:53/udp", 53, ""},
		{"08080=080", "8080", 80, ""}, // normalized, so it cannot be given twice under two spellings
		{"8080", "", 0, "want [HOSTIP:]HOSTPORT[/tcp|/udp]=PORT, such as 8080=80 or 127.0.0.1:5353/udp=53"},
		{"=80", "", 0, "want [HOSTIP:]HOSTPORT[/tcp|/udp]=PORT, such as 8080=80 or 127.0.0.1:5353/udp=53"},
		{"8080=", "", 0, "want [HOSTIP:]HOSTPORT[/tcp|/udp]=PORT, such as 8080=80 or 127.0.0.1:5353/udp=53"},
		{"8080=80=1", "", 0, `member port "80=1": want 1-65535`},
		{"8080=0", "", 0, `member port "0": want 1-65535`},
		{"8080=65536", "", 0, `member port "65536": want 1-65535`},
		{"70000=80", "", 0, `host port "70000": want 1-65535`},
		{"http=80", "", 0, `host port "http": want 1-65535`},
		{"8080/sctp=80", "", 0, `protocol "sctp": want tcp or udp`},
		{"1.2.3:80=80", "", 0, `host "1.2.3:80": want IP:PORT, IPv6 in brackets`},
		{"::1:53=53", "", 0, `host "::1:53": want IP:PORT, IPv6 in brackets`},
		{"127.0.0.1:0=80", "", 0, `host "127.0.0.1:0": want IP:PORT, IPv6 in brackets`},
	} {
		key, port, err := parsePortForward(tt.in)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if key != tt.key || port != tt.port || got != tt.err {
			t.Errorf("%q: got %q %d %q, want %q %d %q", tt.in, key, port, got, tt.key, tt.port, tt.err)
		}
	}
}

func TestParseJoin(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string // joinCmd as %+v, or the error
	}{
		{[]string{"lan1"}, "{socket:S network:lan1 nic: opts:{Netns: Ifname: Kind: MAC:} ports:map[] json:false}"},
		{[]string{"lan1", "m1", "--netns", "a", "--tap", "-p", "8080=80", "--json", "-p=127.0.0.1:53/udp=53", "--ifname", "eth0", "--mac", "02:00:00:00:00:01"},
			"{socket:S network:lan1 nic:m1 opts:{Netns:a Ifname:eth0 Kind:tap MAC:02:00:00:00:00:01} ports:map[127.0.0.1:53/udp:53 8080:80] json:true}"},
		{[]string{"--netns", "a", "lan1", "--socket", "/x.sock", "m1"}, "{socket:/x.sock network:lan1 nic:m1 opts:{Netns:a Ifname: Kind: MAC:} ports:map[] json:false}"},
		{[]string{}, "join: want NETWORK [NIC], got 0 arguments"},
		{[]string{"lan1", "m1", "extra"}, "join: want NETWORK [NIC], got 3 arguments"},
		{[]string{"lan1", "-p", "80"}, `invalid value "80" for flag -p: want [HOSTIP:]HOSTPORT[/tcp|/udp]=PORT, such as 8080=80 or 127.0.0.1:5353/udp=53`},
		{[]string{"lan1", "-p", "80=1", "-p", "80=2"}, `invalid value "80=2" for flag -p: 80 is forwarded twice`},
		{[]string{"lan1", "--netns"}, "flag needs an argument: -netns"},
	} {
		c, err := parseJoin(tt.args, "S", io.Discard)
		got := fmt.Sprintf("%+v", c)
		if err != nil {
			got = err.Error()
			var ue usageError
			if !errors.As(err, &ue) {
				t.Errorf("%q: %v is not a usage error", tt.args, err)
			}
		}
		if got != tt.want {
			t.Errorf("%q:\n got %s\nwant %s", tt.args, got, tt.want)
		}
	}
}

func TestParseCreate(t *testing.T) {
	no := false
	for _, tt := range []struct {
		args []string
		want lan.Settings
		err  string
	}{
		{[]string{"lan1", "--type", "bridge", "--cidr", "10.10.0.0/24", "--gateway", "10.10.0.1", "--dhcp", "--dns", "10.10.0.1,1.1.1.1", "--mtu", "1400"},
			lan.Settings{Name: "lan1", Type: lan.Bridge, MTU: 1400, Network: lan.IPSettings{DHCP: true, CIDR: "10.10.0.0/24", Gateway: "10.10.0.1", DNS: []string{"10.10.0.1", "1.1.1.1"}}}, ""},
		{[]string{"--type=bridge", "--no-nat", "lan1"}, lan.Settings{Name: "lan1", Type: lan.Bridge, NAT: &no}, ""},
		{[]string{"v", "--type", "vlan", "--vlan", "10", "--parent", "eth0"}, lan.Settings{Name: "v", Type: lan.VLan, VLan: &lan.VLanSettings{ID: 10, Parent: "eth0"}}, ""},
		{[]string{"x", "--type", "vxlan", "--vni", "100", "--remote", "192.0.2.2", "--remote", "192.0.2.3,192.0.2.4"},
			lan.Settings{Name: "x", Type: lan.VXLan, VXLan: &lan.VXLanSettings{VNI: 100, Remotes: []string{"192.0.2.2", "192.0.2.3", "192.0.2.4"}}}, ""},
		{[]string{"m", "--type", "macvlan", "--parent", "eth0", "--mode", "bridge"}, lan.Settings{Name: "m", Type: lan.MacVLan, MacVLan: &lan.MacVLanSettings{Parent: "eth0", Mode: "bridge"}}, ""},
		{[]string{"p", "--type", "passthrough", "--nic", "eth2"}, lan.Settings{Name: "p", Type: lan.PassThrough, PassThrough: &lan.PassThroughSetting{NIC: "eth2"}}, ""},
		{[]string{"z", "--type", "zerotier", "--zt-network", "8056c2e21c000001"}, lan.Settings{Name: "z", Type: lan.Zerotier, Zerotier: &lan.ZerotierSettings{NetworkID: "8056c2e21c000001"}}, ""},
		{[]string{"lan1"}, lan.Settings{}, "network create: --type is required (bridge, vlan, vxlan, macvlan, passthrough or zerotier)"},
		{[]string{"lan1", "--type", "ring"}, lan.Settings{}, `network create: --type: network type "ring": want bridge, vlan, vxlan, macvlan, passthrough or zerotier`},
		{[]string{"--type", "bridge"}, lan.Settings{}, "network create: want one NAME, got 0 arguments"},
		{[]string{"a", "b", "--type", "bridge"}, lan.Settings{}, "network create: want one NAME, got 2 arguments"},
		{[]string{"lan1", "--type", "bridge", "--vlan", "10"}, lan.Settings{}, "network create: --vlan is for --type vlan, not bridge"},
		{[]string{"lan1", "--type", "bridge", "--parent", "eth0"}, lan.Settings{}, "network create: --parent is for --type macvlan, vlan or vxlan, not bridge"},
		{[]string{"lan1", "--type", "vlan", "--mode", "vepa"}, lan.Settings{}, "network create: --mode is for --type macvlan, not vlan"},
		{[]string{"lan1", "--type", "bridge", "--mtu", "big"}, lan.Settings{}, `invalid value "big" for flag -mtu: parse error`},
	} {
		c, err := parseCreate(tt.args, "S", io.Discard)
		got := ""
		if err != nil {
			got = err.Error()
		}
		// Compared as the daemon receives them.
		gotJSON, _ := json.Marshal(c.settings)
		wantJSON, _ := json.Marshal(tt.want)
		if got != tt.err || (err == nil && string(gotJSON) != string(wantJSON)) {
			t.Errorf("%q:\n got %s %q\nwant %s %q", tt.args, gotJSON, got, wantJSON, tt.err)
		}
	}
}

func TestParseNetworkCmd(t *testing.T) {
	for _, tt := range []struct {
		verb string
		args []string
		want string
	}{
		{"ls", nil, "{socket:S name: json:false}"},
		{"ls", []string{"--json"}, "{socket:S name: json:true}"},
		{"show", []string{"lan1", "--json"}, "{socket:S name:lan1 json:true}"},
		{"rm", []string{"--socket", "/s", "lan1"}, "{socket:/s name:lan1 json:false}"},
		{"ls", []string{"lan1"}, "network ls: takes no arguments, got lan1"},
		{"show", nil, "network show: want one NAME, got 0 arguments"},
		{"rm", []string{"a", "b"}, "network rm: want one NAME, got 2 arguments"},
	} {
		c, err := parseNetworkCmd(tt.verb, tt.args, "S", io.Discard)
		got := fmt.Sprintf("%+v", c)
		if err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("%s %q: got %s, want %s", tt.verb, tt.args, got, tt.want)
		}
	}
}
