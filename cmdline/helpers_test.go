package cmdline

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// checkEqual fails t with a line diff of the JSON renderings when got and
// want differ.
func checkEqual(t *testing.T, what string, got, want any) {
	t.Helper()
	if reflect.DeepEqual(got, want) {
		return
	}
	d := diff(render(want), render(got))
	if d == "" { // same JSON, different Go values (nil vs empty, zones...)
		d = fmt.Sprintf("got  %#v\nwant %#v", got, want)
	}
	t.Errorf("%s: mismatch (-want +got):\n%s", what, d)
}

func render(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Sprintf("%#v (marshal: %v)", v, err)
	}
	return string(b)
}

// diff is a minimal longest-common-subsequence line diff.
func diff(a, b string) string {
	x, y := strings.Split(a, "\n"), strings.Split(b, "\n")
	lcs := make([][]int, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out strings.Builder
	changed := false
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			fmt.Fprintf(&out, "  %s\n", x[i])
			i, j = i+1, j+1
		case i < len(x) && (j == len(y) || lcs[i+1][j] >= lcs[i][j+1]):
			fmt.Fprintf(&out, "- %s\n", x[i])
			i, changed = i+1, true
		default:
			fmt.Fprintf(&out, "+ %s\n", y[j])
			j, changed = j+1, true
		}
	}
	if !changed {
		return ""
	}
	return out.String()
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }
func addrs(s ...string) []netip.Addr {
	var as []netip.Addr
	for _, x := range s {
		as = append(as, addr(x))
	}
	return as
}

// pfx keeps the host bits, as Parse does: "10.0.0.5/24".
func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func mac(s string) MAC {
	m, err := parseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}
