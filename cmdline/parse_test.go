package cmdline

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, kernel, file string
		want               Config
	}{
		{name: "empty", want: Config{}},
		{
			name:   "foreign flags are ignored",
			kernel: "BOOT_IMAGE=/vmlinuz-6.1 root=/dev/nfs nfsroot=10.0.0.1:/srv,v3 console=ttyS0,115200 quiet -- init-arg\n",
			want:   Config{},
		},
		{
			name:   "quoting",
			kernel: `foo="a b" nodenet.uplinks="eth0, eth1" "nameserver=10.0.0.53"	ip="eth2:dhcp"`,
			want: Config{
				IP:          []IPConfig{{Interface: "eth2", Method: AutoDHCP}},
				Nameservers: addrs("10.0.0.53"),
				Uplinks:     []string{"eth0", "eth1"},
			},
		},
		{
			name:   "nameservers",
			kernel: "nameserver=10.0.0.53 nameserver=[2001:db8::53] nameserver=2001:db8::54 nameserver=fe80::1%eth0",
			want:   Config{Nameservers: addrs("10.0.0.53", "2001:db8::53", "2001:db8::54", "fe80::1%eth0")},
		},
		{
			name:   "renames",
			kernel: "ifname=lan0:52:54:00:12:34:56 ifname=lan1:52-54-00-AB-CD-EF ifname=lan0:52:54:00:12:34:56",
			want: Config{Renames: []Rename{
				{Name: "lan0", MAC: mac("52:54:00:12:34:56")},
				{Name: "lan1", MAC: mac("52:54:00:ab:cd:ef")},
			}},
		},
		{
			name:   "uplinks and ignore accumulate",
			kernel: "nodenet.uplinks=eth0,52:54:00:AB:CD:EF, nodenet.uplinks=eth1,eth0 nodenet.ignore=5254.00ab.cd01 nodenet.ignore=wlan0",
			want: Config{
				Uplinks: []string{"eth0", "52:54:00:ab:cd:ef", "eth1"},
				Ignore:  []string{"52:54:00:ab:cd:01", "wlan0"},
			},
		},
		{
			name:   "mtu, later wins",
			kernel: "nodenet.mtu=eth0:9000,eth1:1500 nodenet.mtu=eth0:1400",
			want:   Config{MTU: map[string]int{"eth0": 1400, "eth1": 1500}},
		},
		{
			name:   "datapath, timeout, debug",
			kernel: "nodenet.datapath=netdev nodenet.dhcp-timeout=2.5 nodenet.debug",
			want:   Config{Datapath: "netdev", DHCPTimeout: 2500 * time.Millisecond, Debug: true},
		},
		{
			name:   "underscore spelling and debug off",
			kernel: "nodenet.dhcp_timeout=30 nodenet.debug=1 nodenet.debug=off",
			want:   Config{DHCPTimeout: 30 * time.Second},
		},
		{name: "lan lease", kernel: "nodenet.lan_lease=600", want: Config{LANLease: 10 * time.Minute}},
		{name: "debug=yes", kernel: "nodenet.debug=YES", want: Config{Debug: true}},
		{name: "debug=", kernel: "nodenet.debug=", want: Config{Debug: true}},
		{
			name: "file only",
			file: "# nodenet.conf\n\nip=eth0:dhcp\r\n  nameserver = 10.0.0.53   # office resolver\nnodenet.uplinks=\"eth0,eth1\"\nnodenet.debug\n",
			want: Config{
				IP:          []IPConfig{{Interface: "eth0", Method: AutoDHCP}},
				Nameservers: addrs("10.0.0.53"),
				Uplinks:     []string{"eth0", "eth1"},
				Debug:       true,
			},
		},
		{
			name:   "kernel wins per key",
			kernel: "ip=eth0:dhcp nodenet.debug=0 nodenet.uplinks=eth9",
			file:   "ip=eth1:dhcp\nip=off\nnameserver=10.0.0.53\nnodenet.debug\nnodenet.uplinks=eth1\nnodenet.ignore=eth2\n",
			want: Config{
				IP:          []IPConfig{{Interface: "eth0", Method: AutoDHCP}},
				Nameservers: addrs("10.0.0.53"),
				Uplinks:     []string{"eth9"},
				Ignore:      []string{"eth2"},
			},
		},
		{
			name:   "a malformed kernel value still shadows the file",
			kernel: "ip=banana",
			file:   "ip=eth0:dhcp\n",
			want:   Config{Warnings: []string{`ip=banana: unknown autoconf method "banana"`}},
		},
		{
			name:   "nfsaddrs is ip and shadows it",
			kernel: "nfsaddrs=eth0:dhcp",
			file:   "ip=eth1:dhcp",
			want:   Config{IP: []IPConfig{{Interface: "eth0", Method: AutoDHCP}}},
		},
		{
			name: "file warnings name their line",
			file: "nodenet.datapath=kernel\n\n  # comment\nnameserver=banana\nnodenet.mtu=eth0:9000,eth1:x\n",
			want: Config{
				MTU: map[string]int{"eth0": 9000},
				Warnings: []string{
					`config line 1: nodenet.datapath=kernel: unknown datapath "kernel": want system or netdev`,
					`config line 4: nameserver=banana: bad nameserver address "banana"`,
					`config line 5: nodenet.mtu=eth0:9000,eth1:x: eth1: bad MTU "x"`,
				},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkEqual(t, "config", Parse(tc.kernel, tc.file), tc.want)
		})
	}
}

