package wire

import (
	"os"
	"path/filepath"
)

// socketDir is ~/Library/Application Support/authagent on macOS: the same path whether
// the agent starts from launchd (which sets HOME but not TMPDIR), a terminal or the tray,
// and one the system's temporary-file cleaner leaves alone. Without a home directory, or
// with one so long that the socket's path would pass macOS's 104-byte limit, it is
// $TMPDIR/authagent-$UID.
func socketDir() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return tempSocketDir()
	}
	dir := filepath.Join(home, "Library", "Application Support", "authagent")
	if len(filepath.Join(dir, "agent.sock")) >= 104 { // sun_path holds 104 bytes with the NUL
		return tempSocketDir()
	}
	return dir
}
