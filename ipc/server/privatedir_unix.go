//go:build unix

package server

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// closeDir checks that the socket directory dir (fi) belongs to us and makes it 0700 if
// it was opened up.
func closeDir(dir string, fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if ok && int(st.Uid) != os.Getuid() {
		return fmt.Errorf("socket directory %s belongs to uid %d, not to you (uid %d); set AUTHAGENT_SOCK to a path in a directory of your own", dir, st.Uid, os.Getuid())
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("socket directory %s is open to others and chmod 0700 failed: %w", dir, err)
		}
	}
	return nil
}

// closeSocket makes the socket file 0600.
func closeSocket(path string) error { return os.Chmod(path, 0o600) }
