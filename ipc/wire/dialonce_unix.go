//go:build unix

package wire

import (
	"context"
	"errors"
	"net"
	"os"
	"syscall"
	"time"
)

// DialOnce connects to the agent's socket at sock for a short exchange, with the same
// checks as Dial with the default dialer, on a blocking socket: a program that sends a
// request or two and exits needs no poller, and starts and ends faster without it. The
// connection takes no deadlines; to cancel an exchange, call its Shutdown method (see
// Shutdown). Close the connection when done.
func (s *ServerCheck) DialOnce(ctx context.Context, sock string) (net.Conn, error) {
	if err := s.directory(sock); err != nil {
		return nil, err
	}
	syscall.ForkLock.RLock()
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: "unix", Addr: &net.UnixAddr{Name: sock, Net: "unix"}, Err: os.NewSyscallError("socket", err)}
	}
	for {
		err = syscall.Connect(fd, &syscall.SockaddrUnix{Name: sock})
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		syscall.Close(fd)
		return nil, &net.OpError{Op: "dial", Net: "unix", Addr: &net.UnixAddr{Name: sock, Net: "unix"}, Err: os.NewSyscallError("connect", err)}
	}
	c := &fileConn{f: os.NewFile(uintptr(fd), sock), fd: fd, addr: &net.UnixAddr{Name: sock, Net: "unix"}}
	if err := s.server(sock, c); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// fileConn is a blocking Unix socket connection.
type fileConn struct {
	f    *os.File
	fd   int
	addr *net.UnixAddr
}

func (c *fileConn) Read(b []byte) (int, error)  { return c.f.Read(b) }
func (c *fileConn) Write(b []byte) (int, error) { return c.f.Write(b) }
func (c *fileConn) Close() error                { return c.f.Close() }
func (c *fileConn) LocalAddr() net.Addr         { return &net.UnixAddr{Net: "unix"} }
func (c *fileConn) RemoteAddr() net.Addr        { return c.addr }

// Deadlines are not supported on a blocking socket; cancel the context instead.
func (c *fileConn) SetDeadline(time.Time) error      { return os.ErrNoDeadline }
func (c *fileConn) SetReadDeadline(time.Time) error  { return os.ErrNoDeadline }
func (c *fileConn) SetWriteDeadline(time.Time) error { return os.ErrNoDeadline }

// Shutdown ends the connection both ways: a Read or Write blocked on it returns.
func (c *fileConn) Shutdown() error { return syscall.Shutdown(c.fd, syscall.SHUT_RDWR) }

// SyscallConn reaches the socket, for its peer's credentials.
func (c *fileConn) SyscallConn() (syscall.RawConn, error) { return c.f.SyscallConn() }

// unixSocket reaches the socket of a Unix socket connection; anything else is an error.
func unixSocket(c net.Conn) (syscall.RawConn, error) {
	switch c := c.(type) {
	case *net.UnixConn:
		return c.SyscallConn()
	case *fileConn:
		return c.SyscallConn()
	}
	return nil, errors.New("not a unix socket connection")
}
