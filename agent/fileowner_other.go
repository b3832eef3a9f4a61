//go:build !unix

package agent

import "io/fs"

// ownedByMe reports whether fi belongs to the user the agent runs as. Without Unix owners
// every file in the user's own config directory counts as the user's.
func ownedByMe(fs.FileInfo) bool { return true }
