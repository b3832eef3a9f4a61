//go:build !linux

package ipc

import (
	"errors"
	"net"
)

// ErrNotImplemented is returned where this OS lacks a feature; the caller refuses service
// rather than guess.
var ErrNotImplemented = errors.New("not implemented on this platform")

func peerOf(net.Conn) (Peer, error) { return Peer{}, ErrNotImplemented }
