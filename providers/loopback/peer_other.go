//go:build !linux

package loopback

import (
	"errors"
	"net/http"
)

// errPeerUnsupported: this system does not say which user owns a TCP connection's other
// end, so connections are not told apart by user; the start page's cookie and its single
// use guard the login alone.
var errPeerUnsupported = errors.New("loopback: telling the user of a connection is not implemented on this system")

func peerUID(*http.Request, int) (int, error) { return 0, errPeerUnsupported }
