//go:build !unix && !windows

package wire

import "io/fs"

// fileOwner is not implemented on this OS: the directory check then leaves the socket to
// the server check, which refuses it (PeerOf is not implemented either).
func fileOwner(path string, _ bool) (int, error) {
	return 0, &fs.PathError{Op: "owner", Path: path, Err: ErrNotImplemented}
}
