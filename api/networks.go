package api

import (
	"context"
	"net/http"
	"net/url"

	"nodenet/lan"
)

// The LAN endpoints. Names in the path are checked before the backend
// sees them; DELETE answers 204 with no body.

func listNetworks(ctx context.Context, b Backend, w http.ResponseWriter, r *http.Request) error {
	infos, err := b.List(ctx)
	if err != nil {
		return err
	}
	if infos == nil {
		infos = []lan.Info{}
	}
	for i := range infos {
		infos[i] = normalize(infos[i])
	}
	writeJSON(w, http.StatusOK, infos)
	return nil
}

func createNetwork(ctx context.Context, b Backend, w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(w, r)
	if err != nil {
		return err
	}
	s, err := decodeSettings(body)
	if err != nil {
		return err
	}
	if err := b.Create(ctx, s.Name, s.Type, s); err != nil {
		return err
	}
	// The answer shows the network with the backend's defaults filled in;
	// should it already be gone again, the request's settings.
	info, err := b.Get(ctx, s.Name)
	if err != nil {
		info = lan.Info{Settings: s}
	}
	w.Header().Set("Location", networkPath(s.Name))
	writeJSON(w, http.StatusCreated, normalize(info))
	return nil
}

func getNetwork(ctx context.Context, b Backend, w http.ResponseWriter, r *http.Request) error {
	name, err := pathNetwork(r)
	if err != nil {
		return err
	}
	info, err := b.Get(ctx, name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, normalize(info))
	return nil
}

// updateNetwork applies PATCH /v1/networks/{name}: a lan.Update; any
// other field is refused by name.
func updateNetwork(ctx context.Context, b Backend, w http.ResponseWriter, r *http.Request) error {
	name, err := pathNetwork(r)
	if err != nil {
		return err
	}
	body, err := readBody(w, r)
	if err != nil {
		return err
	}
	var u lan.Update
	if err := decodeStrict(body, &u); err != nil {
		return lan.Errorf(lan.Invalid, "%w (only vxlan.remotes can change on a live network)", err)
	}
	if err := b.Update(ctx, name, u); err != nil {
		return err
	}
	info, err := b.Get(ctx, name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, normalize(info))
	return nil
}

func destroyNetwork(ctx context.Context, b Backend, w http.ResponseWriter, r *http.Request) error {
	name, err := pathNetwork(r)
	if err != nil {
		return err
	}
	if err := b.Destroy(ctx, name); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func listMembers(ctx context.Context, b Backend, w http.ResponseWriter, r *http.Request) error {
	name, err := pathNetwork(r)
	if err != nil {
		return err
	}
	info, err := b.Get(ctx, name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, normalize(info).Members)
	return nil
}

func join(ctx context.Context, b Backend, w http.ResponseWriter, r *http.Request) error {
	name, err := pathNetwork(r)
	if err != nil {
		return err
	}
	body, err := readBody(w, r)
	if err != nil {
		return err
	}
	req, err := decodeJoin(body)
	if err != nil {
		return err
	}
	m, err := b.Join(ctx, name, req.NIC, req.Ports, req.JoinOptions)
	if err != nil {
		return err
	}
	w.Header().Set("Location", memberPath(name, m.Name))
	writeJSON(w, http.StatusCreated, m)
	return nil
}

func getMember(ctx context.Context, b Backend, w http.ResponseWriter, r *http.Request) error {
	name, nic, err := pathMember(r)
	if err != nil {
		return err
	}
	m, err := b.Member(ctx, name, nic)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, m)
	return nil
}

func getLeases(ctx context.Context, b Backend, w http.ResponseWriter, r *http.Request) error {
	name, err := pathNetwork(r)
	if err != nil {
		return err
	}
	l, err := b.Leases(ctx, name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, l)
	return nil
}

func leave(ctx context.Context, b Backend, w http.ResponseWriter, r *http.Request) error {
	name, nic, err := pathMember(r)
	if err != nil {
		return err
	}
	if err := b.Leave(ctx, name, nic); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func pathNetwork(r *http.Request) (string, error) {
	name := r.PathValue("name")
	return name, lan.ValidNetworkName(name)
}

func pathMember(r *http.Request) (network, nic string, err error) {
	if network, err = pathNetwork(r); err != nil {
		return "", "", err
	}
	nic = r.PathValue("nic")
	return network, nic, lan.ValidNIC(nic)
}

// normalize answers [] rather than null for no members.
func normalize(info lan.Info) lan.Info {
	if info.Members == nil {
		info.Members = []lan.Member{}
	}
	return info
}

func networkPath(name string) string { return "/v1/networks/" + url.PathEscape(name) }

func memberPath(network, nic string) string {
	return networkPath(network) + "/members/" + url.PathEscape(nic)
}
