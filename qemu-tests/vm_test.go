// Package qemutests boots the appliance image (images/out) under
// qemu-system-x86_64 and checks nodenet from outside, through the serial
// console and QEMU's loopback-only port forwards.
package qemutests

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// imageDir holds vmlinuz and nodenet.cpio.gz (make image).
func imageDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("NODENET_IMAGE_DIR")
	if dir == "" {
		dir = "../images/out"
	}
	for _, f := range []string{"vmlinuz", "nodenet.cpio.gz"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			skipOrFail(t, fmt.Sprintf("image %s missing (make image): %v", f, err))
		}
	}
	abs, _ := filepath.Abs(dir)
	return abs
}

func skipOrFail(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("NODENET_INTEGRATION") != "" {
		t.Fatal(why)
	}
	t.Skip(why)
}

// VM is one booted image: its console is read into log as it comes, and
// commands are typed into the shell init keeps on it.
type VM struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	in   io.WriteCloser

	mu     sync.Mutex
	log    strings.Builder
	cursor int // Expect looks from here on
	exited chan struct{}
	seq    int
	once   sync.Once
}

// vmOptions say how to boot: extra kernel flags and QEMU arguments
// (further NICs, hostfwd).
type vmOptions struct {
	Append   string
	UserNet  string // extra ,hostfwd=... for the first NIC's user network
	ExtraArg []string
}

// boot starts QEMU under TCG with the image; the VM is killed and its
// console log kept (qemu-tests/out/NAME.log) when the test ends.
func boot(t *testing.T, name string, o vmOptions) *VM {
	t.Helper()
	dir := imageDir(t)
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		skipOrFail(t, "qemu-system-x86_64 missing (make deps installs qemu-system-x86)")
	}
	// Two vCPUs, so OVS's kernel datapath dispatches upcalls to more than
	// one per-CPU handler, as on any appliance.
	args := []string{"-m", "512", "-smp", "2", "-nographic", "-no-reboot", "-nodefaults", "-serial", "stdio",
		"-kernel", filepath.Join(dir, "vmlinuz"), "-initrd", filepath.Join(dir, "nodenet.cpio.gz"),
		"-append", strings.TrimSpace("console=ttyS0 panic=-1 quiet " + o.Append),
		"-netdev", "user,id=n0,restrict=on" + o.UserNet, "-device", "virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56"}
	args = append(args, o.ExtraArg...)
	vm := &VM{t: t, name: name, exited: make(chan struct{})}
	vm.cmd = exec.Command("qemu-system-x86_64", args...)
	var err error
	if vm.in, err = vm.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := vm.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	vm.cmd.Stderr = vm.cmd.Stdout
	if err := vm.cmd.Start(); err != nil {
		t.Fatalf("start qemu: %v", err)
	}
	go vm.read(out)
	t.Cleanup(vm.stop)
	return vm
}

