package cmdline

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics, that what it returns is
// within the documented ranges, and that Format and JSON always work: the
// kernel command line is untrusted input read by an init-time process.
func FuzzParse(f *testing.F) {
	for _, seed := range []struct{ kernel, file string }{
		{"", ""},
		{fullKernel, ""},
		{"ip=dhcp", "ip=eth0:dhcp\n"},
		{"ip=10.0.0.1:::banana::eth0:none", "# c\nnameserver=1.1.1.1 # x\n"},
		{"ip=[2001:db8::10]:[2001:db8::1]:[2001:db8::1]:64::eth0:none", ""},
		{"ip=[fd00::2]/64::[fd00::1]:::eth0:none:[fd00::53]:[fd00::54]", ""},
		{"ip=192.168.10.10::192.168.10.1:255.255.255.0:host:enp1s0:none:1500:52:54:00:12:34:56", ""},
		{"ip=eth0:dhcp::52:54:00:12:34:56 ip=dhcp,1,node-7", ""},
		{`foo="a b" nodenet.uplinks="eth0, eth1" "nameserver=10.0.0.53"`, ""},
		{"ifname=lan0:52:54:00:12:34:56 nodenet.mtu=eth0:9000,eth1:x", "nodenet.dhcp_timeout=2.5\nnodenet.debug\n"},
		{"ip=[fd00::2:::64::eth0:none ip=240.0.0.5 ip=10.0.0.5:10.0.0.1/30:::::none", "ip=\"unterminated\n"},
		{"nameserver=fe80::1%eth0 ip=[::ffff:10.0.0.1]:::[ffff:ffff::]", "ip = off\r\n"},
		// Found by fuzzing: a zone that is not UTF-8 did not survive JSON.
		{"nameserver=::%\x92", "0"},
	} {
		f.Add(seed.kernel, seed.file)
	}
	f.Fuzz(func(t *testing.T, kernel, file string) {
		c := Parse(kernel, file)
		checkInvariants(t, c)

		out := c.Format()
		if !strings.HasSuffix(out, "\n") {
			t.Fatalf("Format does not end in a newline: %q", out)
		}
		for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
			if line == "" || strings.ContainsFunc(line, func(r rune) bool { return r != ' ' && !strconv.IsPrint(r) }) {
				t.Fatalf("Format line %q is empty or has unprintable characters", line)
			}
		}

		b, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("json.Marshal: %v", err)
		}
		var back Config
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("json.Unmarshal(%s): %v", b, err)
		}
		if !reflect.DeepEqual(back, c) {
			t.Fatalf("JSON round trip differs:\n%s", diff(render(c), render(back)))
		}
	})
}

func checkInvariants(t *testing.T, c Config) {
	t.Helper()
	for _, e := range c.IP {
		if _, ok := autoconfWords[string(e.Method)]; !ok {
			t.Fatalf("method %q not normalised", e.Method)
		}
		if e.Interface != "" && checkIfname(e.Interface) != nil {
			t.Fatalf("bad interface %q accepted", e.Interface)
		}
		if e.Client.IsValid() && (e.Client.Bits() <= 0 || e.Client.Addr().Zone() != "") {
			t.Fatalf("client %v has no usable prefix", e.Client)
		}
		if e.MTU != 0 && (e.MTU < 68 || e.MTU > 65535) || e.MAC != nil && len(e.MAC) != 6 {
			t.Fatalf("entry %+v out of range", e)
		}
		if e.Interface == "" && e.off() && !c.DHCPOff {
			t.Fatalf("ip=off without DHCPOff")
		}
	}
	for nic, m := range c.MTU {
		if checkIfname(nic) != nil || m < 68 || m > 65535 {
			t.Fatalf("mtu %s=%d accepted", nic, m)
		}
	}
	for _, w := range c.Warnings {
		if strings.Contains(w, "\n") {
			t.Fatalf("warning spans lines: %q", w)
		}
	}
	if c.DHCPTimeout < 0 || c.DHCPTimeout > 3600e9 {
		t.Fatalf("dhcp timeout %v out of range", c.DHCPTimeout)
	}
}
