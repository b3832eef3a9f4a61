package server

import (
	"os"
	"testing"
	"unsafe"

	"golang.org/x/sys/windows"
)

// fileAllAccess is FILE_ALL_ACCESS, "FA" in SDDL.
const fileAllAccess = 0x1f01ff

// Listen's directory gets a protected DACL with one entry: full access for this user.
func TestSocketDirIsUserOnly(t *testing.T) {
	dir := t.TempDir() + `\authagent`
	if err := ensurePrivateDir(dir); err != nil {
		t.Fatalf("ensurePrivateDir: %v", err)
	}
	sd, err := windows.GetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		t.Fatal(err)
	}
	control, _, err := sd.Control()
	if err != nil {
		t.Fatal(err)
	}
	if control&windows.SE_DACL_PROTECTED == 0 {
		t.Errorf("the DACL of %s inherits entries from its parent; want it protected", dir)
	}
	dacl, _, err := sd.DACL()
	if err != nil || dacl == nil {
		t.Fatalf("no DACL on %s: %v", dir, err)
	}
	me, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		t.Fatal(err)
	}
	if n := dacl.AceCount; n != 1 {
		t.Fatalf("DACL of %s has %d entries, want 1 (%s)", dir, n, sd)
	}
	var ace *windows.ACCESS_ALLOWED_ACE
	if err := windows.GetAce(dacl, 0, &ace); err != nil {
		t.Fatal(err)
	}
	sid := (*windows.SID)(unsafe.Pointer(&ace.SidStart))
	if ace.Header.AceType != windows.ACCESS_ALLOWED_ACE_TYPE || !sid.Equals(me.User.Sid) || ace.Mask != fileAllAccess {
		t.Errorf("DACL of %s = %s; want full access for %s only", dir, sd, me.User.Sid)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("the user cannot stat the directory any more: %v", err)
	}
}
