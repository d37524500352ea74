package ovsdb

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// decodeResults decodes a transact result array as Transact does.
func decodeResults(t *testing.T, s string) []*opResult {
	t.Helper()
	var raw []*opResult
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		t.Fatalf("result %s: %v", s, err)
	}
	return raw
}

func TestTransactResults(t *testing.T) {
	three := []Operation{
		Insert("Interface", Row{"name": "p1"}, "iface"),
		Insert("Port", Row{"name": "p1", "interfaces": NamedUUID("iface")}, "port"),
		Mutate("Bridge", []Mutation{InsertInto("ports", NamedUUID("port"))}, Eq("name", "br0")),
	}
	for _, tt := range []struct {
		name    string
		ops     []Operation
		result  string
		want    []OpResult
		wantErr *TransactError // nil: no TransactError expected
		anyErr  string         // a substring of a non-TransactError error
	}{
		{
			name:   "success",
			ops:    three,
			result: `[{"uuid":["uuid","` + uuid1 + `"]},{"uuid":["uuid","` + uuid2 + `"]},{"count":1}]`,
			want:   []OpResult{{UUID: uuid1}, {UUID: uuid2}, {Count: 1}},
		},
		{
			name: "select, update, delete, comment, wait",
			ops: []Operation{Select("Bridge", []string{"name"}), Update("Bridge", Row{}), Delete("Port"),
				Comment("x"), Wait("Bridge", 0, nil, []string{"name"}, "==")},
			result: `[{"rows":[{"name":"br0","_uuid":["uuid","` + uuid1 + `"]},{"name":"br1"}]},{"count":2},{"count":0},{},{}]`,
			want: []OpResult{{Rows: []Row{{"name": "br0", "_uuid": UUID(uuid1)}, {"name": "br1"}}},
				{Count: 2}, {Count: 0}, {}, {}},
		},
		{
			name:   "no operations",
			ops:    nil,
			result: `[]`,
			want:   []OpResult{},
		},
		{
			name:    "first operation fails, later ones are not run",
			ops:     three,
			result:  `[{"error":"constraint violation","details":"name must be unique"},null,null]`,
			wantErr: &TransactError{Index: 0, Op: "insert", Table: "Interface", Err: "constraint violation", Details: "name must be unique"},
		},
		{
			name:    "last operation fails",
			ops:     three,
			result:  `[{"uuid":["uuid","` + uuid1 + `"]},{"uuid":["uuid","` + uuid2 + `"]},{"error":"referential integrity violation"}]`,
			wantErr: &TransactError{Index: 2, Op: "mutate", Table: "Bridge", Err: "referential integrity violation"},
		},
		{
			name:    "middle operation fails",
			ops:     three,
			result:  `[{"uuid":["uuid","` + uuid1 + `"]},{"error":"timed out"},null]`,
			wantErr: &TransactError{Index: 1, Op: "insert", Table: "Port", Err: "timed out"},
		},
		{
			// RFC 7047 4.1.3: every operation succeeded, the commit did not;
			// the error is one element past the last operation.
			name: "commit fails",
			ops:  three,
			result: `[{"uuid":["uuid","` + uuid1 + `"]},{"uuid":["uuid","` + uuid2 + `"]},{"count":1},
				{"error":"constraint violation","details":"Transaction causes multiple rows in \"Bridge\" table to have identical values (\"br0\") for index on column \"name\"."}]`,
			wantErr: &TransactError{Index: -1, Op: "commit", Err: "constraint violation",
				Details: `Transaction causes multiple rows in "Bridge" table to have identical values ("br0") for index on column "name".`},
		},
		{
			name:    "commit fails, single operation",
			ops:     []Operation{Comment("x")},
			result:  `[{},{"error":"not owner"}]`,
			wantErr: &TransactError{Index: -1, Op: "commit", Err: "not owner"},
		},
		{
			name:   "a trailing null is not an error",
			ops:    []Operation{Delete("Port")},
			result: `[{"count":3},null]`,
			want:   []OpResult{{Count: 3}},
		},
		{
			name:   "a trailing element without an error is ignored",
			ops:    []Operation{Delete("Port")},
			result: `[{"count":3},{"count":9}]`,
			want:   []OpResult{{Count: 3}},
		},
		{
			name:   "short result",
			ops:    three,
			result: `[{"uuid":["uuid","` + uuid1 + `"]}]`,
			anyErr: "1 results for 3 operations",
		},
		{
			name:   "empty result",
			ops:    three,
			result: `[]`,
			anyErr: "0 results for 3 operations",
		},
		{
			name:   "null result",
			ops:    three,
			result: `null`,
			anyErr: "0 results for 3 operations",
		},
		{
			name:   "nulls without an error",
			ops:    three,
			result: `[{"uuid":["uuid","` + uuid1 + `"]},null,null]`,
			anyErr: "1 results for 3 operations",
		},
		{
			name:   "uuid that is not a uuid",
			ops:    three[:1],
			result: `[{"uuid":"` + uuid1 + `"}]`,
			anyErr: "operation 0 result: uuid",
		},
		{
			name:   "uuid that is a named-uuid",
			ops:    three[:1],
			result: `[{"uuid":["named-uuid","x"]}]`,
			anyErr: "is not a uuid",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := transactResults(tt.ops, decodeResults(t, tt.result))
			switch {
			case tt.wantErr != nil:
				var te *TransactError
				if !errors.As(err, &te) {
					t.Fatalf("error %v, want a *TransactError", err)
				}
				if !reflect.DeepEqual(te, tt.wantErr) {
					t.Errorf("error\n got %#v\nwant %#v", te, tt.wantErr)
				}
				if got != nil {
					t.Errorf("results %+v with an error", got)
				}
			case tt.anyErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.anyErr) {
					t.Fatalf("error %v, want one saying %q", err, tt.anyErr)
				}
				var te *TransactError
				if errors.As(err, &te) {
					t.Errorf("error %v is a *TransactError; the server said nothing failed", err)
				}
			default:
				if err != nil {
					t.Fatalf("error %v", err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("results\n got %#v\nwant %#v", got, tt.want)
				}
			}
		})
	}
}

