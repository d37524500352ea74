// Package api serves nodenet's control socket (HTTP/1.1 + JSON on a unix socket) and is its Go client.
package api

import "nodenet/boot"

// Status is the body of GET /v1/status.
type Status struct {
	Version string              `json:"version"`
	Uplinks []boot.UplinkStatus `json:"uplinks"`
}

// Error is the body of every non-2xx answer.
type Error struct {
	Message string `json:"error"`
	Code    string `json:"code"` // invalid, not_found, conflict, unsupported, internal
}

func (e *Error) Error() string { return e.Message }
