package boot

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// fakeKernel is a kernel whose ovs_datapath family appears once the
// openvswitch module is inserted (when loadable).
type fakeKernel struct {
	family   bool
	loadable bool
	queries  int
	inserts  []string
	queryErr error
}

func (k *fakeKernel) chooser(t *testing.T, log *bytes.Buffer) *DatapathChooser {
	m, _ := fakeLoader(t)
	m.Insert = func(path string) error {
		k.inserts = append(k.inserts, moduleName(path))
		if moduleName(path) != "openvswitch" {
			return nil
		}
		if !k.loadable {
			return unix.ENOEXEC
		}
		k.family = true
		return nil
	}
	return &DatapathChooser{
		Modules: *m,
		HasFamily: func(_ context.Context, name string) (bool, error) {
			k.queries++
			if name != "ovs_datapath" {
				t.Errorf("asked for family %q", name)
			}
			return k.family, k.queryErr
		},
		Log: slog.New(slog.NewTextHandler(log, nil)),
	}
}

func TestChooseDatapath(t *testing.T) {
	tests := []struct {
		name       string
		want       string
		kernel     fakeKernel
		wantType   string
		wantReason string // substring
		wantErr    string // substring; "" means no error
		wantLoad   bool   // openvswitch was inserted
		wantWarn   bool
	}{
		{name: "netdev asks nothing", want: "netdev", kernel: fakeKernel{family: true},
			wantType: "netdev", wantReason: "netdev asked for"},
		{name: "auto with the family", want: "auto", kernel: fakeKernel{family: true},
			wantType: "system", wantReason: "ovs_datapath present"},
		{name: "empty is auto", want: "", kernel: fakeKernel{family: true},
			wantType: "system", wantReason: "ovs_datapath present"},
		{name: "auto loads the module", want: "auto", kernel: fakeKernel{loadable: true},
			wantType: "system", wantReason: "loaded the openvswitch module", wantLoad: true},
		{name: "auto falls back to netdev", want: "auto", kernel: fakeKernel{},
			wantType: "netdev", wantReason: "no generic-netlink family ovs_datapath (load module openvswitch: openvswitch: exec format error); using the userspace datapath",
			wantLoad: true, wantWarn: true},
		{name: "auto when netlink fails", want: "auto", kernel: fakeKernel{queryErr: errors.New("boom")},
			wantType: "netdev", wantReason: "generic-netlink family ovs_datapath: boom", wantWarn: true},
		{name: "system loads the module", want: "system", kernel: fakeKernel{loadable: true},
			wantType: "system", wantLoad: true},
		{name: "system without the family", want: "system", kernel: fakeKernel{},
			wantErr: "datapath system: no generic-netlink family ovs_datapath", wantLoad: true},
		{name: "unknown", want: "kernel", wantErr: `datapath "kernel": want auto, system or netdev`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log bytes.Buffer
			k := tt.kernel
			d, err := k.chooser(t, &log).Choose(context.Background(), tt.want)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Choose(%q) = %+v, %v; want error %q", tt.want, d, err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatalf("Choose(%q): %v", tt.want, err)
			}
			if d.Type != tt.wantType || !strings.Contains(d.Reason, tt.wantReason) {
				t.Errorf("Choose(%q) = %+v, want type %q reason containing %q", tt.want, d, tt.wantType, tt.wantReason)
			}
			if loaded := len(k.inserts) > 0 && k.inserts[len(k.inserts)-1] == "openvswitch"; loaded != tt.wantLoad {
				t.Errorf("inserted %v, want openvswitch loaded: %v", k.inserts, tt.wantLoad)
			}
			if warned := strings.Contains(log.String(), "level=WARN msg=\"OVS kernel datapath unavailable\""); warned != tt.wantWarn {
				t.Errorf("WARN logged: %v, want %v; log:\n%s", warned, tt.wantWarn, log.String())
			}
		})
	}
}
