package testenv

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// curlZT calls the fake from inside its namespace as a client there
// would, and returns the status code and body.
func curlZT(t *testing.T, f *ZerotierFake, token, method, path string) (int, string) {
	t.Helper()
	out := f.NS.Run(t, "curl", "-s", "-m", "5", "-X", method, "-H", "X-ZT1-Auth: "+token,
		"-w", "\n%{http_code}", fmt.Sprintf("http://127.0.0.1:%d%s", f.Port, path))
	i := strings.LastIndex(out, "\n") // -w puts the code on a line of its own
	var code int
	fmt.Sscan(out[i+1:], &code)
	return code, out[:max(i, 0)]
}

func TestZerotierFake(t *testing.T) {
	Require(t, "curl")
	ns := NewNetns(t)
	f := StartZerotierFake(t, ns)
	const id = "8056c2e21c000001"
	f.SetAddresses(id, "10.147.17.6/24")
	for name, want := range map[string]string{"authtoken.secret": f.Token, "zerotier-one.port": fmt.Sprint(f.Port)} {
		if b, err := os.ReadFile(filepath.Join(f.Home, name)); err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", name, b, err, want)
		}
	}
	if code, body := curlZT(t, f, "wrong", "GET", "/status"); code != 401 || body != "{}" {
		t.Errorf("wrong token: %d %q, want 401 {}", code, body)
	}
	if code, _ := curlZT(t, f, f.Token, "GET", "/network/"+id); code != 404 {
		t.Errorf("GET of a network not joined: %d, want 404", code)
	}
	code, body := curlZT(t, f, f.Token, "POST", "/network/"+id)
	var nw map[string]any
	if err := json.Unmarshal([]byte(body), &nw); code != 200 || err != nil || nw["status"] != "REQUESTING_CONFIGURATION" || nw["id"] != id {
		t.Fatalf("join: %d %s", code, body)
	}
	dev := ZerotierDeviceName(id)
	Eventually(t, 5*time.Second, "network OK", func() error {
		_, body := curlZT(t, f, f.Token, "GET", "/network/"+id)
		if err := json.Unmarshal([]byte(body), &nw); err != nil {
			return err
		}
		if nw["status"] != "OK" || nw["portDeviceName"] != dev {
			return fmt.Errorf("%s", body)
		}
		return nil
	})
	if a, _ := nw["assignedAddresses"].([]any); len(a) != 1 || a[0] != "10.147.17.6/24" {
		t.Errorf("assignedAddresses %v", nw["assignedAddresses"])
	}
	if out := ns.IP(t, "-o", "addr", "show", "dev", dev); !strings.Contains(out, "10.147.17.6/24") {
		t.Errorf("device %s: %s; want the assigned address on it", dev, out)
	}
	if code, body := curlZT(t, f, f.Token, "DELETE", "/network/"+id); code != 200 || body != `{"result":true}` {
		t.Errorf("leave: %d %s", code, body)
	}
	if out := ns.IP(t, "-o", "link", "show"); strings.Contains(out, dev) {
		t.Errorf("device left after the leave: %s", out)
	}
	want := []string{"GET /network/" + id, "POST /network/" + id}
	if got := f.Requests(); len(got) < 3 || got[0] != want[0] || got[1] != want[1] || got[len(got)-1] != "DELETE /network/"+id {
		t.Errorf("requests %q", got)
	}
	f.Stop()
	if out, err := ns.Output("curl", "-s", "-m", "5", fmt.Sprintf("http://127.0.0.1:%d/status", f.Port)); err == nil {
		t.Errorf("stopped fake still answers: %s", out)
	}
}
