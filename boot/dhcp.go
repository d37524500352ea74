package boot

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"time"

	"github.com/insomniacslk/dhcp/iana"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
)

// dhcpState is where the client is in RFC 2131's state diagram (figure 5).
type dhcpState string

const (
	stateInit      dhcpState = "init"        // no lease: DISCOVER
	stateReboot    dhcpState = "init-reboot" // a lease from before: REQUEST it back
	stateBound     dhcpState = "bound"
	stateRenewing  dhcpState = "renewing"  // after T1: unicast REQUEST to the server
	stateRebinding dhcpState = "rebinding" // after T2: broadcast REQUEST to any server
	stateNoCarrier dhcpState = "no-carrier"
)

// minRetransmit is RFC 2131 4.4.5's floor for the wait between renewal or
// rebinding attempts.
const minRetransmit = 60 * time.Second

// tryTimeouts bound each DISCOVER or REQUEST attempt. Short and capped, not
// nclient4's doubling: a lost first packet costs one second, not minutes.
var tryTimeouts = []time.Duration{time.Second, time.Second, 2 * time.Second, 2 * time.Second, 4 * time.Second}

// slowTry is the attempt timeout once patience ran out: the socket stays
// open, so an offer is still taken the moment it comes.
const slowTry = 30 * time.Second

// requestedOptions is the parameter request list (option 55) nodenet sends.
var requestedOptions = dhcpv4.WithRequestedOptions(
	dhcpv4.OptionSubnetMask, dhcpv4.OptionRouter, dhcpv4.OptionDomainNameServer,
	dhcpv4.OptionDomainName, dhcpv4.OptionBroadcastAddress, dhcpv4.OptionInterfaceMTU,
	dhcpv4.OptionClasslessStaticRoute, dhcpv4.OptionIPAddressLeaseTime,
	dhcpv4.OptionRenewTimeValue, dhcpv4.OptionRebindingTimeValue,
)

// dhcpClient runs the DHCPv4 client lifecycle of one uplink. Everything it
// touches outside itself is a field, so tests drive it with a fake clock, an
// in-memory connection and recorded effects.
type dhcpClient struct {
	ifname string
	mac    net.HardwareAddr

	now   func() time.Time
	after func(time.Duration) <-chan time.Time
	// open returns a client for one exchange: a raw broadcast socket when
	// from is invalid, else a UDP socket bound to the leased address from.
	open func(from netip.Addr) (*nclient4.Client, error)
	// tries are the per-attempt timeouts; the last one repeats.
	tries []time.Duration
	// patience is how long INIT retries quickly (nodenet.dhcp-timeout);
	// after it a link without a DHCP server is asked only every slowTry.
	patience time.Duration

	// bind configures a new or renewed lease (old may be nil or equal).
	bind func(old, lease *Lease) error
	// unbind removes a lease that expired or was refused.
	unbind func(old *Lease)
	// report publishes the state and the last error (nil clears it).
	report func(s dhcpState, l *Lease, err error)

	carrier <-chan bool
	// carrierWait bounds the wait for a first carrier.
	carrierWait time.Duration
	lease       *Lease
}

// run drives the state machine until ctx ends. It never removes the address
// on return: a stopped daemon leaves the node reachable.
func (c *dhcpClient) run(ctx context.Context, carrierUp bool) {
	state := stateInit
	if c.lease != nil {
		state = stateReboot
	}
	if !carrierUp {
		// Some drivers never report a carrier: wait for one only so long,
		// then try anyway.
		c.report(stateNoCarrier, c.lease, nil)
		if !c.waitCarrier(ctx, c.after(c.carrierWait)) && ctx.Err() != nil {
			return
		}
		carrierUp = true
	}
	for ctx.Err() == nil {
		if !carrierUp {
			c.report(stateNoCarrier, c.lease, nil)
			if !c.waitCarrier(ctx, nil) {
				return
			}
			carrierUp, state = true, c.afterCarrier()
		}
		state, carrierUp = c.step(ctx, state)
	}
}

// afterCarrier is the state to resume in when the cable comes back: the old
// lease is asked for again (INIT-REBOOT) rather than waiting for T1.
func (c *dhcpClient) afterCarrier() dhcpState {
	if c.lease != nil && c.now().Before(c.lease.Expiry()) {
		return stateReboot
	}
	return stateInit
}

