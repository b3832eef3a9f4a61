package wire

import (
	"errors"
	"fmt"
	"net"
	"unsafe"

	"golang.org/x/sys/windows"
)

// sioAFUnixGetPeerPID is SIO_AF_UNIX_GETPEERPID from afunix.h, _WSAIOR(IOC_VENDOR, 256):
// the process id of an AF_UNIX socket's peer, as of connect.
const sioAFUnixGetPeerPID = 0x58000100

// PeerOf asks Windows for the process id on the other end of c (SIO_AF_UNIX_GETPEERPID)
// and reads that process's user SID from its token; UID is that SID mapped as sidUID
// says. Windows names the peer's pid only; the user is read when PeerOf runs, so a peer
// that exited and whose pid was reused in between is judged by the new process.
func PeerOf(c net.Conn) (Peer, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return Peer{}, errors.New("not a unix socket connection")
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return Peer{}, err
	}
	var pid uint32
	var ierr error
	if err := raw.Control(func(fd uintptr) {
		var n uint32 // Windows leaves it 0 (microsoft/WSL#4676); pid is what counts
		ierr = windows.WSAIoctl(windows.Handle(fd), sioAFUnixGetPeerPID, nil, 0,
			(*byte)(unsafe.Pointer(&pid)), uint32(unsafe.Sizeof(pid)), &n, nil, 0)
	}); err != nil {
		return Peer{}, err
	}
	if ierr != nil {
		return Peer{}, fmt.Errorf("SIO_AF_UNIX_GETPEERPID: %w", ierr)
	}
	if pid == 0 {
		return Peer{}, errors.New("SIO_AF_UNIX_GETPEERPID: no peer process id")
	}
	sid, err := processUserSID(pid)
	if err != nil {
		return Peer{}, err
	}
	uid, err := sidUID(sid)
	if err != nil {
		return Peer{}, err
	}
	return Peer{UID: uid, PID: int(pid), Known: true}, nil
}

// processUserSID is the user SID of process pid's token.
func processUserSID(pid uint32) (*windows.SID, error) {
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, pid)
	if err != nil {
		return nil, fmt.Errorf("open peer process %d: %w", pid, err)
	}
	defer windows.CloseHandle(h)
	var tok windows.Token
	if err := windows.OpenProcessToken(h, windows.TOKEN_QUERY, &tok); err != nil {
		return nil, fmt.Errorf("open token of peer process %d: %w", pid, err)
	}
	defer tok.Close()
	tu, err := tok.GetTokenUser()
	if err != nil {
		return nil, fmt.Errorf("read user of peer process %d: %w", pid, err)
	}
	return tu.User.Sid.Copy()
}
