package openflow

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
)

// unhex reads hex with spaces and newlines between bytes, as the
// expectations below are written (one structure field per group).
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func wantBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s:\n got  %x\n want %x", what, got, want)
	}
}

// Expected bytes are laid out from OpenFlow 1.3.5: ofp_header (7.1),
// ofp_hello with OFPHET_VERSIONBITMAP (7.5.1), OFPT_BARRIER_REQUEST
// (7.3.8).
func TestHelloAndBarrierEncoding(t *testing.T) {
	hello, err := Hello(1, Version13).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	wantBytes(t, "hello", hello, unhex(t, `
		04 00 0010 00000001
		0001 0008 00000010`)) // element type 1, length 8, bitmap bit 4
	barrier, _ := Message{Version: Version13, Type: TypeBarrierRequest, XID: 7}.Marshal()
	wantBytes(t, "barrier", barrier, unhex(t, "04 14 0008 00000007"))
}

func TestReadMessage(t *testing.T) {
	stream := unhex(t, `
		04 02 000c 0000002a 61626364
		04 15 0008 0000002b`)
	r := bytes.NewReader(stream)
	m, err := ReadMessage(r)
	if err != nil || m.Type != TypeEchoRequest || m.XID != 42 || string(m.Body) != "abcd" {
		t.Fatalf("first: %+v, %v", m, err)
	}
	m, err = ReadMessage(r)
	if err != nil || m.Type != TypeBarrierReply || m.XID != 43 || len(m.Body) != 0 {
		t.Fatalf("second: %+v, %v", m, err)
	}
	if _, err := ReadMessage(r); err != io.EOF {
		t.Errorf("at the end: %v, want EOF", err)
	}
	for _, c := range []struct{ name, in string }{
		{"length below the header", "04 02 0004 00000001"},
		{"body cut short", "04 02 0010 00000001 6162"},
		{"header cut short", "04 02 00"},
	} {
		_, err := ReadMessage(bytes.NewReader(unhex(t, c.in)))
		if err == nil || err == io.EOF {
			t.Errorf("%s: %v, want an error", c.name, err)
		}
	}
	if _, err := ReadMessage(bytes.NewReader(unhex(t, "04 02 0004 00000001"))); !errors.Is(err, ErrShortMessage) {
		t.Errorf("short: %v", err)
	}
}

func TestHelloVersions(t *testing.T) {
	for _, c := range []struct {
		name string
		msg  string
		want []uint8
	}{
		// What Open vSwitch 3.1 sends with an empty protocols column.
		{"bitmap 1.0-1.5", "06 00 0010 00000001 0001 0008 0000007e", []uint8{1, 2, 3, 4, 5, 6}},
		{"bitmap 1.0 and 1.3", "04 00 0010 00000001 0001 0008 00000012", []uint8{1, 4}},
		{"no element: up to the header's", "04 00 0008 00000001", []uint8{1, 2, 3, 4}},
		{"unknown element first", "04 00 0018 00000001 0009 0006 aabb 0000 0001 0008 00000010", []uint8{4}},
		{"bitmap element without padding", "04 00 000c 00000001 0001 0004", nil},
	} {
		m, err := ReadMessage(bytes.NewReader(unhex(t, c.msg)))
		if err != nil {
			t.Fatal(err)
		}
		got, err := HelloVersions(m)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, %v; want %v", c.name, got, err, c.want)
		}
	}
	bad := Message{Version: 4, Type: TypeHello, Body: unhex(t, "0001 0010 00000010")}
	if _, err := HelloVersions(bad); err == nil {
		t.Errorf("element longer than the message: no error")
	}
}

func TestNegotiate(t *testing.T) {
	if v, ok := Negotiate([]uint8{4}, []uint8{1, 2, 3, 4, 5, 6}); !ok || v != 4 {
		t.Errorf("1.3 against 1.0-1.5: %d %v", v, ok)
	}
	if _, ok := Negotiate([]uint8{4}, []uint8{1}); ok {
		t.Errorf("1.3 against 1.0 only: agreed")
	}
}

func TestErrorNames(t *testing.T) {
	m, _ := ReadMessage(bytes.NewReader(unhex(t, "04 01 0014 00000009 0004 0009 04 0e 0070 00000009")))
	e, err := ParseError(m)
	if err != nil {
		t.Fatal(err)
	}
	if e.XID != 9 || e.Type != 4 || e.Code != 9 || len(e.Data) != 8 {
		t.Errorf("parsed %+v", e)
	}
	if got, want := e.Error(), "OpenFlow error OFPET_BAD_MATCH/OFPBMC_BAD_PREREQ (type 4, code 9)"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	for _, c := range []struct {
		typ, code uint16
		want      string
	}{
		{5, 1, "OFPET_FLOW_MOD_FAILED/OFPFMFC_TABLE_FULL"},
		{2, 4, "OFPET_BAD_ACTION/OFPBAC_BAD_OUT_PORT"},
		{1, 5, "OFPET_BAD_REQUEST/OFPBRC_EPERM"},
		{0, 0, "OFPET_HELLO_FAILED/OFPHFC_INCOMPATIBLE"},
		{12, 3, "OFPET_METER_MOD_FAILED/code 3"},
		{0xffff, 1, "OFPET_EXPERIMENTER/code 1"},
		{99, 1, "type 99/code 1"},
	} {
		if got := (&Error{Type: c.typ, Code: c.code}).Error(); !strings.Contains(got, c.want) {
			t.Errorf("type %d code %d: %q, want %q", c.typ, c.code, got, c.want)
		}
	}
	if _, err := ParseError(Message{Type: TypeError, Body: []byte{0, 1}}); err == nil {
		t.Errorf("error body of 2 bytes parsed")
	}
}