func (c *dhcpClient) step(ctx context.Context, s dhcpState) (dhcpState, bool) {
	c.report(s, c.lease, nil)
	switch s {
	case stateInit:
		return c.initial(ctx)
	case stateReboot:
		return c.reboot(ctx)
	case stateBound:
		return c.waitUntil(ctx, c.lease.T1(), stateRenewing)
	case stateRenewing:
		return c.extend(ctx, s, c.lease.T2(), stateRebinding)
	case stateRebinding:
		return c.extend(ctx, s, c.lease.Expiry(), stateInit)
	}
	return stateInit, true
}

// waitCarrier blocks until the carrier is back (true), or until ctx ends or
// timeout fires (false). A nil timeout never fires.
func (c *dhcpClient) waitCarrier(ctx context.Context, timeout <-chan time.Time) bool {
	for {
		select {
		case <-ctx.Done():
			return false
		case <-timeout:
			return false
		case up := <-c.carrier:
			if up {
				return true
			}
		}
	}
}

// waitUntil sleeps until t, then moves to next. A carrier loss interrupts it.
func (c *dhcpClient) waitUntil(ctx context.Context, t time.Time, next dhcpState) (dhcpState, bool) {
	d := t.Sub(c.now())
	if d <= 0 {
		return next, true
	}
	timer := c.after(d)
	for {
		select {
		case <-ctx.Done():
			return next, true
		case <-timer:
			return next, true
		case up := <-c.carrier:
			if !up {
				return next, false
			}
		}
	}
}

// initial is the INIT → SELECTING → REQUESTING path: DISCOVER, take the
// first offer, REQUEST it. It retries with short bounded timeouts forever.
// One socket and one transaction id serve all retransmissions, so an offer
// that arrives late for an earlier DISCOVER is still taken.
func (c *dhcpClient) initial(ctx context.Context) (dhcpState, bool) {
	client, err := c.open(netip.Addr{})
	if err != nil {
		return c.fail(ctx, stateInit, err)
	}
	defer release(client)
	discover := newMessage(dhcpv4.WithHwAddr(c.mac), dhcpv4.WithMessageType(dhcpv4.MessageTypeDiscover),
		requestedOptions, c.previousAddress())
	start := c.now()
	for try := 0; ctx.Err() == nil; try++ {
		timeout := c.tryTimeout(try)
		if c.patience > 0 && c.now().Sub(start) >= c.patience {
			timeout = slowTry
		}
		lease, err := c.selectAndRequest(ctx, client, discover, timeout)
		if err == nil {
			if err = c.acquired(lease); err == nil {
				return stateBound, true
			}
		} else {
			err = fmt.Errorf("%s: no lease after %d tries: %w", c.ifname, try+1, err)
		}
		c.report(stateInit, nil, err)
		if !isNoAnswer(err) {
			// The attempt failed without using up its timeout: pause so a
			// persistent error (netlink, NAK) cannot spin.
			if _, up := c.waitUntil(ctx, c.now().Add(timeout), stateInit); !up {
				return stateInit, false
			}
		} else if c.carrierLost() {
			return stateInit, false
		}
	}
	return stateInit, true
}

func (c *dhcpClient) tryTimeout(try int) time.Duration {
	if try < len(c.tries) {
		return c.tries[try]
	}
	return c.tries[len(c.tries)-1]
}

// carrierLost drains pending carrier events and reports whether the last
// one says the link is down.
func (c *dhcpClient) carrierLost() bool {
	lost := false
	for {
		select {
		case up := <-c.carrier:
			lost = !up
		default:
			return lost
		}
	}
}

