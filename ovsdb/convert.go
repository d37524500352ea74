package ovsdb

// Readers for decoded values. Set columns arrive as a bare atom when they
// hold one element (RFC 7047 5.1), so the set readers accept both.

// String returns v as a string, "" when it is not one (or an empty set).
func String(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case Set:
		if len(x) == 1 {
			return String(x[0])
		}
	}
	return ""
}

// Int returns v as an int64 and whether it held one (optional integer
// columns are sets of zero or one element).
func Int(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case Set:
		if len(x) == 1 {
			return Int(x[0])
		}
	}
	return 0, false
}

// Ints returns the integers of a set column.
func Ints(v any) []int64 { return setElements[int64](v) }

// UUIDs returns the UUIDs of a set column.
func UUIDs(v any) []UUID { return setElements[UUID](v) }

// Strings returns the strings of a set column.
func Strings(v any) []string { return setElements[string](v) }

// setElements returns the elements of a set column that are of type T.
func setElements[T any](v any) []T {
	var out []T
	for _, e := range elements(v) {
		if t, ok := e.(T); ok {
			out = append(out, t)
		}
	}
	return out
}

// StringMap returns a string→string map column (external_ids, options, ...).
func StringMap(v any) map[string]string {
	m, _ := v.(Map)
	out := make(map[string]string, len(m))
	for k, val := range m {
		ks, kok := k.(string)
		vs, vok := val.(string)
		if kok && vok {
			out[ks] = vs
		}
	}
	return out
}

// MapOf makes an OVSDB map from a string map.
func MapOf(m map[string]string) Map {
	out := make(Map, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// SetOf makes an OVSDB set from a slice.
func SetOf[T any](elems ...T) Set {
	s := make(Set, 0, len(elems))
	for _, e := range elems {
		s = append(s, e)
	}
	return s
}

func elements(v any) []any {
	switch x := v.(type) {
	case nil:
		return nil
	case Set:
		return x
	default:
		return []any{x}
	}
}
