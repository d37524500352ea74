package boot

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

var testMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x50}

// harness runs a dhcpClient against a fake server and clock, recording what
// it binds and unbinds as "bind 10.0.0.50/24" / "unbind 10.0.0.50/24".
type harness struct {
	t       *testing.T
	clk     *fakeClock
	srv     *fakeServer
	c       *dhcpClient
	carrier chan bool
	events  chan string
	cancel  context.CancelFunc
	done    chan struct{}
	// startCarrier is the carrier when the client starts.
	startCarrier bool
}

func newHarness(t *testing.T, p *pool) *harness {
	h := &harness{t: t, clk: newFakeClock(), srv: newFakeServer(), carrier: make(chan bool, 1), events: make(chan string, 16), startCarrier: true}
	if p != nil {
		h.srv.setAnswer(p.answer)
	}
	h.c = &dhcpClient{
		ifname: "up0", mac: testMAC,
		now: h.clk.Now, after: h.clk.After, open: h.srv.open(testMAC),
		tries:   []time.Duration{20 * time.Millisecond},
		bind:    func(_, l *Lease) error { h.events <- "bind " + l.Address().String(); return nil },
		unbind:  func(l *Lease) { h.events <- "unbind " + l.Address().String() },
		report:  func(dhcpState, *Lease, error) {},
		carrier: h.carrier, carrierWait: 5 * time.Second,
	}
	return h
}

func (h *harness) start() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan struct{})
	go func() { defer close(h.done); h.c.run(ctx, h.startCarrier) }()
	h.t.Cleanup(func() { h.cancel(); <-h.done })
}

func (h *harness) expectEvent(want string) {
	h.t.Helper()
	select {
	case got := <-h.events:
		if got != want {
			h.t.Fatalf("event: got %q, want %q", got, want)
		}
	case <-time.After(5 * time.Second):
		h.t.Fatalf("event: got nothing, want %q", want)
	}
}

// expectWait returns the next duration the client sleeps for, then lets
// that much fake time pass.
func (h *harness) expectWait(want time.Duration) {
	h.t.Helper()
	select {
	case got := <-h.clk.waits:
		if got != want {
			h.t.Fatalf("wait: got %s, want %s", got, want)
		}
		h.clk.Advance(got)
	case <-time.After(5 * time.Second):
		h.t.Fatalf("wait: client never slept, want %s", want)
	}
}

// expectSent returns the next packet the client sent and checks its kind.
func (h *harness) expectSent(kind string) sent {
	h.t.Helper()
	select {
	case s := <-h.srv.seen:
		if got := describe(s); got != kind {
			h.t.Fatalf("sent: got %s, want %s", got, kind)
		}
		return s
	case <-time.After(5 * time.Second):
		h.t.Fatalf("sent: nothing, want %s", kind)
	}
	return sent{}
}

// describe names a client packet by what RFC 2131 section 4.3.2 tells apart.
func describe(s sent) string {
	m := s.msg
	switch m.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		return "DISCOVER " + s.to
	case dhcpv4.MessageTypeRequest:
		switch {
		case m.ServerIdentifier() != nil:
			return fmt.Sprintf("REQUEST(selecting %s) %s", m.RequestedIPAddress(), s.to)
		case m.RequestedIPAddress() != nil && m.ClientIPAddr.IsUnspecified():
			return fmt.Sprintf("REQUEST(init-reboot %s) %s", m.RequestedIPAddress(), s.to)
		default:
			return fmt.Sprintf("REQUEST(ciaddr %s from %s) %s", m.ClientIPAddr, s.from, s.to)
		}
	}
	return m.MessageType().String()
}

func testPool() *pool {
	return &pool{addr: net.IPv4(10, 0, 0, 50).To4(), server: net.IPv4(10, 0, 0, 1).To4()}
}

func TestDHCPAcquireBindsAndSleepsUntilT1(t *testing.T) {
	h := newHarness(t, testPool())
	h.start()
	h.expectSent("DISCOVER 255.255.255.255:67")
	h.expectSent("REQUEST(selecting 10.0.0.50) 255.255.255.255:67")
	h.expectEvent("bind 10.0.0.50/24")
	h.expectWait(60 * time.Second) // T1 of a 120 s lease
}

// With no server answering, a lease goes RENEWING (unicast) at T1,
// REBINDING (broadcast) at T2, and at expiry the address is removed and the
// client starts over.
func TestDHCPLeaseExpiryRemovesAddressAndRediscovers(t *testing.T) {
	h := newHarness(t, testPool())
	h.start()
	h.expectSent("DISCOVER 255.255.255.255:67")
	h.expectSent("REQUEST(selecting 10.0.0.50) 255.255.255.255:67")
	h.expectEvent("bind 10.0.0.50/24")
	h.srv.setAnswer(nil)

	h.expectWait(60 * time.Second)
	h.expectSent("REQUEST(ciaddr 10.0.0.50 from 10.0.0.50) 10.0.0.1:67")
	h.expectWait(45 * time.Second) // floor of 60 s, capped at T2 = 105 s
	h.expectSent("REQUEST(ciaddr 10.0.0.50 from 10.0.0.50) 255.255.255.255:67")
	h.expectWait(15 * time.Second) // capped at expiry = 120 s
	h.expectEvent("unbind 10.0.0.50/24")
	h.expectSent("DISCOVER 255.255.255.255:67")
}

