package server

import (
	"fmt"
	"io/fs"

	"golang.org/x/sys/windows"
)

// closeDir gives the socket directory dir a protected DACL that grants this process's
// user, and no one else, full access, inherited by the socket file created in it (SDDL
// "D:P(A;OICI;FA;;;SID)"). Windows checks the socket file's DACL when a client connects
// to an AF_UNIX socket, so other users cannot reach the agent; mode bits mean nothing there.
func closeDir(dir string, _ fs.FileInfo) error {
	tu, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return fmt.Errorf("socket directory %s: read own user: %w", dir, err)
	}
	sd, err := windows.SecurityDescriptorFromString("D:P(A;OICI;FA;;;" + tu.User.Sid.String() + ")")
	if err != nil {
		return fmt.Errorf("socket directory %s: build DACL: %w", dir, err)
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		return fmt.Errorf("socket directory %s: build DACL: %w", dir, err)
	}
	if err := windows.SetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, dacl, nil); err != nil {
		return fmt.Errorf("socket directory %s: restrict to you: %w; set AUTHAGENT_SOCK to a path in a directory of your own", dir, err)
	}
	return nil
}

// closeSocket does nothing: the socket file inherits its directory's user-only DACL, and
// Windows has no mode bits to set.
func closeSocket(string) error { return nil }
