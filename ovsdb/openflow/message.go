// Package openflow is a minimal OpenFlow 1.3 client for an Open vSwitch
// bridge's management socket: hello, echo, flow mods and barriers.
package openflow

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Version13 is the wire version of OpenFlow 1.3, the only one spoken.
const Version13 = 0x04

// HeaderLen is the size of ofp_header, which starts every message.
const HeaderLen = 8

// Message types (ofp_type) this package sends or reads.
const (
	TypeHello          = 0
	TypeError          = 1
	TypeEchoRequest    = 2
	TypeEchoReply      = 3
	TypeFlowMod        = 14
	TypeBarrierRequest = 20
	TypeBarrierReply   = 21
)

// Message is one OpenFlow message: its header's fields and the bytes
// after the header.
type Message struct {
	Version uint8
	Type    uint8
	XID     uint32
	Body    []byte
}

// ErrShortMessage is a header whose length is below the header's own.
var ErrShortMessage = errors.New("openflow: message length below 8")

// ReadMessage reads one message. The header's length bounds the read
// (at most 64 KiB), so a peer cannot make it allocate more.
func ReadMessage(r io.Reader) (Message, error) {
	var h [HeaderLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return Message{}, err
	}
	n := int(binary.BigEndian.Uint16(h[2:4]))
	if n < HeaderLen {
		return Message{}, fmt.Errorf("%w: type %d, length %d", ErrShortMessage, h[1], n)
	}
	m := Message{Version: h[0], Type: h[1], XID: binary.BigEndian.Uint32(h[4:8]), Body: make([]byte, n-HeaderLen)}
	if _, err := io.ReadFull(r, m.Body); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return Message{}, fmt.Errorf("openflow: type %d message of %d bytes: %w", m.Type, n, err)
	}
	return m, nil
}

// Marshal returns the message on the wire; the body must fit the 16-bit
// length.
func (m Message) Marshal() ([]byte, error) {
	n := HeaderLen + len(m.Body)
	if n > 0xffff {
		return nil, fmt.Errorf("openflow: type %d message of %d bytes: over 65535", m.Type, n)
	}
	b := make([]byte, HeaderLen, n)
	b[0], b[1] = m.Version, m.Type
	binary.BigEndian.PutUint16(b[2:4], uint16(n))
	binary.BigEndian.PutUint32(b[4:8], m.XID)
	return append(b, m.Body...), nil
}

// helloElemVersionBitmap is OFPHET_VERSIONBITMAP.
const helloElemVersionBitmap = 1

// Hello is OFPT_HELLO offering the versions whose bits are set in the
// bitmap (bit n: wire version n), with the header's version the highest.
func Hello(xid uint32, versions ...uint8) Message {
	var bitmap uint32
	high := uint8(0)
	for _, v := range versions {
		bitmap |= 1 << v
		high = max(high, v)
	}
	// One element: type, length 8, one bitmap word; already 8-aligned.
	body := make([]byte, 8)
	binary.BigEndian.PutUint16(body[0:2], helloElemVersionBitmap)
	binary.BigEndian.PutUint16(body[2:4], 8)
	binary.BigEndian.PutUint32(body[4:8], bitmap)
	return Message{Version: high, Type: TypeHello, XID: xid, Body: body}
}

// HelloVersions returns the versions a peer's hello offers: its bitmap
// when it sends one, else every version up to its header's (OpenFlow
// 1.3.5, 7.5.1: the older negotiation).
func HelloVersions(m Message) ([]uint8, error) {
	b := m.Body
	for len(b) >= 4 {
		typ, n := binary.BigEndian.Uint16(b[0:2]), int(binary.BigEndian.Uint16(b[2:4]))
		if n < 4 || n > len(b) {
			return nil, fmt.Errorf("openflow: hello element type %d: length %d of %d bytes left", typ, n, len(b))
		}
		if typ == helloElemVersionBitmap {
			var out []uint8
			for w := 0; 4+4*w+4 <= n; w++ {
				word := binary.BigEndian.Uint32(b[4+4*w:])
				for bit := range 32 {
					if word&(1<<bit) != 0 && 32*w+bit <= 0xff {
						out = append(out, uint8(32*w+bit))
					}
				}
			}
			return out, nil
		}
		// Elements are padded to 8 bytes; the last one may lack its padding.
		b = b[min(len(b), (n+7)/8*8):]
	}
	var out []uint8
	for v := uint8(1); v <= m.Version && v != 0; v++ {
		out = append(out, v)
	}
	return out, nil
}

// Negotiate returns the highest version both offers share.
func Negotiate(ours, theirs []uint8) (uint8, bool) {
	best, ok := uint8(0), false
	for _, a := range ours {
		for _, b := range theirs {
			if a == b && a >= best {
				best, ok = a, true
			}
		}
	}
	return best, ok
}
