package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
)

// ErrAgentRunning means another agent already answers on the socket.
var ErrAgentRunning = errors.New("an agent is already running")

// Listen creates the socket at path: its directory is created 0700 and must belong to us,
// the socket is made 0600, a stale socket file is replaced, and a live agent on it makes
// Listen fail with ErrAgentRunning.
func Listen(path string) (net.Listener, error) {
	dir := filepath.Dir(path)
	if err := ensurePrivateDir(dir); err != nil {
		return nil, err
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a socket; move it away or set AUTHAGENT_SOCK to another path", path)
		}
		if alive(path) {
			return nil, fmt.Errorf("%w on %s: use it (export AUTHAGENT_SOCK=%s), or stop it first", ErrAgentRunning, path, path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale socket: %w", err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := closeSocket(path); err != nil {
		ln.Close()
		return nil, fmt.Errorf("chmod socket: %w", err)
	}
	return ln, nil
}

// ensurePrivateDir creates dir 0700, or checks that an existing one is ours and closes it
// to others if it was opened up.
func ensurePrivateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create socket directory: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("socket directory %s is not a directory", dir)
	}
	return closeDir(dir, fi)
}

// alive reports whether something accepts connections on the socket.
func alive(path string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// ActivatedListener returns the socket systemd passed to the agent (socket activation,
// LISTEN_FDS), or nil when there is none. It clears the LISTEN_* variables so that children
// do not take the socket for theirs.
func ActivatedListener() (net.Listener, error) {
	lns, err := activation.Listeners()
	if err != nil {
		return nil, fmt.Errorf("socket activation: %w", err)
	}
	var got []net.Listener
	for _, ln := range lns {
		if ln != nil {
			got = append(got, ln)
		}
	}
	switch len(got) {
	case 0:
		return nil, nil
	case 1:
		if _, ok := got[0].(*net.UnixListener); !ok {
			got[0].Close()
			return nil, fmt.Errorf("socket activation: systemd passed a %s socket; authagent.socket must be ListenStream= on a path", got[0].Addr().Network())
		}
		return got[0], nil
	default:
		for _, ln := range got {
			ln.Close()
		}
		return nil, fmt.Errorf("socket activation: systemd passed %d sockets; authagent.socket should have exactly one ListenStream=", len(got))
	}
}
