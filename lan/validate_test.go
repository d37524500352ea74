package lan

import (
	"strings"
	"testing"
)

// Each refusal is typed invalid and names what was wrong.
func TestValidateRefusals(t *testing.T) {
	for _, tt := range []struct {
		what string
		err  error
		want string // "" = accepted
	}{
		{"nic eth0", ValidNIC("eth0"), ""},
		{"nic template", ValidNIC("eth%d"), `interface name "eth%d": no '/', ':', '%', spaces or non-ASCII`},
		{"nic slash", ValidNIC("a/b"), `interface name "a/b"`},
		{"nic NUL", ValidNIC("a\x00"), `interface name "a\x00"`},
		{"nic 16 bytes", ValidNIC("sixteen-bytes-xx"), `interface name "sixteen-bytes-xx": want 1-15 bytes`},
		{"netns name", ValidNetns("ns1"), ""},
		{"netns proc", ValidNetns("/proc/42/ns/net"), ""},
		{"netns passwd", ValidNetns("/etc/passwd"), `netns "/etc/passwd": want NAME, /run/netns/NAME or /proc/PID/ns/net`},
		{"netns climbs out", ValidNetns("/run/netns/../../etc/shadow"), `netns "/run/netns/../../etc/shadow"`},
		{"netns self", ValidNetns("/proc/self/ns/net"), `netns "/proc/self/ns/net"`},
		{"mac ok", ValidMAC("02:00:00:00:00:01"), ""},
		{"mac none", ValidMAC(""), ""},
		{"mac zero", ValidMAC("00:00:00:00:00:00"), `mac "00:00:00:00:00:00": want a unicast Ethernet address`},
		{"mac broadcast", ValidMAC("ff:ff:ff:ff:ff:ff"), `mac "ff:ff:ff:ff:ff:ff"`},
		{"mac EUI-64", ValidMAC("02:00:00:00:00:00:00:01"), `mac "02:00:00:00:00:00:00:01"`},
		{"ports ok", ValidPorts(PortForwards{"8080": 80, "127.0.0.1:53/udp": 53}), ""},
		{"ports same host port", ValidPorts(PortForwards{"80": 80, "80/tcp": 81}), `port forwards "80" and "80/tcp" both name host port 80/tcp`},
		{"ports member port", ValidPorts(PortForwards{"80": 65536}), `port forward "80": member port 65536: want 1-65535`},
		{"ports protocol", ValidPorts(PortForwards{"80/sctp": 80}), `protocol "sctp"`},
	} {
		got := ""
		if tt.err != nil {
			got = tt.err.Error()
			if CodeOf(tt.err) != Invalid {
				t.Errorf("%s: code %q, want invalid", tt.what, CodeOf(tt.err))
			}
		}
		if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
			t.Errorf("%s: got %q, want %q", tt.what, got, tt.want)
		}
	}
}

// A LAN's cidr must be one the kernel routes as an ordinary subnet.
func TestCheckAddressingRanges(t *testing.T) {
	for _, tt := range []struct{ cidr, want string }{
		{"10.10.0.0/24", ""},
		{"10.0.0.0/8", ""},
		{"169.254.10.0/24", ""},
		{"0.0.0.0/0", `cidr "0.0.0.0/0": too large for a LAN (at least /8)`},
		{"8.0.0.0/7", `too large`},
		{"0.1.0.0/16", `inside 0.0.0.0/8, "this network"`},
		{"127.0.0.0/8", `cidr "127.0.0.0/8": inside 127.0.0.0/8, loopback`},
		{"127.1.2.0/24", "loopback"},
		{"224.0.0.0/24", "multicast"},
		{"239.255.0.0/16", "multicast"},
		{"255.255.255.0/24", "reserved"},
	} {
		_, err := checkAddressing(IPSettings{CIDR: tt.cidr})
		got := ""
		if err != nil {
			got = err.Error()
		}
		if tt.want == "" && got != "" || tt.want != "" && (!strings.Contains(got, tt.want) || CodeOf(err) != Invalid) {
			t.Errorf("cidr %s: got %q (%s), want %q", tt.cidr, got, CodeOf(err), tt.want)
		}
	}
}
