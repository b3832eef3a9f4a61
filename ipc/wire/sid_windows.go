package wire

import (
	"fmt"

	"golang.org/x/sys/windows"
)

// Windows has no uids: os.Getuid and os.Geteuid return -1 there. So that one comparison
// serves every OS, a Windows user SID stands for a uid: this process's user is -1 (what
// os.Geteuid returns), LocalSystem and BUILTIN\Administrators are 0 (Windows' root), and
// every other SID is OtherUserUID.

// OtherUserUID is the uid a Windows SID of another user maps to.
const OtherUserUID = -2

// currentUserSID is the user SID of this process's token.
func currentUserSID() (*windows.SID, error) {
	tu, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return nil, fmt.Errorf("read own token user: %w", err)
	}
	return tu.User.Sid.Copy()
}

// sidUID maps sid to a uid as described above.
func sidUID(sid *windows.SID) (int, error) {
	me, err := currentUserSID()
	if err != nil {
		return 0, err
	}
	switch {
	case sid.Equals(me):
		return -1, nil
	case sid.IsWellKnown(windows.WinLocalSystemSid), sid.IsWellKnown(windows.WinBuiltinAdministratorsSid):
		return 0, nil
	}
	return OtherUserUID, nil
}
