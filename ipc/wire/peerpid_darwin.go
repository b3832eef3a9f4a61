package wire

import "golang.org/x/sys/unix"

// peerPID is the process id of the socket's peer, 0 when the kernel does not say.
func peerPID(fd int) int {
	pid, err := unix.GetsockoptInt(fd, unix.SOL_LOCAL, unix.LOCAL_PEERPID)
	if err != nil {
		return 0
	}
	return pid
}
