package wire

import (
	"os"
	"path/filepath"
)

// socketDir is %LOCALAPPDATA%\authagent on Windows: inside the user's profile, which only
// the user (and the system) may open. Without LOCALAPPDATA it is %TEMP%\authagent-$UID.
func socketDir() string {
	if d := os.Getenv("LOCALAPPDATA"); d != "" {
		return filepath.Join(d, "authagent")
	}
	return tempSocketDir()
}
