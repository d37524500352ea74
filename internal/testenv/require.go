// Package testenv makes throwaway network namespaces, veth wires and real DHCP peers for nodenet's tests.
package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// IntegrationEnv is the variable that turns a skip into a failure, so CI
// (`make test`) never passes on tests that did not run.
const IntegrationEnv = "NODENET_INTEGRATION"

// Integration reports whether NODENET_INTEGRATION=1 is set.
func Integration() bool { return os.Getenv(IntegrationEnv) == "1" }

// Require skips the test unless it runs as root and every tool (and `ip`)
// is installed; with NODENET_INTEGRATION=1 it fails instead of skipping.
func Require(t testing.TB, tools ...string) {
	t.Helper()
	var reasons, missing []string
	if os.Geteuid() != 0 {
		reasons = append(reasons, "needs root")
	}
	for _, tool := range append([]string{"ip"}, tools...) {
		if _, err := lookTool(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		reasons = append(reasons, "missing "+strings.Join(missing, ", ")+" (make deps installs them)")
	}
	if len(reasons) == 0 {
		return
	}
	reason := strings.Join(reasons, "; ")
	if Integration() {
		t.Fatalf("%s=1 but this test cannot run: %s", IntegrationEnv, reason)
	}
	t.Skip(reason)
}

// lookTool finds a tool in PATH or, because root's PATH is not always
// complete, in the sbin directories where Debian puts ip and dnsmasq.
func lookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin", "/usr/bin", "/bin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found in PATH", name)
}

// mustTool is lookTool for helpers that already called Require.
func mustTool(t testing.TB, name string) string {
	t.Helper()
	p, err := lookTool(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Eventually calls fn every 50ms until it returns nil, and fails the test
// with the last error when timeout passes first.
func Eventually(t testing.TB, timeout time.Duration, what string, fn func() error) {
	t.Helper()
	if err := poll(timeout, fn); err != nil {
		t.Fatalf("%s: not within %v: %v", what, timeout, err)
	}
}

// poll is Eventually without the test, for helpers that add context; it
// gives up at once on errExited (waiting on a dead process is pointless).
func poll(timeout time.Duration, fn func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil {
			return nil
		}
		if errors.Is(err, errExited) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var errExited = errors.New("the process exited")
