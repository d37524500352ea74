package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"nodenet/lan"
)

// MaxBody bounds a request body: settings and join requests are small.
const MaxBody = 64 << 10

// drainBody: a body announced over MaxBody but no larger than this is read
// and dropped before the 413, as net/http drains what a handler left.
const drainBody = 256 << 10

// readBody reads at most MaxBody bytes; a larger body is a 413. A body
// announced over drainBody is refused before any of it is read, so a
// client that claims a gigabyte and sends a few bytes does not hold the
// request open until the read timeout.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	tooLarge := &statusError{http.StatusRequestEntityTooLarge, lan.Invalid,
		fmt.Sprintf("request body: larger than %d KiB", MaxBody>>10)}
	if r.ContentLength > MaxBody {
		if r.ContentLength <= drainBody {
			// Read it first: a client still writing the body when the
			// connection closes sees a broken pipe, not the answer.
			io.Copy(io.Discard, io.LimitReader(r.Body, r.ContentLength))
		}
		return nil, tooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, tooLarge
	}
	if err != nil {
		return nil, lan.Errorf(lan.Invalid, "request body: %w", err)
	}
	return body, nil
}

// decodeSettings reads the body of POST /v1/networks: Settings with a
// valid name and a type (which has no default).
func decodeSettings(body []byte) (lan.Settings, error) {
	var req struct {
		lan.Settings
		Type *lan.NetworkType `json:"type"` // shadows Settings.Type to see it is there
	}
	if err := decodeStrict(body, &req); err != nil {
		return lan.Settings{}, err
	}
	s := req.Settings
	if req.Type == nil {
		return s, lan.Errorf(lan.Invalid, "settings: type is required (bridge, vlan, vxlan, macvlan, passthrough or zerotier)")
	}
	s.Type = *req.Type
	if s.Name == "" {
		return s, lan.Errorf(lan.Invalid, "settings: name is required")
	}
	return s, lan.ValidNetworkName(s.Name)
}

// decodeJoin reads the body of POST /v1/networks/{name}/members.
func decodeJoin(body []byte) (JoinRequest, error) {
	var req JoinRequest
	if err := decodeStrict(body, &req); err != nil {
		return req, err
	}
	if req.NIC != "" {
		if err := lan.ValidNIC(req.NIC); err != nil {
			return req, lan.Errorf(lan.Invalid, "nic: %w", err)
		}
	}
	if req.Ifname != "" {
		if err := lan.ValidNIC(req.Ifname); err != nil {
			return req, lan.Errorf(lan.Invalid, "ifname: %w", err)
		}
	}
	// The rest as Join reads it, so that a malformed join never reaches the
	// backend (whether the netns exists is Join's to say).
	if req.Netns != "" {
		if err := lan.ValidNetns(req.Netns); err != nil {
			return req, err
		}
	}
	if err := lan.ValidMAC(req.MAC); err != nil {
		return req, err
	}
	return req, lan.ValidPorts(req.Ports)
}

// decodeStrict decodes exactly one JSON object into v: unknown fields and
// anything after the object are errors.
func decodeStrict(body []byte, v any) error {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return lan.Errorf(lan.Invalid, "request body: empty; want a JSON object")
	}
	if trimmed[0] != '{' {
		return lan.Errorf(lan.Invalid, "request body: want a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return bodyError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return lan.Errorf(lan.Invalid, "request body: data after the JSON object (at byte %d)", dec.InputOffset())
	}
	return duplicateKeys(body)
}

// bodyError turns encoding/json's errors into sentences.
func bodyError(err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return lan.Errorf(lan.Invalid, "request body: invalid JSON at byte %d: %s", syntax.Offset, syntax.Error())
	case errors.As(err, &typ):
		return lan.Errorf(lan.Invalid, "request body: %s: want %s, not %s", orWhole(typ.Field), typ.Type, typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return lan.Errorf(lan.Invalid, "request body: JSON ends early")
	case lan.CodeOf(err) == lan.Invalid: // a type name the lan package refused
		return lan.Errorf(lan.Invalid, "request body: %w", err)
	}
	// Unknown fields come as a plain `json: unknown field "x"`.
	return lan.Errorf(lan.Invalid, "request body: %s", strings.TrimPrefix(err.Error(), "json: "))
}

// orWhole names a field as the JSON spells it: encoding/json puts the Go
// name of an embedded struct in front.
func orWhole(field string) string {
	field = strings.TrimPrefix(strings.TrimPrefix(field, "Settings."), "JoinOptions.")
	if field == "" {
		return "the body"
	}
	return "field " + field
}
