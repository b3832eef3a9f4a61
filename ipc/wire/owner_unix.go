//go:build unix

package wire

import (
	"io/fs"
	"os"
	"syscall"
)

// fileOwner is the uid that owns path, or the symbolic link at path unless follow.
func fileOwner(path string, follow bool) (int, error) {
	stat := os.Lstat
	if follow {
		stat = os.Stat
	}
	fi, err := stat(path)
	if err != nil {
		return 0, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, &fs.PathError{Op: "owner", Path: path, Err: ErrNotImplemented}
	}
	return int(st.Uid), nil
}
