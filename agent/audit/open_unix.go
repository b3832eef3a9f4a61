//go:build unix

package audit

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// openFile opens the file at path with flag (os.O_RDONLY, or os.O_RDWR|os.O_APPEND with
// perhaps os.O_CREATE; a file it creates is 0600) only when it is a regular file this
// user owns. It never follows a symlink (O_NOFOLLOW) and never waits in open (O_NONBLOCK:
// a FIFO with no reader at the other end would block it forever), and checks what it
// opened with fstat, since the path may change between the Lstat and the open. A
// symlink, FIFO, socket, device or directory there is a *NotRegularError; a file of
// another user an error that says whose it is.
func openFile(path string, flag int) (*os.File, os.FileInfo, error) {
	if fi, err := os.Lstat(path); err == nil && !fi.Mode().IsRegular() {
		return nil, nil, &NotRegularError{Path: path, Mode: fi.Mode()}
	}
	f, err := os.OpenFile(path, flag|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0o600)
	if err != nil {
		if fi, lerr := os.Lstat(path); lerr == nil && !fi.Mode().IsRegular() { // swapped in meanwhile (ELOOP, ENXIO, …)
			return nil, nil, &NotRegularError{Path: path, Mode: fi.Mode()}
		}
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = &NotRegularError{Path: path, Mode: fi.Mode()}
	}
	if err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
			err = fmt.Errorf("%s belongs to uid %d, not to this user (%d): move it away", path, st.Uid, os.Geteuid())
		}
	}
	if err == nil { // O_NONBLOCK means nothing to a regular file; clear it all the same
		err = unix.SetNonblock(int(f.Fd()), false)
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}
