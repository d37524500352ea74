package openflow

import (
	"encoding/binary"
	"fmt"
)

// Command is a flow mod's ofp_flow_mod_command.
type Command uint8

// The commands this package sends. Add replaces a flow with the same match
// and priority (its counters kept), so adding a flow twice is harmless.
const (
	Add          Command = 0
	Delete       Command = 3 // every flow the match and cookie select
	DeleteStrict Command = 4 // the flow with exactly this match and priority
)

// Special port, table and group numbers.
const (
	PortNormal = 0xfffffffa // OFPP_NORMAL: the switch's own L2 learning
	PortAny    = 0xffffffff // OFPP_ANY
	TableAll   = 0xff       // OFPTT_ALL, for deletes
	groupAny   = 0xffffffff // OFPG_ANY
	noBuffer   = 0xffffffff // OFP_NO_BUFFER
)

// FlowMod is an OFPT_FLOW_MOD. Output lists the ports an apply-actions
// instruction sends the packet to; none means no instruction at all, which
// drops the packet.
type FlowMod struct {
	Command    Command
	TableID    uint8
	Cookie     uint64
	CookieMask uint64 // deletes: which cookie bits must equal Cookie's
	Priority   uint16
	Match      Match
	Output     []uint32
}

// Marshal returns the flow mod on the wire with the given xid.
func (f FlowMod) Marshal(xid uint32) ([]byte, error) {
	b := make([]byte, HeaderLen, 128)
	b = binary.BigEndian.AppendUint64(b, f.Cookie)
	b = binary.BigEndian.AppendUint64(b, f.CookieMask)
	b = append(b, f.TableID, uint8(f.Command))
	b = binary.BigEndian.AppendUint16(b, 0) // idle_timeout: never
	b = binary.BigEndian.AppendUint16(b, 0) // hard_timeout: never
	b = binary.BigEndian.AppendUint16(b, f.Priority)
	b = binary.BigEndian.AppendUint32(b, noBuffer)
	// out_port and out_group filter deletes; ANY filters nothing.
	b = binary.BigEndian.AppendUint32(b, PortAny)
	b = binary.BigEndian.AppendUint32(b, groupAny)
	b = binary.BigEndian.AppendUint16(b, 0) // flags
	b = append(b, 0, 0)                     // pad
	b, err := f.Match.marshal(b)
	if err != nil {
		return nil, fmt.Errorf("flow mod %s: %w", f, err)
	}
	if len(f.Output) > 0 {
		b = applyOutput(b, f.Output)
	}
	if len(b) > 0xffff {
		return nil, fmt.Errorf("flow mod %s: %d bytes, over 65535", f, len(b))
	}
	b[0], b[1] = Version13, TypeFlowMod
	binary.BigEndian.PutUint16(b[2:4], uint16(len(b)))
	binary.BigEndian.PutUint32(b[4:8], xid)
	return b, nil
}

// applyOutput appends OFPIT_APPLY_ACTIONS with one OFPAT_OUTPUT per port.
func applyOutput(b []byte, ports []uint32) []byte {
	const instrType, instrLen, actOutput, actLen = 4, 8, 0, 16
	b = binary.BigEndian.AppendUint16(b, instrType)
	b = binary.BigEndian.AppendUint16(b, uint16(instrLen+actLen*len(ports)))
	b = append(b, 0, 0, 0, 0) // pad
	for _, p := range ports {
		b = binary.BigEndian.AppendUint16(b, actOutput)
		b = binary.BigEndian.AppendUint16(b, actLen)
		b = binary.BigEndian.AppendUint32(b, p)
		b = binary.BigEndian.AppendUint16(b, 0) // max_len: only for the controller port
		b = append(b, 0, 0, 0, 0, 0, 0)         // pad
	}
	return b
}

// String names the flow mod for messages: command, cookie, priority,
// match and actions.
func (f FlowMod) String() string {
	cmd := map[Command]string{Add: "add", Delete: "delete", DeleteStrict: "delete-strict"}[f.Command]
	if cmd == "" {
		cmd = fmt.Sprintf("command %d", f.Command)
	}
	s := fmt.Sprintf("%s cookie=0x%x", cmd, f.Cookie)
	if f.CookieMask != 0 {
		s += fmt.Sprintf("/0x%x", f.CookieMask)
	}
	if f.TableID == TableAll {
		s += ",table=all"
	} else if f.TableID != 0 {
		s += fmt.Sprintf(",table=%d", f.TableID)
	}
	s += fmt.Sprintf(",priority=%d", f.Priority)
	if m := f.Match.String(); m != "" {
		s += "," + m
	}
	if f.Command == Add {
		if len(f.Output) == 0 {
			return s + " actions=drop"
		}
		acts := ""
		for i, p := range f.Output {
			if i > 0 {
				acts += ","
			}
			if p == PortNormal {
				acts += "NORMAL"
			} else {
				acts += fmt.Sprintf("output:%d", p)
			}
		}
		s += " actions=" + acts
	}
	return s
}
