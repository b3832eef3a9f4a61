package wire

import (
	"os"
	"testing"
)

// A directory this process made is its user's: fileOwner maps its owner SID to the uid
// os.Geteuid returns on Windows (-1), which ServerCheck compares against.
func TestFileOwnerIsMe(t *testing.T) {
	dir := t.TempDir()
	for _, follow := range []bool{false, true} {
		uid, err := fileOwner(dir, follow)
		if err != nil || uid != os.Geteuid() {
			t.Errorf("fileOwner(%s, follow=%v) = %d, %v; want %d (this user)", dir, follow, uid, err, os.Geteuid())
		}
	}
	if _, err := fileOwner(dir+`\missing`, true); err == nil {
		t.Errorf("fileOwner of a missing path: no error")
	}
}
