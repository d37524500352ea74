package boot

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// keep runs d until ctx is done, restarting it with backoff whenever it
// dies; p is an adopted process or nil. up, when not nil, is closed once
// the daemon first runs (for ovsdb-server: answers, or is still alive
// after ReadyTimeout).
func (s *OVSSupervisor) keep(ctx context.Context, d ovsDaemon, p *ovsProcess, up chan struct{}) {
	backoff, failures := ovsMinBackoff, 0
	for ctx.Err() == nil {
		if p == nil {
			s.setState(d, ovsStarting, 0)
			if !d.isDB && !s.waitCPUCount(ctx) {
				return
			}
			var err error
			if p, err = s.start(d); err != nil {
				failures++
				s.died(d, failures, err.Error())
				if !sleepCtx(ctx, backoff) {
					return
				}
				backoff = min(2*backoff, ovsMaxBackoff)
				continue
			}
		}
		started := time.Now()
		if d.isDB {
			s.waitDB(ctx, p)
		}
		if !p.exited() {
			s.setState(d, ovsRunning, p.pid)
			if up != nil {
				close(up)
				up = nil
			}
		}
		select {
		case <-ctx.Done():
			return // the daemon keeps running: see OVSSupervisor
		case <-p.done:
		}
		if time.Since(started) >= ovsHealthyRun {
			backoff, failures = ovsMinBackoff, 0
		}
		failures++
		s.died(d, failures, fmt.Sprintf("%s (pid %d) %s", d.name, p.pid, p.exitReason()))
		p = nil
		if !sleepCtx(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, ovsMaxBackoff)
	}
}

// vswitchdMinUptime: ovs-vswitchd (3.1) counts the CPUs afresh at most
// every 10 s of CLOCK_MONOTONIC, starting from 0, so one started in the
// first 10 s after boot counts none. On the kernel datapath it then
// registers no per-CPU upcall handler, every miss is lost (dpctl/show:
// "lost"), and the handlers it starts once the count is right do not
// repair the datapath it made: a bridge LAN made early in boot never
// passes a frame. Waiting out those seconds at boot costs nothing later.
const vswitchdMinUptime = 10500 * time.Millisecond

// waitCPUCount waits until the monotonic clock has passed
// vswitchdMinUptime; false if ctx ended first.
func (s *OVSSupervisor) waitCPUCount(ctx context.Context) bool {
	wait := vswitchdMinUptime - monotonicNow()
	if wait <= 0 {
		return true
	}
	s.log().Info("ovs-vswitchd waits for its CPU count", "uptime", monotonicNow().Round(time.Millisecond), "wait", wait.Round(time.Millisecond))
	return sleepCtx(ctx, wait)
}

// monotonicNow is CLOCK_MONOTONIC, the clock ovs-vswitchd's timers use.
func monotonicNow() time.Duration {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) != nil {
		return vswitchdMinUptime // cannot tell: do not wait
	}
	return time.Duration(ts.Nano())
}

// died records a death (or failed start) of d; the log is bounded: the
// first five in a row, then every 50th.
func (s *OVSSupervisor) died(d ovsDaemon, failures int, why string) {
	s.update(func(st *OVSStatus) {
		st.Restarts++
		st.LastError = why
	})
	s.setState(d, ovsRestarting, 0)
	if failures <= 5 || failures%50 == 0 {
		s.log().Warn("OVS daemon died; restarting", "daemon", d.name, "in_a_row", failures, "err", why)
	}
}

func (s *OVSSupervisor) setState(d ovsDaemon, state string, pid int) {
	s.update(func(st *OVSStatus) {
		if d.isDB {
			st.DBServer, st.DBServerPid = state, pid
		} else {
			st.Vswitchd, st.VswitchdPid = state, pid
		}
	})
}

// waitDB waits (bounded) until ovsdb-server answers on DBSocket.
func (s *OVSSupervisor) waitDB(ctx context.Context, p *ovsProcess) {
	deadline := time.Now().Add(s.ReadyTimeout)
	for ovsdbEcho(s.DBSocket, time.Second) != nil {
		if time.Now().After(deadline) {
			s.log().Warn("ovsdb-server not answering yet", "socket", s.DBSocket, "waited", s.ReadyTimeout)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-p.done:
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ovsdbEcho sends one RFC 7047 echo to an OVSDB unix socket and checks the
// reply: a socket file, even one accepting connections, may be stale.
func ovsdbEcho(path string, timeout time.Duration) error {
	conn, err := net.DialTimeout("unix", path, timeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	if _, err := conn.Write([]byte(`{"method":"echo","params":[],"id":0}`)); err != nil {
		return fmt.Errorf("echo to %s: %w", path, err)
	}
	var reply struct {
		ID    *int            `json:"id"`
		Error json.RawMessage `json:"error"`
	}
	if err := json.NewDecoder(conn).Decode(&reply); err != nil {
		return fmt.Errorf("echo to %s: %w", path, err)
	}
	if reply.ID == nil || *reply.ID != 0 || (len(reply.Error) > 0 && string(reply.Error) != "null") {
		return fmt.Errorf("echo to %s: unexpected reply (id %v, error %s)", path, reply.ID, reply.Error)
	}
	return nil
}

// sleepCtx sleeps for d and reports whether ctx is still live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