// Malformed values of the other keys: one warning each, the rest applied.
func TestParseKeyWarnings(t *testing.T) {
	for _, tc := range []struct {
		flag string
		want string // warning
		rest Config // what is still applied
	}{
		{"nameserver=banana", `nameserver=banana: bad nameserver address "banana"`, Config{}},
		{"nameserver=fe80::1%eth/0", `nameserver=fe80::1%eth/0: bad nameserver address "fe80::1%eth/0"`, Config{}},
		{"nameserver=::%eth0", `nameserver=::%eth0: bad nameserver address "::%eth0"`, Config{}},
		{"nameserver=0.0.0.0", `nameserver=0.0.0.0: bad nameserver address "0.0.0.0"`, Config{}},
		{"nameserver", `nameserver: missing value`, Config{}},
		{"ifname=lan0", `ifname=lan0: want <name>:<mac>, got "lan0"`, Config{}},
		{"ifname=toolonginterface0:52:54:00:12:34:56", `ifname=toolonginterface0:52:54:00:12:34:56: bad interface name "toolonginterface0": longer than 15 bytes`, Config{}},
		{"ifname=lan0:52:54:00:12:34", `ifname=lan0:52:54:00:12:34: bad MAC address "52:54:00:12:34"`, Config{}},
		{"nodenet.uplinks=eth0,52:54:00:zz:00:01,eth1", `nodenet.uplinks=eth0,52:54:00:zz:00:01,eth1: bad MAC address "52:54:00:zz:00:01"`,
			Config{Uplinks: []string{"eth0", "eth1"}}},
		{"nodenet.ignore=waytoolonginterface", `nodenet.ignore=waytoolonginterface: bad interface name "waytoolonginterface": longer than 15 bytes`, Config{}},
		{"nodenet.mtu=eth0:40", `nodenet.mtu=eth0:40: eth0: bad MTU "40": want 68..65535`, Config{}},
		{"nodenet.mtu=eth0", `nodenet.mtu=eth0: want <nic>:<mtu>, got "eth0"`, Config{}},
		{"nodenet.datapath=kernel", `nodenet.datapath=kernel: unknown datapath "kernel": want system or netdev`, Config{}},
		{"nodenet.dhcp-timeout=0", `nodenet.dhcp-timeout=0: bad number of seconds "0": want more than 0, at most 3600`, Config{}},
		{"nodenet.dhcp-timeout=3601", `nodenet.dhcp-timeout=3601: bad number of seconds "3601": want more than 0, at most 3600`, Config{}},
		{"nodenet.dhcp-timeout=-1", `nodenet.dhcp-timeout=-1: bad number of seconds "-1"`, Config{}},
		{"nodenet.dhcp-timeout=1e3", `nodenet.dhcp-timeout=1e3: bad number of seconds "1e3"`, Config{}},
		{"nodenet.dhcp-timeout=5s", `nodenet.dhcp-timeout=5s: bad number of seconds "5s"`, Config{}},
		{"nodenet.lan-lease=9", `nodenet.lan-lease=9: bad number of seconds "9": want a whole number from 10 to 604800`, Config{}},
		{"nodenet.lan-lease=604801", `nodenet.lan-lease=604801: bad number of seconds "604801": want a whole number from 10 to 604800`, Config{}},
		{"nodenet.lan-lease=1.5", `nodenet.lan-lease=1.5: bad number of seconds "1.5": want a whole number from 10 to 604800`, Config{}},
		{"nodenet.debug=maybe", `nodenet.debug=maybe: bad boolean "maybe": want 1/true/yes/on or 0/false/no/off`, Config{}},
		{"nodenet.uplink=eth0", `nodenet.uplink=eth0: unknown nodenet flag`, Config{}},
		{"ip=eth\xff:dhcp", `"ip=eth\xff:dhcp": bad interface name "eth\xff": contains byte 0xff`, Config{}},
		{`ip="eth0:dhcp x"`, `"ip=eth0:dhcp x": unknown autoconf method "dhcp x"`, Config{}},
	} {
		got := Parse(tc.flag, "")
		want := tc.rest
		want.Warnings = []string{tc.want}
		checkEqual(t, tc.flag, got, want)
	}
}

func TestParseFiles(t *testing.T) {
	dir := t.TempDir()
	cmdline := filepath.Join(dir, "cmdline")
	conf := filepath.Join(dir, "nodenet.conf")
	if err := os.WriteFile(cmdline, []byte("quiet ip=eth0:dhcp\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	c, err := ParseFiles(cmdline, conf) // no config file: fine
	if err != nil {
		t.Fatalf("missing config: %v", err)
	}
	checkEqual(t, "missing config", c, Config{IP: []IPConfig{{Interface: "eth0", Method: AutoDHCP}}})

	if err := os.WriteFile(conf, []byte("nodenet.debug\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err = ParseFiles(cmdline, conf)
	if err != nil {
		t.Fatal(err)
	}
	checkEqual(t, "with config", c, Config{IP: []IPConfig{{Interface: "eth0", Method: AutoDHCP}}, Debug: true})

	c, err = ParseFiles(cmdline, dir) // a directory is reported, not fatal
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "not a regular file") {
		t.Errorf("config is a directory: warnings %q", c.Warnings)
	}

	if _, err := ParseFiles(filepath.Join(dir, "nope"), conf); err == nil {
		t.Errorf("missing cmdline: no error")
	}
}
