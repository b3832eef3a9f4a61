//go:build !unix

package audit

import "os"

// openFile opens the file at path with flag (os.O_RDONLY, or os.O_RDWR|os.O_APPEND with
// perhaps os.O_CREATE; a file it creates is 0600) only when it is a regular file: a
// symlink or anything else at the path, before or after the open, is a *NotRegularError.
// (Without O_NOFOLLOW, a symlink swapped in between the check and the open is followed;
// what was opened is still checked to be a regular file.)
func openFile(path string, flag int) (*os.File, os.FileInfo, error) {
	if fi, err := os.Lstat(path); err == nil && !fi.Mode().IsRegular() {
		return nil, nil, &NotRegularError{Path: path, Mode: fi.Mode()}
	}
	f, err := os.OpenFile(path, flag, 0o600)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = &NotRegularError{Path: path, Mode: fi.Mode()}
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}