func (c *dhcpClient) selectAndRequest(ctx context.Context, client *nclient4.Client, discover *dhcpv4.DHCPv4, timeout time.Duration) (*Lease, error) {
	offer, err := exchange(ctx, client, timeout, nil, discover, dhcpv4.MessageTypeOffer)
	if err != nil {
		return nil, fmt.Errorf("DISCOVER: %w", err)
	}
	request := newMessage(dhcpv4.WithReply(offer), dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
		dhcpv4.WithClientIP(offer.ClientIPAddr), dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(offer.YourIPAddr)),
		dhcpv4.WithOptionCopied(offer, dhcpv4.OptionServerIdentifier), requestedOptions)
	sent := c.now()
	ack, err := exchange(ctx, client, timeout, nil, request, dhcpv4.MessageTypeAck, dhcpv4.MessageTypeNak)
	if err != nil {
		return nil, fmt.Errorf("REQUEST %s: %w", offer.YourIPAddr, err)
	}
	if ack.MessageType() == dhcpv4.MessageTypeNak {
		return nil, fmt.Errorf("REQUEST %s: NAK from %s: %s", offer.YourIPAddr, ack.ServerIdentifier(), ack.Message())
	}
	return &Lease{ACK: ack, Acquired: sent}, nil
}

// previousAddress asks for the address held before, if any (option 50 in a
// DISCOVER is a hint the server may honour).
func (c *dhcpClient) previousAddress() dhcpv4.Modifier {
	if c.lease == nil {
		return func(*dhcpv4.DHCPv4) {}
	}
	return dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(c.lease.ACK.YourIPAddr))
}

// reboot is INIT-REBOOT: broadcast a REQUEST for the address held before,
// without a server identifier. NAK means the address is no longer ours; no
// answer means keep using it while the lease lasts.
func (c *dhcpClient) reboot(ctx context.Context) (dhcpState, bool) {
	addr := c.lease.ACK.YourIPAddr
	request := newMessage(dhcpv4.WithHwAddr(c.mac), dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
		requestedOptions, dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(addr)))
	var ack *dhcpv4.DHCPv4
	var err error
	for try := 0; try < 2 && ack == nil; try++ {
		ack, err = c.requestOnce(ctx, netip.Addr{}, request, c.tryTimeout(try))
	}
	return c.answered(ctx, stateReboot, ack, err, c.lease.Expiry())
}

// extend is RENEWING (unicast to the server) or REBINDING (broadcast from
// the leased address). Without an answer it waits half the time left to
// until, at least a minute, and tries again; at until it moves to next.
func (c *dhcpClient) extend(ctx context.Context, s dhcpState, until time.Time, next dhcpState) (dhcpState, bool) {
	if !c.now().Before(until) {
		if next == stateInit {
			c.expire()
		}
		return next, true
	}
	from := c.lease.Address().Addr()
	request := newMessage(dhcpv4.WithHwAddr(c.mac), dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
		requestedOptions, dhcpv4.WithClientIP(from.AsSlice()))
	to := netip.IPv4Unspecified()
	if s == stateRenewing {
		to = c.lease.Server()
	}
	ack, err := c.requestOnce(ctx, to, request, c.tryTimeout(len(c.tries)))
	if ack != nil {
		return c.answered(ctx, s, ack, nil, until)
	}
	c.report(s, c.lease, fmt.Errorf("%s: %s %s: %w", c.ifname, s, from, err))
	wait := until.Sub(c.now()) / 2
	if wait < minRetransmit {
		wait = minRetransmit
	}
	retry := c.now().Add(wait)
	if retry.After(until) {
		retry = until
	}
	_, up := c.waitUntil(ctx, retry, s)
	return s, up
}

// requestOnce sends one REQUEST: broadcast on the raw socket when to is
// invalid (INIT-REBOOT), else through a UDP socket bound to the leased
// address, to the server (RENEWING) or to 255.255.255.255 (REBINDING).
func (c *dhcpClient) requestOnce(ctx context.Context, to netip.Addr, request *dhcpv4.DHCPv4, timeout time.Duration) (*dhcpv4.DHCPv4, error) {
	from := netip.Addr{}
	if to.IsValid() {
		from = c.lease.Address().Addr()
	}
	client, err := c.open(from)
	if err != nil {
		return nil, err
	}
	defer release(client)
	var dest *net.UDPAddr
	if to.IsValid() && !to.IsUnspecified() {
		dest = &net.UDPAddr{IP: to.AsSlice(), Port: dhcpv4.ServerPort}
	}
	return exchange(ctx, client, timeout, dest, request, dhcpv4.MessageTypeAck, dhcpv4.MessageTypeNak)
}

