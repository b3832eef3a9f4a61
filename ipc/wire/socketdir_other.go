//go:build !darwin && !windows

package wire

// socketDir is the agent's socket directory when neither AUTHAGENT_SOCK nor
// XDG_RUNTIME_DIR names one: $TMPDIR/authagent-$UID.
func socketDir() string { return tempSocketDir() }
