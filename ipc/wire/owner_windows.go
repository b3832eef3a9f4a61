package wire

import (
	"io/fs"

	"golang.org/x/sys/windows"
)

// fileOwner is the uid (see sidUID) that owns path, or the reparse point (symbolic link or
// junction) at path unless follow.
func fileOwner(path string, follow bool) (int, error) {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return 0, &fs.PathError{Op: "owner", Path: path, Err: err}
	}
	flags := uint32(windows.FILE_FLAG_BACKUP_SEMANTICS) // opens directories too
	if !follow {
		flags |= windows.FILE_FLAG_OPEN_REPARSE_POINT
	}
	h, err := windows.CreateFile(p, windows.READ_CONTROL,
		windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE|windows.FILE_SHARE_DELETE, nil, windows.OPEN_EXISTING, flags, 0)
	if err != nil {
		return 0, &fs.PathError{Op: "owner", Path: path, Err: err}
	}
	defer windows.CloseHandle(h)
	sd, err := windows.GetSecurityInfo(h, windows.SE_FILE_OBJECT, windows.OWNER_SECURITY_INFORMATION)
	if err != nil {
		return 0, &fs.PathError{Op: "owner", Path: path, Err: err}
	}
	owner, _, err := sd.Owner()
	if err != nil {
		return 0, &fs.PathError{Op: "owner", Path: path, Err: err}
	}
	return sidUID(owner)
}
