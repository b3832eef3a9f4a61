package wire

// peerPID is 0: FreeBSD's xucred carries the pid only in versions x/sys does not expose.
func peerPID(int) int { return 0 }
