package openflow

import (
	"encoding/binary"
	"fmt"
)

// Error is an OFPT_ERROR the switch sent: the request it refused (by
// xid), the error's type and code, and the start of the offending request.
type Error struct {
	XID  uint32
	Type uint16
	Code uint16
	Data []byte
}

// ParseError reads an OFPT_ERROR message's body.
func ParseError(m Message) (*Error, error) {
	if m.Type != TypeError || len(m.Body) < 4 {
		return nil, fmt.Errorf("openflow: not an error message (type %d, %d bytes)", m.Type, len(m.Body))
	}
	return &Error{XID: m.XID, Type: binary.BigEndian.Uint16(m.Body[0:2]),
		Code: binary.BigEndian.Uint16(m.Body[2:4]), Data: m.Body[4:]}, nil
}

// Error names the type and code as the OpenFlow 1.3.5 spec does, e.g.
// "OpenFlow error OFPET_BAD_MATCH/OFPBMC_BAD_PREREQ (type 4, code 9)".
func (e *Error) Error() string {
	return fmt.Sprintf("OpenFlow error %s/%s (type %d, code %d)", e.TypeName(), e.CodeName(), e.Type, e.Code)
}

// TypeName is the ofp_error_type's name.
func (e *Error) TypeName() string {
	if int(e.Type) < len(errorTypes) {
		return errorTypes[e.Type]
	}
	if e.Type == 0xffff {
		return "OFPET_EXPERIMENTER"
	}
	return fmt.Sprintf("type %d", e.Type)
}

// CodeName is the code's name within its type, for the types a flow mod
// or a hello can fail with.
func (e *Error) CodeName() string {
	if codes := errorCodes[e.Type]; int(e.Code) < len(codes) {
		return codes[e.Code]
	}
	return fmt.Sprintf("code %d", e.Code)
}

// Error types, OpenFlow 1.3.5 section 7.4.4 (ofp_error_type).
var errorTypes = []string{
	"OFPET_HELLO_FAILED", "OFPET_BAD_REQUEST", "OFPET_BAD_ACTION", "OFPET_BAD_INSTRUCTION",
	"OFPET_BAD_MATCH", "OFPET_FLOW_MOD_FAILED", "OFPET_GROUP_MOD_FAILED", "OFPET_PORT_MOD_FAILED",
	"OFPET_TABLE_MOD_FAILED", "OFPET_QUEUE_OP_FAILED", "OFPET_SWITCH_CONFIG_FAILED",
	"OFPET_ROLE_REQUEST_FAILED", "OFPET_METER_MOD_FAILED", "OFPET_TABLE_FEATURES_FAILED",
}

// Error codes by type, in the spec's order (their values are the index).
var errorCodes = map[uint16][]string{
	0: {"OFPHFC_INCOMPATIBLE", "OFPHFC_EPERM"},
	1: {"OFPBRC_BAD_VERSION", "OFPBRC_BAD_TYPE", "OFPBRC_BAD_MULTIPART", "OFPBRC_BAD_EXPERIMENTER",
		"OFPBRC_BAD_EXP_TYPE", "OFPBRC_EPERM", "OFPBRC_BAD_LEN", "OFPBRC_BUFFER_EMPTY",
		"OFPBRC_BUFFER_UNKNOWN", "OFPBRC_BAD_TABLE_ID", "OFPBRC_IS_SLAVE", "OFPBRC_BAD_PORT",
		"OFPBRC_BAD_PACKET", "OFPBRC_MULTIPART_BUFFER_OVERFLOW"},
	2: {"OFPBAC_BAD_TYPE", "OFPBAC_BAD_LEN", "OFPBAC_BAD_EXPERIMENTER", "OFPBAC_BAD_EXP_TYPE",
		"OFPBAC_BAD_OUT_PORT", "OFPBAC_BAD_ARGUMENT", "OFPBAC_EPERM", "OFPBAC_TOO_MANY",
		"OFPBAC_BAD_QUEUE", "OFPBAC_BAD_OUT_GROUP", "OFPBAC_MATCH_INCONSISTENT",
		"OFPBAC_UNSUPPORTED_ORDER", "OFPBAC_BAD_TAG", "OFPBAC_BAD_SET_TYPE", "OFPBAC_BAD_SET_LEN",
		"OFPBAC_BAD_SET_ARGUMENT"},
	3: {"OFPBIC_UNKNOWN_INST", "OFPBIC_UNSUP_INST", "OFPBIC_BAD_TABLE_ID", "OFPBIC_UNSUP_METADATA",
		"OFPBIC_UNSUP_METADATA_MASK", "OFPBIC_BAD_EXPERIMENTER", "OFPBIC_BAD_EXP_TYPE",
		"OFPBIC_BAD_LEN", "OFPBIC_EPERM"},
	4: {"OFPBMC_BAD_TYPE", "OFPBMC_BAD_LEN", "OFPBMC_BAD_TAG", "OFPBMC_BAD_DL_ADDR_MASK",
		"OFPBMC_BAD_NW_ADDR_MASK", "OFPBMC_BAD_WILDCARDS", "OFPBMC_BAD_FIELD", "OFPBMC_BAD_VALUE",
		"OFPBMC_BAD_MASK", "OFPBMC_BAD_PREREQ", "OFPBMC_DUP_FIELD", "OFPBMC_EPERM"},
	5: {"OFPFMFC_UNKNOWN", "OFPFMFC_TABLE_FULL", "OFPFMFC_BAD_TABLE_ID", "OFPFMFC_OVERLAP",
		"OFPFMFC_EPERM", "OFPFMFC_BAD_TIMEOUT", "OFPFMFC_BAD_COMMAND", "OFPFMFC_BAD_FLAGS"},
}
