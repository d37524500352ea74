package testenv

import (
	"encoding/json"
	"fmt"
	"net"
	"time"
)

// ovsdbEcho sends one RFC 7047 echo to an OVSDB unix socket and checks the
// reply: a socket file alone does not prove ovsdb-server serves it.
func ovsdbEcho(path string) error {
	conn, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte(`{"method":"echo","params":["nnt"],"id":0}`)); err != nil {
		return fmt.Errorf("echo to %s: %w", path, err)
	}
	var reply struct {
		ID     int             `json:"id"`
		Result []string        `json:"result"`
		Error  json.RawMessage `json:"error"`
	}
	if err := json.NewDecoder(conn).Decode(&reply); err != nil {
		return fmt.Errorf("echo to %s: %w", path, err)
	}
	if len(reply.Result) != 1 || reply.Result[0] != "nnt" {
		return fmt.Errorf("echo to %s: unexpected reply %+v", path, reply)
	}
	return nil
}

// dialUnix succeeds once something accepts connections on path.
func dialUnix(path string) error {
	conn, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return err
	}
	return conn.Close()
}
