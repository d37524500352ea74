package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"nodenet/lan"
)

// DefaultSocket is where the daemon listens unless told otherwise.
const DefaultSocket = "/run/nodenet/nodenet.sock"

// ClientTimeout bounds one call; it outlasts the daemon's OpTimeout so a
// slow Join ends with the daemon's sentence rather than ours. A caller's
// context can cut it shorter.
const ClientTimeout = OpTimeout + 15*time.Second

// Client calls a nodenet daemon over its control socket. It implements
// lan.Network and lan.Inventory: errors the daemon answers come back as
// *lan.Error with the daemon's code and sentence.
type Client struct {
	Socket string
	http   *http.Client
}

var _ Backend = (*Client)(nil)

// NewClient returns a client for the daemon on socket.
func NewClient(socket string) *Client {
	return &Client{Socket: socket, http: &http.Client{
		Timeout: ClientTimeout,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		}},
		// The daemon never redirects; a redirect is the mux cleaning a
		// path, which the name checks below keep from happening.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// Status returns the daemon's view of the node.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	return st, c.do(ctx, http.MethodGet, "/v1/status", nil, &st)
}

// Create makes a network; s.Name and s.Type, when set, must agree with
// name and t.
func (c *Client) Create(ctx context.Context, name string, t lan.NetworkType, s lan.Settings) error {
	if s.Name != "" && s.Name != name {
		return lan.Errorf(lan.Invalid, "settings name %q differs from network %q", s.Name, name)
	}
	if err := lan.ValidNetworkName(name); err != nil {
		return err
	}
	s.Name, s.Type = name, t
	return c.do(ctx, http.MethodPost, "/v1/networks", s, nil)
}

// Destroy removes a network that has no members.
func (c *Client) Destroy(ctx context.Context, name string) error {
	if err := lan.ValidNetworkName(name); err != nil {
		return err
	}
	return c.do(ctx, http.MethodDelete, networkPath(name), nil, nil)
}

// Update changes what may change on a live network (vxlan remotes).
func (c *Client) Update(ctx context.Context, name string, u lan.Update) error {
	if err := lan.ValidNetworkName(name); err != nil {
		return err
	}
	return c.do(ctx, http.MethodPatch, networkPath(name), u, nil)
}

// Join adds a member; an empty nic lets the daemon name it.
func (c *Client) Join(ctx context.Context, network, nic string, ports lan.PortForwards, o lan.JoinOptions) (lan.Member, error) {
	var m lan.Member
	if err := lan.ValidNetworkName(network); err != nil {
		return m, err
	}
	req := JoinRequest{NIC: nic, JoinOptions: o, Ports: ports}
	return m, c.do(ctx, http.MethodPost, networkPath(network)+"/members", req, &m)
}

// Leave removes a member and everything made for it.
func (c *Client) Leave(ctx context.Context, network, nic string) error {
	if err := checkMember(network, nic); err != nil {
		return err
	}
	return c.do(ctx, http.MethodDelete, memberPath(network, nic), nil, nil)
}

// List returns every network with its members.
func (c *Client) List(ctx context.Context) ([]lan.Info, error) {
	var infos []lan.Info
	return infos, c.do(ctx, http.MethodGet, "/v1/networks", nil, &infos)
}

// Get returns one network with its members.
func (c *Client) Get(ctx context.Context, name string) (lan.Info, error) {
	var info lan.Info
	if err := lan.ValidNetworkName(name); err != nil {
		return info, err
	}
	return info, c.do(ctx, http.MethodGet, networkPath(name), nil, &info)
}

// Leases returns a LAN's DHCP pool and leases.
func (c *Client) Leases(ctx context.Context, network string) (lan.Leases, error) {
	var l lan.Leases
	if err := lan.ValidNetworkName(network); err != nil {
		return l, err
	}
	return l, c.do(ctx, http.MethodGet, networkPath(network)+"/leases", nil, &l)
}

// Members returns a network's members.
func (c *Client) Members(ctx context.Context, network string) ([]lan.Member, error) {
	var ms []lan.Member
	if err := lan.ValidNetworkName(network); err != nil {
		return ms, err
	}
	return ms, c.do(ctx, http.MethodGet, networkPath(network)+"/members", nil, &ms)
}

// Member returns one member.
func (c *Client) Member(ctx context.Context, network, nic string) (lan.Member, error) {
	var m lan.Member
	if err := checkMember(network, nic); err != nil {
		return m, err
	}
	return m, c.do(ctx, http.MethodGet, memberPath(network, nic), nil, &m)
}

func checkMember(network, nic string) error {
	if err := lan.ValidNetworkName(network); err != nil {
		return err
	}
	return lan.ValidNIC(nic)
}

// do sends in (if not nil) as JSON and decodes the answer into out (if
// not nil). A non-2xx answer becomes a *lan.Error.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return lan.Errorf(lan.Invalid, "%s %s: encode request: %w", method, path, err)
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://nodenet"+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("nodenet daemon at %s: %w", c.Socket, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return answerError(method, path, resp.Status, data)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// answerError turns an error body back into the *lan.Error the daemon had.
func answerError(method, path, status string, body []byte) error {
	var e Error
	if json.Unmarshal(body, &e) == nil && e.Message != "" {
		code := lan.Code(e.Code)
		if code == "" {
			code = lan.Internal
		}
		return &lan.Error{Code: code, Err: errors.New(e.Message)}
	}
	return &lan.Error{Code: lan.Internal, Err: fmt.Errorf("%s %s: %s", method, path, status)}
}
