//go:build !unix && !windows

package server

import (
	"fmt"
	"io/fs"

	"github.com/authagent/authagent/ipc/wire"
)

// closeDir cannot close a directory to other users on this OS, so it refuses.
func closeDir(dir string, _ fs.FileInfo) error {
	return fmt.Errorf("socket directory %s: closing it to other users is %w", dir, wire.ErrNotImplemented)
}

// closeSocket is not reached: closeDir refuses first.
func closeSocket(string) error { return wire.ErrNotImplemented }
