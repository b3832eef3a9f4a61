//go:build !linux && !darwin && !freebsd

package ipc

import "net"

func peerOf(net.Conn) (Peer, error) { return Peer{}, ErrNotImplemented }
