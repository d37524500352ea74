package boot_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"nodenet/boot"
	"nodenet/internal/testenv"
)

const datapathHelperEnv = "NODENET_TEST_DATAPATH_HELPER"

// datapathResult is what the helper process reports.
type datapathResult struct {
	Auto      boot.Datapath
	AutoErr   string
	System    boot.Datapath
	SystemErr string
}

// TestDatapathHelper is not a test: run by TestChooseDatapathInNetns inside
// a namespace, it chooses the datapath against the real kernel and prints
// the outcome on a marker line.
func TestDatapathHelper(t *testing.T) {
	if os.Getenv(datapathHelperEnv) != "1" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	var r datapathResult
	var err error
	r.Auto, err = boot.ChooseDatapath(ctx, "auto", log)
	if err != nil {
		r.AutoErr = err.Error()
	}
	r.System, err = boot.ChooseDatapath(ctx, "system", log)
	if err != nil {
		r.SystemErr = err.Error()
	}
	b, _ := json.Marshal(r)
	fmt.Printf("\nDATAPATH %s\n", b)
}

// TestChooseDatapathInNetns asks the real kernel from inside a test
// namespace, as the daemon does. The build machines have no openvswitch
// module, so auto falls back to netdev there; where the module exists it is
// loaded (as the daemon would) and auto must pick the kernel datapath.
func TestChooseDatapathInNetns(t *testing.T) {
	ns := testenv.NewNetns(t)
	cmd := ns.Command(os.Args[0], "-test.run=^TestDatapathHelper$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), datapathHelperEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	_, line, ok := strings.Cut(string(out), "\nDATAPATH ")
	var r datapathResult
	if !ok || json.Unmarshal([]byte(strings.SplitN(line, "\n", 2)[0]), &r) != nil {
		t.Fatalf("helper printed no result:\n%s", out)
	}
	t.Logf("auto: %+v; system: %+v %s", r.Auto, r.System, r.SystemErr)
	if r.AutoErr != "" {
		t.Fatalf("auto: %s", r.AutoErr)
	}
	if r.Auto.Type == boot.DatapathSystem {
		if r.SystemErr != "" || r.System.Type != boot.DatapathSystem {
			t.Errorf("auto chose system but system says %+v %s", r.System, r.SystemErr)
		}
		return
	}
	if r.Auto.Type != boot.DatapathNetdev || !strings.Contains(r.Auto.Reason, "ovs_datapath") {
		t.Errorf("auto = %+v, want netdev with a reason naming ovs_datapath", r.Auto)
	}
	if !strings.Contains(r.SystemErr, "datapath system") || !strings.Contains(r.SystemErr, "ovs_datapath") {
		t.Errorf("system without the family: error %q, want one naming ovs_datapath", r.SystemErr)
	}
	if !strings.Contains(string(out), "level=WARN") {
		t.Errorf("the fallback was not logged at WARN:\n%s", out)
	}
}
