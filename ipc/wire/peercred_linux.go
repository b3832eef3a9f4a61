//go:build linux

package wire

import (
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// PeerOf reads the credentials of the process on the other end of c from the kernel
// (SO_PEERCRED).
func PeerOf(c net.Conn) (Peer, error) {
	raw, err := unixSocket(c)
	if err != nil {
		return Peer{}, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return Peer{}, err
	}
	if cerr != nil {
		return Peer{}, fmt.Errorf("SO_PEERCRED: %w", cerr)
	}
	return Peer{UID: int(cred.Uid), PID: int(cred.Pid), Known: true}, nil
}
