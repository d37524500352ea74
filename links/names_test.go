package links

import (
	"fmt"
	"strings"
	"testing"
)

func TestName(t *testing.T) {
	// Golden: a name must never change between releases, or a restarted
	// daemon would not find the links its predecessor made.
	if got, want := Name("nnv", "lan1", "web"), "nnv6e4c5cd77c06"; got != want {
		t.Errorf(`Name("nnv", "lan1", "web") = %q, want %q`, got, want)
	}
	seen := map[string]string{}
	for _, prefix := range []string{"", "n", "nnv", "nntp"} {
		for i := range 2000 {
			parts := []string{"lan", fmt.Sprint(i)}
			got := Name(prefix, parts...)
			if err := ValidIfname(got); err != nil {
				t.Fatalf("Name(%q, %q) = %q: %v", prefix, parts, got, err)
			}
			if len(got) != MaxIfname || !strings.HasPrefix(got, prefix) {
				t.Fatalf("Name(%q, %q) = %q, want %d bytes starting with the prefix", prefix, parts, got, MaxIfname)
			}
			if again := Name(prefix, parts...); again != got {
				t.Fatalf("Name(%q, %q) not stable: %q then %q", prefix, parts, got, again)
			}
			if prev, dup := seen[got]; dup {
				t.Fatalf("Name(%q, %q) = %q, same as for %s", prefix, parts, got, prev)
			}
			seen[got] = fmt.Sprint(prefix, parts)
		}
	}
	// Parts are length-framed, not concatenated.
	if Name("nnv", "a", "bc") == Name("nnv", "ab", "c") || Name("nnv", "ab") == Name("nnv", "a", "b") {
		t.Error("Name does not tell the parts apart")
	}
}

func TestNameBadPrefixPanics(t *testing.T) {
	for _, prefix := range []string{"nnvxx", "a/b", "a:", "a b", "a%"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Name(%q) did not panic", prefix)
				}
			}()
			Name(prefix, "x")
		}()
	}
}

func TestMAC(t *testing.T) {
	if got, want := MAC("lan1", "web").String(), "1e:1b:d6:0d:37:61"; got != want {
		t.Errorf(`MAC("lan1", "web") = %s, want %s`, got, want)
	}
	seen := map[string]int{}
	for i := range 5000 {
		mac := MAC("lan1", fmt.Sprint(i))
		if len(mac) != 6 || mac[0]&0x01 != 0 || mac[0]&0x02 == 0 {
			t.Fatalf("MAC %d = %s: want 6 bytes, unicast, locally administered", i, mac)
		}
		if err := validMAC(mac); err != nil {
			t.Fatalf("MAC %d = %s: %v", i, mac, err)
		}
		if prev, dup := seen[mac.String()]; dup {
			t.Fatalf("MAC %d = MAC %d = %s", i, prev, mac)
		}
		seen[mac.String()] = i
		if MAC("lan1", fmt.Sprint(i)).String() != mac.String() {
			t.Fatalf("MAC %d not stable", i)
		}
	}
	if MAC("a", "bc").String() == MAC("ab", "c").String() {
		t.Error("MAC does not tell the parts apart")
	}
}

func TestValidIfname(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"eth0", true},
		{"a", true},
		{"nnv0123456789ab", true}, // 15 bytes
		{"eth0.10", true},
		{"br-lan_1", true},
		{"123", true},
		{"", false},
		{"nnv0123456789abc", false}, // 16 bytes
		{".", false},
		{"..", false},
		{"...", true},
		{"a/b", false},
		{"eth0:1", false},
		{"a b", false},
		{"a\tb", false},
		{"a\nb", false},
		{"a\vb", false},
		{"a\fb", false},
		{"a\rb", false},
		{"a\xa0b", false}, // the kernel's isspace includes NBSP
		{"eth%d", false},
		{"a\x00b", false},
	} {
		err := ValidIfname(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("ValidIfname(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestValidMAC(t *testing.T) {
	for _, tc := range []struct {
		mac string
		ok  bool
	}{
		{"", true}, // nil: the kernel picks
		{"02:00:00:00:00:01", true},
		{"00:16:3e:00:00:01", true},
		{"01:00:5e:00:00:01", false},
		{"ff:ff:ff:ff:ff:ff", false},
		{"00:00:00:00:00:00", false},
		{"02:00:00:00:00:00:00:01", false},
	} {
		err := validMAC(parseMAC(tc.mac))
		if (err == nil) != tc.ok {
			t.Errorf("validMAC(%s) = %v, want ok=%v", tc.mac, err, tc.ok)
		}
	}
}

// FuzzValidIfname: whatever an API caller sends as an interface name,
// what passes is something the kernel takes as one name.
func FuzzValidIfname(f *testing.F) {
	for _, s := range []string{"eth0", "", ".", "..", "a/b", "eth%d", "a\xa0b", "nnv0123456789abc"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidIfname(s) != nil {
			return
		}
		if len(s) < 1 || len(s) > MaxIfname || s == "." || s == ".." {
			t.Errorf("ValidIfname(%q) accepted it", s)
		}
		for _, c := range []byte(s) { // bytes: ContainsAny would compare runes
			if strings.IndexByte("/:% \t\n\v\f\r\x00\xa0", c) >= 0 {
				t.Errorf("ValidIfname(%q) accepted byte %q", s, c)
			}
		}
	})
}
