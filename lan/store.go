package lan

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"nodenet/internal/fsutil"
)

// store keeps networks and members under DIR/lan: one file per network
// (NAME/network.json) and one per member (NAME/members/NIC.json), so a
// join writes one small file whatever the member count. Every write is
// atomic and synced before the change is acknowledged.
type store struct {
	dir string
}

func (s store) networkDir(name string) string { return filepath.Join(s.dir, name) }

func (s store) memberPath(network, nic string) string {
	return filepath.Join(s.dir, network, "members", nic+".json")
}

func (s store) saveNetwork(st Settings) error {
	return writeJSON(filepath.Join(s.networkDir(st.Name), "network.json"), st)
}

func (s store) saveMember(m Member) error {
	return writeJSON(s.memberPath(m.Network, m.Name), m)
}

func (s store) removeMember(network, nic string) error {
	return fsutil.RemoveDurable(s.memberPath(network, nic))
}

// removeNetwork deletes a network without members. network.json goes
// first: without it the network does not exist (see loadNetwork), whatever
// a crash leaves of the rest. Then the whole directory, which may hold
// temporary files of writes a crash cut short.
func (s store) removeNetwork(name string) error {
	dir := s.networkDir(name)
	if err := fsutil.RemoveDurable(filepath.Join(dir, "network.json")); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	return fsutil.RemoveDurable(dir) // syncs the parent
}

// HeldNICs names the NICs that passthrough networks in the state under
// stateDir hold: the uplinks must not take them, even before the LAN
// manager starts. An unreadable state holds none.
func HeldNICs(stateDir string) map[string]bool {
	infos, _ := store{dir: filepath.Join(stateDir, "lan")}.load()
	held := map[string]bool{}
	for _, info := range infos {
		if info.Type == PassThrough && info.PassThrough != nil {
			held[info.PassThrough.NIC] = true
		}
	}
	return held
}

// TrunkPorts maps each vlan parent NIC in the state under stateDir to its
// trunk bridge's own port, which holds the NIC's addresses when the NIC is
// an uplink: the uplinks keep them there at start, before the LAN manager
// runs. An unreadable state has none.
func TrunkPorts(stateDir string) map[string]string {
	infos, _ := store{dir: filepath.Join(stateDir, "lan")}.load()
	ports := map[string]string{}
	for _, info := range infos {
		if info.Type == VLan && info.VLan != nil {
			ports[info.VLan.Parent] = trunkName(info.VLan.Parent)
		}
	}
	return ports
}

// load reads every network and its members.
func (s store) load() ([]Info, error) {
	entries, err := os.ReadDir(s.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state %s: %w", s.dir, err)
	}
	var out []Info
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		info, ok, err := s.loadNetwork(e.Name())
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, info)
		}
	}
	return out, nil
}

// loadNetwork reads one network; a directory without network.json is a
// create that never completed.
func (s store) loadNetwork(name string) (Info, bool, error) {
	var info Info
	err := readJSON(filepath.Join(s.networkDir(name), "network.json"), &info.Settings)
	if errors.Is(err, os.ErrNotExist) {
		return info, false, nil
	}
	if err != nil {
		return info, false, err
	}
	files, _ := filepath.Glob(filepath.Join(s.networkDir(name), "members", "*.json"))
	for _, f := range files {
		var m Member
		if err := readJSON(f, &m); err != nil {
			return info, false, err
		}
		info.Members = append(info.Members, m)
	}
	sort.Slice(info.Members, func(i, j int) bool { return info.Members[i].Name < info.Members[j].Name })
	return info, true, nil
}

func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("state %s: %w", path, err)
	}
	return fsutil.WriteFileAtomic(path, append(data, '\n'), 0o600)
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("state %s: %w", path, err)
	}
	return nil
}
