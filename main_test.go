package main

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"nodenet/api"
	"nodenet/boot"
	"nodenet/internal/testenv"
)

func TestPrintStatus(t *testing.T) {
	now := time.Now()
	st := api.Status{Version: "v1", Uplinks: []boot.UplinkStatus{
		{Name: "up0", Source: "dhcp", State: "bound", Carrier: true, Addresses: []string{"10.77.0.100/24"},
			Gateway: "10.77.0.1", DNS: []string{"10.77.0.1"}, MTU: 1500, Metric: 100,
			Lease: &boot.LeaseTimes{Server: "10.77.0.1", Renew: now.Add(time.Minute), Expires: now.Add(2 * time.Minute)}},
		{Name: "up1", Source: "dhcp", State: "init", Addresses: []string{}, MTU: 1500, LastError: "up1: no lease after 3 tries"},
	}}
	var b bytes.Buffer
	printStatus(&b, st)
	for _, want := range []string{
		"nodenet v1",
		"UPLINK  SOURCE  STATE  CARRIER  ADDRESSES       GATEWAY    DNS        MTU   LEASE",
		"up0     dhcp    bound  yes      10.77.0.100/24  10.77.0.1  10.77.0.1  1500  from 10.77.0.1, renew in 1m0s, expires in 2m0s",
		"up1     dhcp    init   no       -               -          -          1500  -",
		"up1: last error: up1: no lease after 3 tries",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, b.String())
		}
	}
}

func TestUnknownCommandAndUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"frobnicate"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), `unknown command "frobnicate"`) {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	if code := run([]string{"version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "nodenet ") {
		t.Fatalf("version: exit %d, stdout %q", code, out.String())
	}
}

func TestStatusWithoutDaemonSaysSo(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"--socket", t.TempDir() + "/none.sock", "status"}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "nodenet daemon at") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
}

// A second daemon on the same socket refuses to start and leaves the first
// one serving.
func TestSecondDaemonRefused(t *testing.T) {
	testenv.Require(t, "unshare")
	ns := testenv.NewNetns(t)
	d := testenv.StartDaemon(t, ns, testenv.DaemonOptions{Cmdline: "ip=off"})
	out, err := d.Command().CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(string(out), "another nodenet daemon is answering") {
		t.Fatalf("second daemon: %v\n%s", err, out)
	}
	if _, err := api.NewClient(d.Socket).Status(context.Background()); err != nil {
		t.Fatalf("first daemon no longer answers: %v", err)
	}
}
