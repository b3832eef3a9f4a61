//go:build !linux && !darwin && !freebsd && !windows

package wire

import "net"

// PeerOf is not implemented on this OS: it returns ErrNotImplemented.
func PeerOf(net.Conn) (Peer, error) { return Peer{}, ErrNotImplemented }
