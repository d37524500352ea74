package boot

import "time"

// UplinkStatus is what `nodenet status` and GET /v1/status show per uplink.
type UplinkStatus struct {
	Name      string   `json:"name"`
	MAC       string   `json:"mac"`
	Source    string   `json:"source"` // "dhcp" or "static"
	State     string   `json:"state"`  // DHCP state, "configured" for static
	Carrier   bool     `json:"carrier"`
	Addresses []string `json:"addresses"` // what the kernel has on the link now
	// CarriedBy is the bridge port that holds the uplink's addresses while
	// a vlan trunk carries the NIC ("" when the NIC holds them).
	CarriedBy string      `json:"carried_by,omitempty"`
	Gateway   string      `json:"gateway,omitempty"`
	DNS       []string    `json:"dns,omitempty"`
	Domain    string      `json:"domain,omitempty"`
	MTU       int         `json:"mtu,omitempty"`
	Metric    int         `json:"metric"`
	Lease     *LeaseTimes `json:"lease,omitempty"`
	LastError string      `json:"last_error,omitempty"`
}

// LeaseTimes are a DHCP lease's milestones.
type LeaseTimes struct {
	Server   string    `json:"server"`
	Address  string    `json:"address"`
	Acquired time.Time `json:"acquired"`
	Renew    time.Time `json:"renew"`
	Rebind   time.Time `json:"rebind"`
	Expires  time.Time `json:"expires"`
}

func leaseTimes(l *Lease) *LeaseTimes {
	if l == nil {
		return nil
	}
	return &LeaseTimes{
		Server:   l.Server().String(),
		Address:  l.Address().String(),
		Acquired: l.Acquired,
		Renew:    l.T1(),
		Rebind:   l.T2(),
		Expires:  l.Expiry(),
	}
}