func TestDHCPNakOnRenewDropsAddressAndRestarts(t *testing.T) {
	h := newHarness(t, testPool())
	h.start()
	h.expectSent("DISCOVER 255.255.255.255:67")
	h.expectSent("REQUEST(selecting 10.0.0.50) 255.255.255.255:67")
	h.expectEvent("bind 10.0.0.50/24")

	// The server lost the lease and now hands out .77: it NAKs the renewal.
	nak, moved := testPool(), testPool()
	nak.nak = true
	moved.addr = net.IPv4(10, 0, 0, 77).To4()
	h.srv.setAnswer(func(req *dhcpv4.DHCPv4) *dhcpv4.DHCPv4 {
		if !req.ClientIPAddr.IsUnspecified() {
			return nak.answer(req)
		}
		return moved.answer(req)
	})
	h.expectWait(60 * time.Second)
	h.expectSent("REQUEST(ciaddr 10.0.0.50 from 10.0.0.50) 10.0.0.1:67")
	h.expectEvent("unbind 10.0.0.50/24")
	h.expectSent("DISCOVER 255.255.255.255:67")
	h.expectSent("REQUEST(selecting 10.0.0.77) 255.255.255.255:67")
	h.expectEvent("bind 10.0.0.77/24")
}

// A saved lease is asked for again with INIT-REBOOT, not DISCOVER.
func TestDHCPRestartRequestsSavedLease(t *testing.T) {
	h := newHarness(t, testPool())
	h.c.lease = savedTestLease(t, h.clk.Now().Add(-10*time.Second))
	h.start()
	h.expectSent("REQUEST(init-reboot 10.0.0.50) 255.255.255.255:67")
	h.expectEvent("bind 10.0.0.50/24")
	h.expectWait(60 * time.Second)
}

// No answer to INIT-REBOOT: the unexpired lease stays in use until T1.
func TestDHCPRestartWithoutServerKeepsLease(t *testing.T) {
	h := newHarness(t, nil)
	h.c.lease = savedTestLease(t, h.clk.Now().Add(-10*time.Second))
	h.start()
	h.expectSent("REQUEST(init-reboot 10.0.0.50) 255.255.255.255:67")
	h.expectSent("REQUEST(init-reboot 10.0.0.50) 255.255.255.255:67")
	h.expectWait(50 * time.Second)
	select {
	case e := <-h.events:
		t.Fatalf("unexpected %s", e)
	default:
	}
}

func TestDHCPRestartNakRediscovers(t *testing.T) {
	nak := testPool()
	nak.nak = true
	h := newHarness(t, nak)
	h.c.lease = savedTestLease(t, h.clk.Now().Add(-10*time.Second))
	h.start()
	h.expectSent("REQUEST(init-reboot 10.0.0.50) 255.255.255.255:67")
	h.expectEvent("unbind 10.0.0.50/24")
	h.expectSent("DISCOVER 255.255.255.255:67")
}

// After a cable pull the client asks for its address back at once.
func TestDHCPCarrierReturnReboots(t *testing.T) {
	h := newHarness(t, testPool())
	h.start()
	h.expectSent("DISCOVER 255.255.255.255:67")
	h.expectSent("REQUEST(selecting 10.0.0.50) 255.255.255.255:67")
	h.expectEvent("bind 10.0.0.50/24")
	<-h.clk.waits // bound, sleeping until T1
	h.carrier <- false
	time.Sleep(20 * time.Millisecond)
	h.carrier <- true
	h.expectSent("REQUEST(init-reboot 10.0.0.50) 255.255.255.255:67")
	h.expectEvent("bind 10.0.0.50/24")
}

func savedTestLease(t *testing.T, acquired time.Time) *Lease {
	t.Helper()
	req, err := dhcpv4.NewDiscovery(testMAC)
	if err != nil {
		t.Fatal(err)
	}
	ack := testPool().answer(req)
	ack.UpdateOption(dhcpv4.OptMessageType(dhcpv4.MessageTypeAck))
	return &Lease{ACK: ack, Acquired: acquired}
}

func TestLeaseAddressFromYiaddrAndMask(t *testing.T) {
	l := savedTestLease(t, time.Now())
	if got, want := l.Address(), netip.MustParsePrefix("10.0.0.50/24"); got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

// Without a carrier the client waits, boundedly, and DISCOVERs as soon as
// the carrier comes; a driver that never reports one is tried anyway.
func TestDHCPWaitsForFirstCarrierBoundedly(t *testing.T) {
	h := newHarness(t, testPool())
	h.startCarrier = false
	h.start()
	<-h.clk.waits
	h.carrier <- true
	h.expectSent("DISCOVER 255.255.255.255:67")

	h2 := newHarness(t, testPool())
	h2.startCarrier = false
	h2.start()
	h2.expectWait(5 * time.Second)
	h2.expectSent("DISCOVER 255.255.255.255:67")
}

// newMessage builds what dhcpv4.New builds, the transaction id aside.
func TestNewMessageMatchesLibrary(t *testing.T) {
	mac := net.HardwareAddr{0x52, 0x54, 0, 0x12, 0x34, 0x56}
	mods := []dhcpv4.Modifier{dhcpv4.WithHwAddr(mac), dhcpv4.WithMessageType(dhcpv4.MessageTypeDiscover), requestedOptions}
	want, err := dhcpv4.New(mods...)
	if err != nil {
		t.Fatal(err)
	}
	got := newMessage(mods...)
	if got.TransactionID == newMessage(mods...).TransactionID {
		t.Errorf("two messages share transaction id %s", got.TransactionID)
	}
	got.TransactionID = want.TransactionID
	if !bytes.Equal(got.ToBytes(), want.ToBytes()) {
		t.Errorf("newMessage:\n%s\ndhcpv4.New:\n%s", got.Summary(), want.Summary())
	}
}