// answered handles the reply to a REQUEST for the current lease: ACK binds,
// NAK drops the address and starts over, silence keeps the lease until
// deadline.
func (c *dhcpClient) answered(ctx context.Context, s dhcpState, reply *dhcpv4.DHCPv4, err error, deadline time.Time) (dhcpState, bool) {
	switch {
	case reply != nil && reply.MessageType() == dhcpv4.MessageTypeAck:
		if err := c.acquired(&Lease{ACK: reply, Acquired: c.now()}); err != nil {
			return c.fail(ctx, s, err)
		}
		return stateBound, true
	case reply != nil:
		c.report(s, c.lease, fmt.Errorf("%s: %s: NAK from %s: %s", c.ifname, s, reply.ServerIdentifier(), reply.Message()))
		c.expire()
		return stateInit, true
	case c.now().Before(deadline) && c.now().Before(c.lease.Expiry()):
		c.report(s, c.lease, fmt.Errorf("%s: %s: %w", c.ifname, s, err))
		return stateBound, true
	default:
		c.expire()
		return stateInit, true
	}
}

// acquired binds a lease the server acknowledged.
func (c *dhcpClient) acquired(l *Lease) error {
	old := c.lease
	if err := c.bind(old, l); err != nil {
		return fmt.Errorf("%s: configure %s: %w", c.ifname, l.Address(), err)
	}
	c.lease = l
	return nil
}

// expire drops the lease and its address: it is no longer ours to use.
func (c *dhcpClient) expire() {
	if c.lease != nil {
		c.unbind(c.lease)
		c.lease = nil
	}
}

// fail reports err, pauses so a persistent error cannot spin, and falls back
// to a state that makes progress.
func (c *dhcpClient) fail(ctx context.Context, s dhcpState, err error) (dhcpState, bool) {
	c.report(s, c.lease, err)
	if _, up := c.waitUntil(ctx, c.now().Add(c.tryTimeout(len(c.tries))), s); !up {
		return stateInit, false
	}
	if c.lease != nil && c.now().Before(c.lease.Expiry()) {
		return stateRenewing, true
	}
	c.expire()
	return stateInit, true
}

// exchange sends p (to dest, or broadcast when nil) and waits up to timeout
// for a reply of one of the types.
func exchange(ctx context.Context, client *nclient4.Client, timeout time.Duration, dest *net.UDPAddr,
	p *dhcpv4.DHCPv4, types ...dhcpv4.MessageType) (*dhcpv4.DHCPv4, error) {
	if dest == nil {
		dest = &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ServerPort}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	reply, err := client.SendAndRead(ctx, dest, p, nclient4.IsMessageType(types[0], types[1:]...))
	if errors.Is(err, context.DeadlineExceeded) {
		return nil, fmt.Errorf("%w after %s", errNoAnswer, timeout)
	}
	return reply, err
}

var errNoAnswer = errors.New("no answer")

// newMessage is a BOOTREQUEST as dhcpv4.New makes it, but with a
// transaction id that does not wait for the kernel's entropy pool:
// dhcpv4.New reads it with getrandom(), which early in boot blocks until
// the pool is initialised (a second and more in a VM without virtio-rng,
// all of it before the first DISCOVER). The id only pairs replies with
// requests (RFC 2131 4.1); the runtime's generator, seeded at exec from
// the kernel's AT_RANDOM, is random enough for that.
func newMessage(mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	d := &dhcpv4.DHCPv4{
		OpCode:        dhcpv4.OpcodeBootRequest,
		HWType:        iana.HWTypeEthernet,
		ClientHWAddr:  make(net.HardwareAddr, 6),
		ClientIPAddr:  net.IPv4zero,
		YourIPAddr:    net.IPv4zero,
		ServerIPAddr:  net.IPv4zero,
		GatewayIPAddr: net.IPv4zero,
		Options:       make(dhcpv4.Options),
	}
	binary.BigEndian.PutUint32(d.TransactionID[:], rand.Uint32())
	for _, mod := range mods {
		mod(d)
	}
	return d
}

// release closes the client off the hot path: closing a raw packet socket
// waits for its reader to stop, ~10 ms that would otherwise sit between the
// ACK and the address being configured.
func release(client *nclient4.Client) { go client.Close() }

func isNoAnswer(err error) bool {
	return errors.Is(err, errNoAnswer) || errors.Is(err, nclient4.ErrNoResponse)
}
