package wire

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
)

// ErrNotImplemented is returned where this OS lacks a feature; the caller refuses service
// rather than guess.
var ErrNotImplemented = errors.New("not implemented on this platform")

// UntrustedServerError means a client refused a socket before sending anything on it,
// because the socket may be served by another user: its directory (or the symbolic link
// to it) belongs to someone else, the process listening on it runs as someone else, or the
// client could not tell who that process is (Err says why; it wraps ErrNotImplemented on
// an OS without a peer-credential check). Test for it with IsUntrustedServer.
type UntrustedServerError struct {
	Socket string // the socket's path as the client dialled it
	Path   string // what belongs to someone else: the socket's directory, or Socket for the server
	UID    int    // the owner of Path, or the server's uid; -1 when unknown
	User   string // the owner's user name; empty when the system does not know the uid
	PID    int    // the server's process id when the OS tells; 0 otherwise
	Want   int    // the uid this process runs as, which owner and server must have
	Err    error  // why the server's uid is unknown; nil when it is known

	link string // the socket's directory as named, when it leads to Path through a symbolic link
}

func (e *UntrustedServerError) Error() string {
	const nothing = "; nothing was sent to it"
	switch {
	case e.Err != nil:
		return fmt.Sprintf("refusing the agent socket %s: cannot tell which user serves it (%v)%s. "+
			"Set AUTHAGENT_SOCK to the socket of an agent you started yourself", e.Socket, e.Err, nothing)
	case e.Path == e.Socket:
		return fmt.Sprintf("refusing the agent socket %s: it is served by %s, not by you (uid %d)%s. "+
			"Stop that process and remove the socket, then start your own agent with `eval \"$(authagent start)\"`; "+
			"or set AUTHAGENT_SOCK to your own agent's socket", e.Socket, e.owner(), e.Want, nothing)
	}
	where := "its directory " + e.Path
	if e.link != "" {
		where = fmt.Sprintf("its directory %s leads to %s, which", e.link, e.Path)
	}
	return fmt.Sprintf("refusing the agent socket %s: %s belongs to %s, not to you (uid %d), "+
		"so another user may be listening there%s. Remove %s (as its owner or root), "+
		"or set AUTHAGENT_SOCK to a socket in a directory of your own", e.Socket, where, e.owner(), e.Want, nothing, filepath.Dir(e.Socket))
}

// owner names the owner: "user NAME (uid N, process P)", or "uid N" without a name.
func (e *UntrustedServerError) owner() string {
	id := "uid " + strconv.Itoa(e.UID)
	if e.PID > 0 {
		id += ", process " + strconv.Itoa(e.PID)
	}
	if e.User == "" {
		return id
	}
	return fmt.Sprintf("user %s (%s)", e.User, id)
}

func (e *UntrustedServerError) Unwrap() error { return e.Err }

// IsUntrustedServer reports whether err, or an error it wraps, is an
// *UntrustedServerError: the client refused the socket because another user may serve it.
func IsUntrustedServer(err error) bool {
	var ue *UntrustedServerError
	return errors.As(err, &ue)
}

// Peer is the process on the other end of a connection.
type Peer struct {
	UID, PID int
	Known    bool // false when the OS could not tell
}

// ServerCheck decides whether a socket and the server behind it are this user's own. Its
// zero value checks against this process's effective uid with the kernel's answers; tests
// set the fields to play another user without being root.
type ServerCheck struct {
	UID   func() int                                  // default: os.Geteuid
	Peer  func(net.Conn) (Peer, error)                // default: PeerOf
	Owner func(path string, follow bool) (int, error) // default: the file's owner
}

func (s *ServerCheck) want() int {
	if s.UID != nil {
		return s.UID()
	}
	return os.Geteuid()
}

// Dial connects to the agent's socket at sock and checks it before anything is written:
// with dial nil (a net.Dialer), the socket's directory first, then, on any connection, the
// process that serves it. A dial that returns no Unix socket connection cannot be checked
// and is refused. Errors: *UntrustedServerError, or dial's.
func (s *ServerCheck) Dial(ctx context.Context, sock string, dial func(ctx context.Context, network, addr string) (net.Conn, error)) (net.Conn, error) {
	if dial == nil {
		if err := s.directory(sock); err != nil {
			return nil, err
		}
		var d net.Dialer
		dial = d.DialContext
	}
	conn, err := dial(ctx, "unix", sock)
	if err != nil {
		return nil, err
	}
	if err := s.server(sock, conn); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// directory refuses a socket whose directory, or the symbolic link that leads there,
// belongs to neither this user nor root. It judges only what it can see: a directory that
// does not exist yet (or cannot be examined) is left to the dial and the server check.
func (s *ServerCheck) directory(sock string) error {
	owner := s.Owner
	if owner == nil {
		owner = fileOwner
	}
	want := s.want()
	dir := filepath.Dir(sock)
	for _, follow := range []bool{false, true} {
		uid, err := owner(dir, follow)
		if err != nil || uid == want || uid == 0 {
			continue
		}
		e := &UntrustedServerError{Socket: sock, Path: dir, UID: uid, User: userName(uid), Want: want}
		if follow {
			// The name is ours but leads elsewhere: name the place it leads to.
			if real, err := filepath.EvalSymlinks(dir); err == nil && real != dir {
				e.Path, e.link = real, dir
			}
		}
		return e
	}
	return nil
}

// server refuses a connection whose listening process runs as another user, or whose
// user cannot be learned. It must run before anything is written on c.
func (s *ServerCheck) server(sock string, c net.Conn) error {
	peer := s.Peer
	if peer == nil {
		peer = PeerOf
	}
	want := s.want()
	p, err := peer(c)
	switch {
	case err != nil:
		return &UntrustedServerError{Socket: sock, Path: sock, UID: -1, Want: want, Err: err}
	case !p.Known:
		return &UntrustedServerError{Socket: sock, Path: sock, UID: -1, Want: want, Err: errors.New("the OS did not say")}
	case p.UID != want:
		return &UntrustedServerError{Socket: sock, Path: sock, UID: p.UID, User: userName(p.UID), PID: p.PID, Want: want}
	}
	return nil
}

// userName is uid's login name, or "" when the system has none for it.
func userName(uid int) string {
	u, err := user.LookupId(strconv.Itoa(uid))
	if err != nil {
		return ""
	}
	return u.Username
}
