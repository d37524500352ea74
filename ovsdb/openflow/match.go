package openflow

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
)

// EtherTypes and IP protocols a Match names.
const (
	EthTypeIPv4 = 0x0800
	EthTypeARP  = 0x0806
	EthTypeIPv6 = 0x86dd
	IPProtoUDP  = 17
)

// Match is an OXM match (ofp_match of type OFPMT_OXM) on the fields port
// security needs. A zero field is not matched on.
type Match struct {
	InPort  uint32           // OpenFlow port; ports are numbered from 1
	EthSrc  net.HardwareAddr // 6 bytes
	EthType uint16
	IPProto uint8
	IPv4Src netip.Addr // 0.0.0.0 is matched (a DHCP client's source)
	UDPDst  uint16
	ARPSPA  netip.Addr // 0.0.0.0 is matched (an RFC 5227 probe)
	ARPSHA  net.HardwareAddr
}

// OXM field numbers of class OFPXMC_OPENFLOW_BASIC (OpenFlow 1.3.5,
// 7.2.3.7). Fields are written in this order, which puts every
// prerequisite before the fields needing it (Open vSwitch checks them as
// it reads).
const (
	oxmClassBasic = 0x8000
	oxmInPort     = 0
	oxmEthSrc     = 4
	oxmEthType    = 5
	oxmIPProto    = 10
	oxmIPv4Src    = 11
	oxmUDPDst     = 16
	oxmARPSPA     = 22
	oxmARPSHA     = 24
)

// oxmHeader is an OXM TLV's header: class, field, no mask, value length.
func oxmHeader(field uint8, length uint8) uint32 {
	return oxmClassBasic<<16 | uint32(field)<<9 | uint32(length)
}

// check refuses a match the switch would refuse: a field without its
// prerequisite (OpenFlow 1.3.5, table 12) or a value of the wrong size.
func (m Match) check() error {
	switch {
	case m.EthSrc != nil && len(m.EthSrc) != 6:
		return fmt.Errorf("eth_src %v: want 6 bytes", m.EthSrc)
	case m.ARPSHA != nil && len(m.ARPSHA) != 6:
		return fmt.Errorf("arp_sha %v: want 6 bytes", m.ARPSHA)
	case m.IPv4Src.IsValid() && !m.IPv4Src.Is4():
		return fmt.Errorf("ipv4_src %v: not IPv4", m.IPv4Src)
	case m.ARPSPA.IsValid() && !m.ARPSPA.Is4():
		return fmt.Errorf("arp_spa %v: not IPv4", m.ARPSPA)
	case m.IPProto != 0 && m.EthType != EthTypeIPv4 && m.EthType != EthTypeIPv6:
		return fmt.Errorf("ip_proto needs eth_type ip or ipv6")
	case m.IPv4Src.IsValid() && m.EthType != EthTypeIPv4:
		return fmt.Errorf("ipv4_src needs eth_type ip")
	case m.UDPDst != 0 && m.IPProto != IPProtoUDP:
		return fmt.Errorf("udp_dst needs ip_proto udp")
	case (m.ARPSPA.IsValid() || m.ARPSHA != nil) && m.EthType != EthTypeARP:
		return fmt.Errorf("arp_spa and arp_sha need eth_type arp")
	}
	return nil
}

// marshal appends ofp_match: type OFPMT_OXM, its length without padding,
// the OXM TLVs, and zeros up to a multiple of 8 bytes.
func (m Match) marshal(b []byte) ([]byte, error) {
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("openflow match: %w", err)
	}
	start := len(b)
	b = binary.BigEndian.AppendUint16(b, 1) // OFPMT_OXM
	b = binary.BigEndian.AppendUint16(b, 0) // length, below
	tlv := func(field uint8, value []byte) {
		b = binary.BigEndian.AppendUint32(b, oxmHeader(field, uint8(len(value))))
		b = append(b, value...)
	}
	if m.InPort != 0 {
		tlv(oxmInPort, binary.BigEndian.AppendUint32(nil, m.InPort))
	}
	if m.EthSrc != nil {
		tlv(oxmEthSrc, m.EthSrc)
	}
	if m.EthType != 0 {
		tlv(oxmEthType, binary.BigEndian.AppendUint16(nil, m.EthType))
	}
	if m.IPProto != 0 {
		tlv(oxmIPProto, []byte{m.IPProto})
	}
	if m.IPv4Src.IsValid() {
		tlv(oxmIPv4Src, m.IPv4Src.AsSlice())
	}
	if m.UDPDst != 0 {
		tlv(oxmUDPDst, binary.BigEndian.AppendUint16(nil, m.UDPDst))
	}
	if m.ARPSPA.IsValid() {
		tlv(oxmARPSPA, m.ARPSPA.AsSlice())
	}
	if m.ARPSHA != nil {
		tlv(oxmARPSHA, m.ARPSHA)
	}
	binary.BigEndian.PutUint16(b[start+2:], uint16(len(b)-start))
	return pad8(b, start), nil
}

// pad8 appends zeros until b[start:] is a multiple of 8 bytes long.
func pad8(b []byte, start int) []byte {
	for (len(b)-start)%8 != 0 {
		b = append(b, 0)
	}
	return b
}

// String writes the match as ovs-ofctl does, for messages.
func (m Match) String() string {
	s := ""
	add := func(f string, a ...any) {
		if s != "" {
			s += ","
		}
		s += fmt.Sprintf(f, a...)
	}
	if m.InPort != 0 {
		add("in_port=%d", m.InPort)
	}
	if m.EthSrc != nil {
		add("dl_src=%s", m.EthSrc)
	}
	if m.EthType != 0 {
		add("dl_type=0x%04x", m.EthType)
	}
	if m.IPProto != 0 {
		add("nw_proto=%d", m.IPProto)
	}
	if m.IPv4Src.IsValid() {
		add("nw_src=%s", m.IPv4Src)
	}
	if m.UDPDst != 0 {
		add("tp_dst=%d", m.UDPDst)
	}
	if m.ARPSPA.IsValid() {
		add("arp_spa=%s", m.ARPSPA)
	}
	if m.ARPSHA != nil {
		add("arp_sha=%s", m.ARPSHA)
	}
	return s
}
