package openflow

import (
	"bytes"
	"encoding/hex"
	"testing"
)

// FuzzReadMessage: ReadMessage and the body parsers take what the switch
// sends; they must not panic, must stay within the stream, and a message
// read must marshal back to the same bytes.
func FuzzReadMessage(f *testing.F) {
	for _, s := range []string{
		"0400001000000001000100080000001004140008000000070400000800000001",
		"0600001000000001000100080000007e",
		"0402000c0000002a61626364",
		"04010014000000090004000904 0e007000000009",
		"040100080000000a",
		"0400000c000000010001ffff",
		"04000008",
		"0400000400000001",
		"",
	} {
		b, _ := hex.DecodeString(string(bytes.ReplaceAll([]byte(s), []byte(" "), nil)))
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		used := 0
		for range 64 {
			m, err := ReadMessage(r)
			if err != nil {
				return
			}
			wire, err := m.Marshal()
			if err != nil {
				t.Fatalf("a message read does not marshal: %v", err)
			}
			if !bytes.Equal(wire, data[used:used+len(wire)]) {
				t.Fatalf("round trip: %x, read from %x", wire, data[used:used+len(wire)])
			}
			used += len(wire)
			switch m.Type {
			case TypeHello:
				HelloVersions(m)
			case TypeError:
				if e, err := ParseError(m); err == nil {
					_ = e.Error()
				}
			}
		}
	})
}
