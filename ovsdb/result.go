package ovsdb

import (
	"encoding/json"
	"errors"
	"fmt"
)

// OpResult is the result of one operation: Count for update, mutate and
// delete, UUID for insert, Rows for select.
type OpResult struct {
	Count int
	UUID  UUID
	Rows  []Row
}

// opResult is the wire form; Error is set when the operation failed.
type opResult struct {
	Count   int             `json:"count"`
	UUID    json.RawMessage `json:"uuid"`
	Rows    []Row           `json:"rows"`
	Error   string          `json:"error"`
	Details string          `json:"details"`
}

// TransactError says which operation of a transaction failed and why.
// Index is the failed operation's position, or -1 when every operation
// succeeded and the commit failed (e.g. a unique-index violation), which
// RFC 7047 reports as an extra result after the last operation.
type TransactError struct {
	Index   int
	Op      string // "insert", "mutate", ...; "commit" when Index is -1
	Table   string
	Err     string // "constraint violation", "timed out", ...
	Details string
}

func (e *TransactError) Error() string {
	where := "commit"
	if e.Index >= 0 {
		where = fmt.Sprintf("operation %d (%s %s)", e.Index, e.Op, e.Table)
	}
	if e.Details == "" {
		return fmt.Sprintf("ovsdb transaction: %s: %s", where, e.Err)
	}
	return fmt.Sprintf("ovsdb transaction: %s: %s: %s", where, e.Err, e.Details)
}

// RPCError is an error answer to a whole request (e.g. "unknown database").
type RPCError struct {
	Method string
	Err    string
	Detail string
}

func (e *RPCError) Error() string {
	if e.Detail == "" {
		return fmt.Sprintf("ovsdb %s: %s", e.Method, e.Err)
	}
	return fmt.Sprintf("ovsdb %s: %s: %s", e.Method, e.Err, e.Detail)
}

// ErrDisconnected is returned by calls on a connection that closed.
var ErrDisconnected = errors.New("ovsdb: not connected")

// transactResults turns the wire results into OpResults or the first error.
func transactResults(ops []Operation, raw []*opResult) ([]OpResult, error) {
	out := make([]OpResult, 0, len(ops))
	for i, r := range raw {
		if r == nil {
			continue // not executed: an earlier operation failed
		}
		if r.Error != "" {
			return nil, transactError(ops, i, r)
		}
		if i >= len(ops) {
			break
		}
		res, err := r.result()
		if err != nil {
			return nil, fmt.Errorf("ovsdb transaction: operation %d result: %w", i, err)
		}
		out = append(out, res)
	}
	if len(out) != len(ops) {
		return nil, fmt.Errorf("ovsdb transaction: %d results for %d operations", len(out), len(ops))
	}
	return out, nil
}

func transactError(ops []Operation, i int, r *opResult) *TransactError {
	if i >= len(ops) {
		return &TransactError{Index: -1, Op: "commit", Err: r.Error, Details: r.Details}
	}
	return &TransactError{Index: i, Op: ops[i].Op, Table: ops[i].Table, Err: r.Error, Details: r.Details}
}

func (r *opResult) result() (OpResult, error) {
	res := OpResult{Count: r.Count, Rows: r.Rows}
	if len(r.UUID) > 0 {
		v, err := DecodeValue(r.UUID)
		if err != nil {
			return res, fmt.Errorf("uuid: %w", err)
		}
		u, ok := v.(UUID)
		if !ok {
			return res, fmt.Errorf("uuid: %s is not a uuid", r.UUID)
		}
		res.UUID = u
	}
	return res, nil
}