func (vm *VM) read(r io.Reader) {
	defer close(vm.exited)
	br := bufio.NewReader(r)
	buf := make([]byte, 4096)
	for {
		n, err := br.Read(buf)
		vm.mu.Lock()
		vm.log.Write(buf[:n])
		vm.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// stop kills QEMU and keeps the console log; on failure its tail goes to
// the test log too.
func (vm *VM) stop() { vm.once.Do(vm.kill) }

func (vm *VM) kill() {
	vm.cmd.Process.Kill()
	<-vm.exited
	vm.cmd.Wait()
	log := vm.consoleLog()
	os.MkdirAll("out", 0o755)
	path := filepath.Join("out", strings.ReplaceAll(vm.t.Name(), "/", "_")+"-"+vm.name+".log")
	os.WriteFile(path, []byte(log), 0o644)
	if vm.t.Failed() {
		tail := log
		if len(tail) > 6000 {
			tail = tail[len(tail)-6000:]
		}
		vm.t.Logf("%s console (whole log in qemu-tests/out/%s):\n%s", vm.name, filepath.Base(path), tail)
	}
}

func (vm *VM) consoleLog() string {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return vm.log.String()
}

// Expect waits until the console, from the last match on, shows re, and
// returns the submatches. A missed deadline fails the test with the step.
func (vm *VM) Expect(step string, re *regexp.Regexp, deadline time.Duration) []string {
	vm.t.Helper()
	end := time.Now().Add(deadline)
	for {
		vm.mu.Lock()
		s := vm.log.String()
		if loc := re.FindStringSubmatchIndex(s[vm.cursor:]); loc != nil {
			m := make([]string, len(loc)/2)
			for i := range m {
				if loc[2*i] >= 0 {
					m[i] = s[vm.cursor+loc[2*i] : vm.cursor+loc[2*i+1]]
				}
			}
			vm.cursor += loc[1]
			vm.mu.Unlock()
			return m
		}
		vm.mu.Unlock()
		select {
		case <-vm.exited:
			vm.t.Fatalf("%s: %s: QEMU exited", vm.name, step)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(end) {
			vm.t.Fatalf("%s: %s: no %q on the console within %v", vm.name, step, re, deadline)
		}
	}
}

// Seen waits until the whole console log shows re (the cursor stays):
// for the daemon's log lines, whose order against others may vary.
func (vm *VM) Seen(step string, re *regexp.Regexp, deadline time.Duration) []string {
	vm.t.Helper()
	end := time.Now().Add(deadline)
	for {
		if m := re.FindStringSubmatch(vm.consoleLog()); m != nil {
			return m
		}
		select {
		case <-vm.exited:
			vm.t.Fatalf("%s: %s: QEMU exited", vm.name, step)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(end) {
			vm.t.Fatalf("%s: %s: no %q on the console within %v", vm.name, step, re, deadline)
		}
	}
}

// Sh types a command line into the console shell and waits for it to
// finish; it returns the output and fails the test on a non-zero status.
func (vm *VM) Sh(cmdline string, deadline time.Duration) string {
	vm.t.Helper()
	out, status := vm.ShStatus(cmdline, deadline)
	if status != 0 {
		vm.t.Fatalf("%s: `%s` exited %d:\n%s", vm.name, cmdline, status, out)
	}
	return out
}

// ShStatus is Sh that returns the exit status instead of failing on it.
// Output is framed by markers the command cannot print by accident.
func (vm *VM) ShStatus(cmdline string, deadline time.Duration) (string, int) {
	vm.t.Helper()
	vm.seq++
	tag := fmt.Sprintf("Q%dZ", vm.seq)
	// The markers are built by printf so the echoed command line holds
	// them split: only the real output matches.
	line := fmt.Sprintf("printf '@@%%s-start@@\\n' %s; %s; printf '@@%%s-end %%d@@\\n' %s $?\n", tag, cmdline, tag)
	if _, err := io.WriteString(vm.in, line); err != nil {
		vm.t.Fatalf("%s: type %q: %v", vm.name, cmdline, err)
	}
	m := vm.Expect(cmdline, regexp.MustCompile(`(?s)@@`+tag+`-start@@\r?\n(.*?)@@`+tag+`-end (\d+)@@`), deadline)
	var status int
	fmt.Sscan(m[2], &status)
	return strings.ReplaceAll(m[1], "\r", ""), status
}

// freePort is a loopback TCP port nobody listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

var (
	shellReady = regexp.MustCompile(`built-in shell \(ash\)`)
	// uplinkUp is nodenet's log line when an uplink has its address.
	uplinkUp = func(nic string) *regexp.Regexp {
		return regexp.MustCompile(`msg="uplink (?:bound|configured)" uplink=` + nic + ` address=(\S+)[^\n]* uptime=(\S+)`)
	}
	lansReady = regexp.MustCompile(`msg="LANs ready" datapath=(\w+)`)
)

// bootTimeout bounds a boot to the first uplink under TCG on a shared
// 2-core machine (about 4 s when idle).
const bootTimeout = 90 * time.Second
