package ovsdb

// The Open_vSwitch database's tables as nodenet reads them from the cache.

// Database and table names of the Open_vSwitch schema.
const (
	VswitchDB      = "Open_vSwitch"
	TableRoot      = "Open_vSwitch"
	TableBridge    = "Bridge"
	TablePort      = "Port"
	TableInterface = "Interface"
)

// vswitchMonitor lists the columns the cache follows. Interface
// statistics and status are left out: ovs-vswitchd rewrites them every few
// seconds for every interface, which would be a stream of updates nobody
// reads. Bridge.ports is left out too: RFC 7047 updates resend a changed
// column whole, old and new, so following it would make every port added
// cost a read of the bridge's whole port list (93 kB at 1,000 ports);
// writes find a port's bridge on the server instead ("includes").
var vswitchMonitor = map[string]MonitorRequest{
	TableRoot: {Columns: []string{"bridges", "next_cfg", "cur_cfg", "ovs_version",
		"datapath_types", "iface_types", "external_ids"}},
	TableBridge: {Columns: []string{"name", "datapath_type", "fail_mode",
		"external_ids", "other_config"}},
	TablePort: {Columns: []string{"name", "interfaces", "tag", "trunks", "vlan_mode",
		"external_ids"}},
	TableInterface: {Columns: []string{"name", "type", "options", "ofport", "error",
		"mtu", "mtu_request", "mac_in_use", "link_state", "external_ids"}},
}

// Root is the Open_vSwitch table's single row.
type Root struct {
	UUID          UUID
	Bridges       []UUID
	NextCfg       int64
	CurCfg        int64
	OVSVersion    string
	DatapathTypes []string
	ExternalIDs   map[string]string
}

// Bridge is a row of the Bridge table.
type Bridge struct {
	UUID         UUID
	Name         string
	DatapathType string
	FailMode     string
	ExternalIDs  map[string]string
	OtherConfig  map[string]string
}

// Port is a row of the Port table.
type Port struct {
	UUID        UUID
	Name        string
	Interfaces  []UUID
	Tag         int64 // 0: no access VLAN
	Trunks      []int64
	VLANMode    string
	ExternalIDs map[string]string
}

// Interface is a row of the Interface table.
type Interface struct {
	UUID        UUID
	Name        string
	Type        string
	Options     map[string]string
	OFPort      int64 // 0 until ovs-vswitchd assigns it, -1 when it failed
	Error       string
	MTU         int64
	MTURequest  int64
	MAC         string
	LinkState   string
	ExternalIDs map[string]string
}

func rootFrom(id UUID, r Row) Root {
	next, _ := Int(r["next_cfg"])
	cur, _ := Int(r["cur_cfg"])
	return Root{UUID: id, Bridges: UUIDs(r["bridges"]), NextCfg: next, CurCfg: cur,
		OVSVersion: String(r["ovs_version"]), DatapathTypes: Strings(r["datapath_types"]),
		ExternalIDs: StringMap(r["external_ids"])}
}

func bridgeFrom(id UUID, r Row) Bridge {
	return Bridge{UUID: id, Name: String(r["name"]),
		DatapathType: String(r["datapath_type"]), FailMode: String(r["fail_mode"]),
		ExternalIDs: StringMap(r["external_ids"]), OtherConfig: StringMap(r["other_config"])}
}

func portFrom(id UUID, r Row) Port {
	tag, _ := Int(r["tag"])
	return Port{UUID: id, Name: String(r["name"]), Interfaces: UUIDs(r["interfaces"]),
		Tag: tag, Trunks: Ints(r["trunks"]), VLANMode: String(r["vlan_mode"]),
		ExternalIDs: StringMap(r["external_ids"])}
}

func interfaceFrom(id UUID, r Row) Interface {
	ofport, _ := Int(r["ofport"])
	mtu, _ := Int(r["mtu"])
	mtuReq, _ := Int(r["mtu_request"])
	return Interface{UUID: id, Name: String(r["name"]), Type: String(r["type"]),
		Options: StringMap(r["options"]), OFPort: ofport, Error: String(r["error"]),
		MTU: mtu, MTURequest: mtuReq, MAC: String(r["mac_in_use"]),
		LinkState: String(r["link_state"]), ExternalIDs: StringMap(r["external_ids"])}
}

// Root returns the Open_vSwitch row, if the database has one.
func (c *Cache) Root() (Root, bool) {
	for id, r := range c.Rows(TableRoot) {
		return rootFrom(id, r), true
	}
	return Root{}, false
}

// Bridge returns the bridge called name.
func (c *Cache) Bridge(name string) (Bridge, bool) {
	id, r, ok := c.RowByName(TableBridge, name)
	if !ok {
		return Bridge{}, false
	}
	return bridgeFrom(id, r), true
}

// Port returns the port called name.
func (c *Cache) Port(name string) (Port, bool) {
	id, r, ok := c.RowByName(TablePort, name)
	if !ok {
		return Port{}, false
	}
	return portFrom(id, r), true
}

// Interface returns the interface called name.
func (c *Cache) Interface(name string) (Interface, bool) {
	id, r, ok := c.RowByName(TableInterface, name)
	if !ok {
		return Interface{}, false
	}
	return interfaceFrom(id, r), true
}

// Bridges returns every bridge.
func (c *Cache) Bridges() []Bridge {
	var out []Bridge
	for id, r := range c.Rows(TableBridge) {
		out = append(out, bridgeFrom(id, r))
	}
	return out
}

// Ports returns every port.
func (c *Cache) Ports() []Port {
	var out []Port
	for id, r := range c.Rows(TablePort) {
		out = append(out, portFrom(id, r))
	}
	return out
}

// Interfaces returns every interface.
func (c *Cache) Interfaces() []Interface {
	var out []Interface
	for id, r := range c.Rows(TableInterface) {
		out = append(out, interfaceFrom(id, r))
	}
	return out
}
