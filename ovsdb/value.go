// Package ovsdb is an RFC 7047 client for ovsdb-server and the Open_vSwitch
// helpers nodenet needs: bridges, ports and interfaces it owns.
package ovsdb

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
)

// Values in rows, conditions and mutations are Go values:
//
//	string, int64, float64, bool  atoms (int and other integers are accepted when encoding)
//	UUID                          ["uuid", "…"]
//	NamedUUID                     ["named-uuid", "…"], names an insert in the same transaction
//	Set                           ["set", […]]
//	Map                           ["map", [[k, v], …]]
//
// Decoding without the schema cannot tell a one-element set from its atom,
// so readers of set columns accept both (see the typed rows in vswitch.go).

// UUID is a row's identity.
type UUID string

// NamedUUID refers to the row an insert with that uuid-name makes in the
// same transaction.
type NamedUUID string

// Set is an OVSDB set of atoms.
type Set []any

// Map is an OVSDB map. Keys are atoms (string, int64, UUID, ...).
type Map map[any]any

// Row is a row as column → value.
type Row map[string]any

// MarshalJSON encodes ["uuid", id].
func (u UUID) MarshalJSON() ([]byte, error) { return pair("uuid", string(u)) }

// MarshalJSON encodes ["named-uuid", name].
func (n NamedUUID) MarshalJSON() ([]byte, error) { return pair("named-uuid", string(n)) }

func pair(tag string, v any) ([]byte, error) { return json.Marshal([2]any{tag, v}) }

// MarshalJSON encodes ["set", [...]]. A nil set is the empty set.
func (s Set) MarshalJSON() ([]byte, error) {
	if s == nil {
		s = Set{}
	}
	return pair("set", []any(s))
}

// MarshalJSON encodes ["map", [[k, v], ...]] with keys in a stable order.
func (m Map) MarshalJSON() ([]byte, error) {
	pairs := make([][2]any, 0, len(m))
	for k, v := range m {
		pairs = append(pairs, [2]any{k, v})
	}
	sort.Slice(pairs, func(i, j int) bool {
		return sortKey(pairs[i][0]) < sortKey(pairs[j][0])
	})
	return pair("map", pairs)
}

// sortKey orders map keys; the type is part of it so that keys of
// different types that print alike still sort the same way every time.
func sortKey(k any) string { return fmt.Sprintf("%T:%v", k, k) }

// UnmarshalJSON decodes a row, each column with DecodeValue.
func (r *Row) UnmarshalJSON(data []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return fmt.Errorf("row: %w", err)
	}
	row := make(Row, len(raw))
	for col, v := range raw {
		val, err := DecodeValue(v)
		if err != nil {
			return fmt.Errorf("column %q: %w", col, err)
		}
		row[col] = val
	}
	*r = row
	return nil
}

// DecodeValue decodes one OVSDB value (an atom, set or map) from its JSON.
func DecodeValue(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return value(v)
}

// value converts what encoding/json produced (with UseNumber) into the Go
// values listed above.
func value(v any) (any, error) {
	arr, ok := v.([]any)
	if !ok {
		return atom(v)
	}
	if len(arr) != 2 {
		return nil, fmt.Errorf("value %v: want a 2-element [tag, value] array", v)
	}
	tag, _ := arr[0].(string)
	switch tag {
	case "uuid", "named-uuid":
		return uuidValue(tag, arr[1])
	case "set":
		return setValue(arr[1])
	case "map":
		return mapValue(arr[1])
	}
	return nil, fmt.Errorf("value %v: unknown tag %v", v, arr[0])
}

func atom(v any) (any, error) {
	switch x := v.(type) {
	case string, bool:
		return x, nil
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return i, nil
		}
		f, err := x.Float64()
		if err != nil {
			return nil, fmt.Errorf("number %s: %w", x, err)
		}
		return f, nil
	case []any:
		if len(x) == 2 && (x[0] == "uuid" || x[0] == "named-uuid") {
			return uuidValue(x[0].(string), x[1])
		}
	}
	return nil, fmt.Errorf("atom %v: not a string, number, boolean or uuid", v)
}

func uuidValue(tag string, v any) (any, error) {
	s, ok := v.(string)
	if !ok {
		return nil, fmt.Errorf("%s: %v is not a string", tag, v)
	}
	if tag == "named-uuid" {
		if !isIdentifier(s) {
			return nil, fmt.Errorf("named-uuid %q: not an identifier", s)
		}
		return NamedUUID(s), nil
	}
	return UUID(s), nil
}

// isIdentifier: RFC 7047 <id>, [a-zA-Z_][a-zA-Z0-9_]*.
func isIdentifier(s string) bool {
	for i, r := range s {
		letter := r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')
		if !letter && (i == 0 || r < '0' || r > '9') {
			return false
		}
	}
	return s != ""
}

func setValue(v any) (Set, error) {
	elems, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("set: %v is not an array", v)
	}
	set := make(Set, 0, len(elems))
	for _, e := range elems {
		a, err := atom(e)
		if err != nil {
			return nil, fmt.Errorf("set element: %w", err)
		}
		set = append(set, a)
	}
	return set, nil
}

func mapValue(v any) (Map, error) {
	pairs, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("map: %v is not an array", v)
	}
	m := make(Map, len(pairs))
	for _, p := range pairs {
		kv, ok := p.([]any)
		if !ok || len(kv) != 2 {
			return nil, fmt.Errorf("map: pair %v is not [key, value]", p)
		}
		k, err := atom(kv[0])
		if err != nil {
			return nil, fmt.Errorf("map key: %w", err)
		}
		val, err := atom(kv[1])
		if err != nil {
			return nil, fmt.Errorf("map value: %w", err)
		}
		m[k] = val
	}
	return m, nil
}
