//go:build darwin || freebsd

package wire

import (
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// PeerOf reads the credentials of the process on the other end from the kernel
// (LOCAL_PEERCRED; on macOS also LOCAL_PEERPID).
func PeerOf(c net.Conn) (Peer, error) {
	raw, err := unixSocket(c)
	if err != nil {
		return Peer{}, err
	}
	var cred *unix.Xucred
	var pid int
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptXucred(int(fd), unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
		if cerr == nil {
			pid = peerPID(int(fd))
		}
	}); err != nil {
		return Peer{}, err
	}
	if cerr != nil {
		return Peer{}, fmt.Errorf("LOCAL_PEERCRED: %w", cerr)
	}
	return Peer{UID: int(cred.Uid), PID: pid, Known: true}, nil
}
