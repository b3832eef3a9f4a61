package agent

import (
	"fmt"

	"golang.org/x/sys/windows"
)

// processRightsForUser is what the agent's own user may still open it for: wait for it
// (SYNCHRONIZE), ask whether it runs (PROCESS_QUERY_LIMITED_INFORMATION) and end it
// (PROCESS_TERMINATE); not read or write its memory, inject a thread or duplicate its
// handles.
const processRightsForUser = windows.SYNCHRONIZE | windows.PROCESS_QUERY_LIMITED_INFORMATION | windows.PROCESS_TERMINATE

// Harden gives the agent's process a protected DACL that grants its user only
// processRightsForUser, and LocalSystem all rights, as Windows' nearest thing to
// PR_SET_DUMPABLE 0. It stops another program of the user's from opening the agent to
// read its memory as long as that program does not first rewrite the DACL, which the
// process's owner may always do; and administrators with SeDebugPrivilege pass it. Windows
// writes no core dumps unless Windows Error Reporting's LocalDumps is set up.
func Harden() error {
	tu, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return fmt.Errorf("harden process: read own user: %w", err)
	}
	sddl := fmt.Sprintf("D:P(A;;0x%x;;;%s)(A;;GA;;;SY)", processRightsForUser, tu.User.Sid.String())
	sd, err := windows.SecurityDescriptorFromString(sddl)
	if err != nil {
		return fmt.Errorf("harden process: %w", err)
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		return fmt.Errorf("harden process: %w", err)
	}
	if err := windows.SetSecurityInfo(windows.CurrentProcess(), windows.SE_KERNEL_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, dacl, nil); err != nil {
		return fmt.Errorf("harden process: set its DACL: %w", err)
	}
	return nil
}
