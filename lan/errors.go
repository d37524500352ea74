package lan

import (
	"errors"
	"fmt"

	"nodenet/ovsdb"
)

// Code classifies an error for the API: each maps to one HTTP status.
type Code string

// The error codes of DESIGN.md.
const (
	Invalid     Code = "invalid"     // 400
	NotFound    Code = "not_found"   // 404
	Conflict    Code = "conflict"    // 409
	Unsupported Code = "unsupported" // 422
	Internal    Code = "internal"    // 500
)

// Error is a typed error: a sentence for humans and a code for programs.
type Error struct {
	Code Code
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Errorf makes a typed error; %w wraps as in fmt.Errorf.
func Errorf(code Code, format string, args ...any) error {
	return &Error{Code: code, Err: fmt.Errorf(format, args...)}
}

// Unavailable reports whether err comes from Open vSwitch's database being
// out of reach (restarting, say): the same request may well succeed when
// retried, which the API says with a 503.
func Unavailable(err error) bool { return errors.Is(err, ovsdb.ErrDisconnected) }

// CodeOf is err's code: Internal for an untyped error, "" for nil.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}