// A result row that is not valid OVSDB fails the whole result array.
func TestTransactResultsBadRow(t *testing.T) {
	var raw []*opResult
	err := json.Unmarshal([]byte(`[{"rows":[{"name":["set",[["set",[]]]]}]}]`), &raw)
	if err == nil {
		t.Fatalf("decoded a row with a nested set: %+v", raw[0].Rows)
	}
}

func TestTransactErrorMessage(t *testing.T) {
	for _, tt := range []struct {
		err  *TransactError
		want string
	}{
		{&TransactError{Index: 1, Op: "insert", Table: "Port", Err: "constraint violation", Details: "no"},
			"ovsdb transaction: operation 1 (insert Port): constraint violation: no"},
		{&TransactError{Index: 0, Op: "wait", Table: "Open_vSwitch", Err: "timed out"},
			"ovsdb transaction: operation 0 (wait Open_vSwitch): timed out"},
		{&TransactError{Index: -1, Op: "commit", Err: "constraint violation", Details: "duplicate name"},
			"ovsdb transaction: commit: constraint violation: duplicate name"},
	} {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

// An error answer is a string or an <error> object (RFC 7047 3.1, 4.1).
func TestRPCError(t *testing.T) {
	for _, tt := range []struct {
		raw  string
		want *RPCError
		msg  string
	}{
		{`"unknown method"`, &RPCError{Method: "m", Err: "unknown method"}, "ovsdb m: unknown method"},
		{`{"error":"unknown database","details":"get_schema request specifies unknown database nope"}`,
			&RPCError{Method: "m", Err: "unknown database", Detail: "get_schema request specifies unknown database nope"},
			"ovsdb m: unknown database: get_schema request specifies unknown database nope"},
		{`{"error":"syntax error"}`, &RPCError{Method: "m", Err: "syntax error"}, "ovsdb m: syntax error"},
		{`{"details":"x"}`, &RPCError{Method: "m", Err: `{"details":"x"}`}, `ovsdb m: {"details":"x"}`},
		{`42`, &RPCError{Method: "m", Err: "42"}, "ovsdb m: 42"},
	} {
		err := decodeResponse("m", response{err: json.RawMessage(tt.raw)}, nil)
		var re *RPCError
		if !errors.As(err, &re) {
			t.Errorf("error %s: got %v, want an *RPCError", tt.raw, err)
			continue
		}
		if !reflect.DeepEqual(re, tt.want) {
			t.Errorf("error %s\n got %#v\nwant %#v", tt.raw, re, tt.want)
		}
		if re.Error() != tt.msg {
			t.Errorf("error %s: message %q, want %q", tt.raw, re.Error(), tt.msg)
		}
	}
	// A null error is no error.
	var out []string
	if err := decodeResponse("m", response{result: json.RawMessage(`["a"]`), err: json.RawMessage(`null`)}, &out); err != nil || !reflect.DeepEqual(out, []string{"a"}) {
		t.Errorf("null error: %v, %v", out, err)
	}
}
