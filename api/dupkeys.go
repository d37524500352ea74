package api

import (
	"bytes"
	"encoding/json"
	"unicode"
	"unicode/utf8"

	"nodenet/lan"
)

// duplicateKeys refuses an object that names a key twice. encoding/json
// keeps the last value and matches field names regardless of case, so
// {"name":"a","NAME":"b"} would silently create "b": whoever checked the
// body before it reached nodenet may have read "a". Keys are compared
// folded the way encoding/json folds them. body is valid JSON (decoded
// already); its depth is bounded by MaxBody.
func duplicateKeys(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	// One entry per open object or array: the keys seen (nil for arrays)
	// and whether the next string token in an object is a key.
	type level struct {
		keys  map[string]bool
		inKey bool
	}
	var stack []level
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil // io.EOF: the end (anything else was refused before)
		}
		top := len(stack) - 1
		switch tok {
		case json.Delim('{'):
			if top >= 0 && stack[top].keys != nil {
				stack[top].inKey = true
			}
			stack = append(stack, level{keys: map[string]bool{}, inKey: true})
			continue
		case json.Delim('['):
			if top >= 0 && stack[top].keys != nil {
				stack[top].inKey = true
			}
			stack = append(stack, level{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:top]
			continue
		}
		if top < 0 || stack[top].keys == nil {
			continue // a value in an array
		}
		if !stack[top].inKey {
			stack[top].inKey = true // that was a key's value
			continue
		}
		key, _ := tok.(string)
		folded := foldKey(key)
		if stack[top].keys[folded] {
			return lan.Errorf(lan.Invalid, "request body: key %q given twice (keys match regardless of case)", key)
		}
		stack[top].keys[folded] = true
		stack[top].inKey = false
	}
}

// foldKey maps keys encoding/json would match to one another to one
// string, as its own foldName does.
func foldKey(k string) string {
	out := make([]rune, 0, len(k))
	for _, r := range k {
		if r < utf8.RuneSelf {
			out = append(out, unicode.ToUpper(r))
			continue
		}
		out = append(out, unicode.ToUpper(unicode.ToLower(r)))
	}
	return string(out)
}
