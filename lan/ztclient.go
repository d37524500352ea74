package lan

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// DefaultZerotierHome is where zerotier-one keeps its state on Linux: its
// auth token and, once it runs, the port of its local API.
const DefaultZerotierHome = "/var/lib/zerotier-one"

// ztDefaultPort is the local API's port when the service wrote no
// zerotier-one.port file (its own default).
const ztDefaultPort = 9993

// ztNetwork is a network as zerotier-one's local API describes it
// (GET/POST /network/<id>; service/README.md in ZeroTierOne). Only the
// fields nodenet reads; the names are the service's own.
type ztNetwork struct {
	ID                string   `json:"id"`     // 16 hex digits
	Status            string   `json:"status"` // REQUESTING_CONFIGURATION, OK, ACCESS_DENIED, ...
	PortDeviceName    string   `json:"portDeviceName"`
	AssignedAddresses []string `json:"assignedAddresses"` // CIDR strings, e.g. 10.147.17.6/24
	MTU               int      `json:"mtu"`
	MAC               string   `json:"mac"`
	Name              string   `json:"name"` // from the network's controller
	Type              string   `json:"type"` // PUBLIC or PRIVATE
	PortError         int      `json:"portError"`
}

// The statuses the service reports for a network (_networkToJson in
// service/OneService.cpp).
const (
	ztRequestingConfiguration = "REQUESTING_CONFIGURATION"
	ztOK                      = "OK"
	ztAccessDenied            = "ACCESS_DENIED"
	ztNotFound                = "NOT_FOUND"
	ztPortError               = "PORT_ERROR"
	ztClientTooOld            = "CLIENT_TOO_OLD"
	ztAuthRequired            = "AUTHENTICATION_REQUIRED"
)

// statusErr says what a status other than OK or REQUESTING_CONFIGURATION
// (which may still turn OK) means for a user; nil for those two.
func (nw ztNetwork) statusErr() error {
	id := nw.ID
	switch nw.Status {
	case ztOK, ztRequestingConfiguration:
		return nil
	case ztAccessDenied:
		return Errorf(Conflict, "zerotier network %s: ACCESS_DENIED: its controller has not authorized this node; authorize it there (the node's address is in `zerotier-cli info`) and try again", id)
	case ztNotFound:
		return Errorf(NotFound, "zerotier network %s: NOT_FOUND: no controller knows this network id", id)
	case ztPortError:
		return Errorf(Internal, "zerotier network %s: PORT_ERROR: zerotier-one could not make the network's device (portError %d)", id, nw.PortError)
	case ztClientTooOld:
		return Errorf(Unsupported, "zerotier network %s: CLIENT_TOO_OLD: the network needs a newer zerotier-one", id)
	case ztAuthRequired:
		return Errorf(Unsupported, "zerotier network %s: AUTHENTICATION_REQUIRED: the network wants an SSO login, which nodenet cannot do", id)
	}
	return Errorf(Internal, "zerotier network %s: status %q", id, nw.Status)
}

// ztClient talks to the zerotier-one service's local JSON API on
// 127.0.0.1. It reads the port and the auth token from the service's home
// at every call, so a service restarted on another port is found again.
type ztClient struct {
	home string
	http *http.Client
}

func newZTClient(home string) *ztClient {
	if home == "" {
		home = DefaultZerotierHome
	}
	return &ztClient{home: home, http: &http.Client{
		Timeout: 10 * time.Second,
		// Never through a proxy from the environment: the API is local.
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
	}}
}

// endpoint is the API's address (from <home>/zerotier-one.port, else
// 9993) and the auth token (<home>/authtoken.secret).
func (c *ztClient) endpoint() (addr, token string, err error) {
	addr = "127.0.0.1:" + strconv.Itoa(ztDefaultPort)
	portFile := filepath.Join(c.home, "zerotier-one.port")
	if b, err := os.ReadFile(portFile); err == nil {
		port, perr := strconv.Atoi(strings.TrimSpace(string(b)))
		if perr != nil || port < 1 || port > 65535 {
			return "", "", Errorf(Unsupported, "zerotier-one: %s holds %q, not a port", portFile, strings.TrimSpace(string(b)))
		}
		addr = "127.0.0.1:" + strconv.Itoa(port)
	}
	tokenFile := filepath.Join(c.home, "authtoken.secret")
	b, err := os.ReadFile(tokenFile)
	if err != nil {
		return "", "", Errorf(Unsupported, "zerotier-one: cannot read its auth token: %w (is zerotier-one installed, and --zerotier-home its home?)", err)
	}
	token = strings.TrimSpace(string(b))
	if token == "" {
		return "", "", Errorf(Unsupported, "zerotier-one: its auth token %s is empty", tokenFile)
	}
	return addr, token, nil
}

// do sends one request and returns the status code and body; an answer
// the service refused for its token is an error here.
func (c *ztClient) do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	addr, token, err := c.endpoint()
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, Errorf(Internal, "zerotier-one: %s %s: %w", method, path, err)
	}
	req.Header.Set("X-ZT1-Auth", token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return 0, nil, Errorf(Unsupported, "zerotier-one is not running (no answer on %s)", addr)
		}
		if ctx.Err() != nil {
			return 0, nil, Errorf(Internal, "zerotier-one: %s %s: %w", method, path, ctx.Err())
		}
		return 0, nil, Errorf(Internal, "zerotier-one on %s: %s %s: %w", addr, method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, nil, Errorf(Internal, "zerotier-one on %s: %s %s: read answer: %w", addr, method, path, err)
	}
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return 0, nil, Errorf(Unsupported, "zerotier-one on %s refused nodenet (%s): the token in %s is not the running service's",
			addr, resp.Status, filepath.Join(c.home, "authtoken.secret"))
	}
	return resp.StatusCode, b, nil
}

// network returns a network the service has joined; joined is false when
// it has not (the service answers 404).
func (c *ztClient) network(ctx context.Context, id string) (nw ztNetwork, joined bool, err error) {
	code, b, err := c.do(ctx, http.MethodGet, "/network/"+id, nil)
	if err != nil {
		return nw, false, err
	}
	if code == http.StatusNotFound {
		return nw, false, nil
	}
	if code != http.StatusOK {
		return nw, false, Errorf(Internal, "zerotier-one: GET /network/%s: %d %s", id, code, bytes.TrimSpace(b))
	}
	if err := json.Unmarshal(b, &nw); err != nil {
		return nw, false, Errorf(Internal, "zerotier-one: GET /network/%s: %w", id, err)
	}
	return nw, true, nil
}

// join asks the service to join a network. Joining one already joined
// changes nothing.
func (c *ztClient) join(ctx context.Context, id string) error {
	code, b, err := c.do(ctx, http.MethodPost, "/network/"+id, []byte("{}"))
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return Errorf(Internal, "zerotier-one: join %s (POST /network/%s): %d %s", id, id, code, bytes.TrimSpace(b))
	}
	return nil
}

// leave asks the service to leave a network; one not joined is no error
// (the service answers 200 either way).
func (c *ztClient) leave(ctx context.Context, id string) error {
	code, b, err := c.do(ctx, http.MethodDelete, "/network/"+id, nil)
	if err != nil {
		return err
	}
	if code != http.StatusOK && code != http.StatusNotFound {
		return Errorf(Internal, "zerotier-one: leave %s (DELETE /network/%s): %d %s", id, id, code, bytes.TrimSpace(b))
	}
	return nil
}
