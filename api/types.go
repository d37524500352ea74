// Package api serves nodenet's control socket (HTTP/1.1 + JSON on a unix socket) and is its Go client.
package api

import (
	"context"

	"nodenet/boot"
	"nodenet/fw"
	"nodenet/lan"
	"nodenet/ovsdb"
)

// Status is the body of GET /v1/status.
type Status struct {
	Version  string              `json:"version"`
	Uplinks  []boot.UplinkStatus `json:"uplinks"`
	OVS      *OVSStatus          `json:"ovs,omitempty"`
	Firewall *fw.Status          `json:"firewall,omitempty"`
}

// OVSStatus is Open vSwitch as nodenet sees it.
type OVSStatus struct {
	Datapath      boot.Datapath  `json:"datapath"`
	DatapathError string         `json:"datapath_error,omitempty"`
	Daemons       boot.OVSStatus `json:"daemons"`
	DB            ovsdb.Status   `json:"ovsdb"`
	Version       string         `json:"version,omitempty"`
}

// Error is the body of every non-2xx answer.
type Error struct {
	Message string `json:"error"`
	Code    string `json:"code"` // invalid, not_found, conflict, unsupported, internal, forbidden
}

func (e *Error) Error() string { return e.Message }

// Backend is what the LAN endpoints call: the daemon's lan.Manager.
type Backend interface {
	lan.Network
	lan.Inventory
	// Leases reports a LAN's DHCP pool and leases.
	Leases(ctx context.Context, network string) (lan.Leases, error)
	// Update changes what may change on a live network (vxlan remotes).
	Update(ctx context.Context, network string, u lan.Update) error
}

// JoinRequest is the body of POST /v1/networks/{name}/members.
type JoinRequest struct {
	NIC string `json:"nic,omitempty"` // empty: the daemon makes one up
	lan.JoinOptions
	Ports lan.PortForwards `json:"ports,omitempty"`
}

// CodeForbidden is the error code of a peer that is neither root nor in
// the socket's group; it is the API's own, beside lan's codes.
const CodeForbidden = "forbidden"
