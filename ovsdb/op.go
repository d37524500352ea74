package ovsdb

import "encoding/json"

// Operation is one element of a transact request (RFC 7047 5.2). Build it
// with Insert, Select, Update, Mutate, Delete, Wait, Comment or Assert.
type Operation struct {
	Op        string
	Table     string
	Row       Row
	Rows      []Row
	Where     []Condition
	Mutations []Mutation
	Columns   []string
	UUIDName  string
	Until     string
	Timeout   *int
	Comment   string
	Lock      string
}

// Condition is [column, function, value]: "==", "!=", "<", "<=", ">", ">=",
// "includes", "excludes".
type Condition struct {
	Column, Function string
	Value            any
}

// Mutation is [column, mutator, value]: "+=", "-=", "*=", "/=", "%=",
// "insert", "delete".
type Mutation struct {
	Column, Mutator string
	Value           any
}

// Eq is the condition column == value.
func Eq(column string, value any) Condition { return Condition{column, "==", value} }

// Includes is the condition "column includes value" (sets and maps).
func Includes(column string, value any) Condition { return Condition{column, "includes", value} }

// WhereUUID selects the row with that UUID.
func WhereUUID(u UUID) []Condition { return []Condition{Eq("_uuid", u)} }

// InsertInto adds to a set or map column without rewriting it.
func InsertInto(column string, value any) Mutation { return Mutation{column, "insert", value} }

// DeleteFrom removes from a set or map column without rewriting it. For a
// map, value may be a Set of keys or a Map of exact pairs.
func DeleteFrom(column string, value any) Mutation { return Mutation{column, "delete", value} }

// Add is column += n.
func Add(column string, n int64) Mutation { return Mutation{column, "+=", n} }

// MarshalJSON encodes [column, function, value].
func (c Condition) MarshalJSON() ([]byte, error) {
	return json.Marshal([3]any{c.Column, c.Function, c.Value})
}

// MarshalJSON encodes [column, mutator, value].
func (m Mutation) MarshalJSON() ([]byte, error) {
	return json.Marshal([3]any{m.Column, m.Mutator, m.Value})
}

// Insert inserts row into table; uuidName (may be empty) lets later
// operations of the same transaction refer to it as NamedUUID(uuidName).
func Insert(table string, row Row, uuidName string) Operation {
	return Operation{Op: "insert", Table: table, Row: row, UUIDName: uuidName}
}

// Select reads columns (all when none) of the rows matching where.
func Select(table string, columns []string, where ...Condition) Operation {
	return Operation{Op: "select", Table: table, Columns: columns, Where: where}
}

// Update sets the columns in row on the rows matching where.
func Update(table string, row Row, where ...Condition) Operation {
	return Operation{Op: "update", Table: table, Row: row, Where: where}
}

// Mutate applies mutations to the rows matching where.
func Mutate(table string, mutations []Mutation, where ...Condition) Operation {
	return Operation{Op: "mutate", Table: table, Mutations: mutations, Where: where}
}

// Delete deletes the rows matching where.
func Delete(table string, where ...Condition) Operation {
	return Operation{Op: "delete", Table: table, Where: where}
}

// Wait makes the transaction fail unless, within timeoutMS, the columns of
// the rows matching where are (until "==") or are not (until "!=") rows.
func Wait(table string, timeoutMS int, where []Condition, columns []string, until string, rows ...Row) Operation {
	return Operation{Op: "wait", Table: table, Timeout: &timeoutMS, Where: where,
		Columns: columns, Until: until, Rows: rows}
}

// Comment adds text to the database log.
func Comment(text string) Operation { return Operation{Op: "comment", Comment: text} }

// Assert aborts the transaction unless this connection owns lock.
func Assert(lock string) Operation { return Operation{Op: "assert", Lock: lock} }

// MarshalJSON writes the members each op requires (RFC 7047 5.2): "where"
// must be present, even empty, where the op takes one.
func (o Operation) MarshalJSON() ([]byte, error) {
	m := map[string]any{"op": o.Op}
	switch o.Op {
	case "comment":
		m["comment"] = o.Comment
		return json.Marshal(m)
	case "assert":
		m["lock"] = o.Lock
		return json.Marshal(m)
	}
	m["table"] = o.Table
	where := o.Where
	if where == nil {
		where = []Condition{}
	}
	switch o.Op {
	case "insert":
		m["row"] = nonNilRow(o.Row)
		if o.UUIDName != "" {
			m["uuid-name"] = o.UUIDName
		}
	case "select":
		m["where"] = where
		if o.Columns != nil {
			m["columns"] = o.Columns
		}
	case "update":
		m["where"], m["row"] = where, nonNilRow(o.Row)
	case "mutate":
		m["where"], m["mutations"] = where, nonNil(o.Mutations)
	case "delete":
		m["where"] = where
	case "wait":
		m["where"], m["columns"], m["until"] = where, nonNil(o.Columns), o.Until
		rows := o.Rows
		if rows == nil {
			rows = []Row{}
		}
		m["rows"] = rows
		if o.Timeout != nil {
			m["timeout"] = *o.Timeout
		}
	}
	return json.Marshal(m)
}

// nonNil keeps a required array member from encoding as null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func nonNilRow(r Row) Row {
	if r == nil {
		return Row{}
	}
	return r
}
