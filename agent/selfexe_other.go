//go:build !unix

package agent

// selfExe: this OS gives no inode to compare with a caller's, so no caller is taken for
// an authagent command that may ask on its terminal.
func selfExe() (dev, ino uint64, ok bool) { return 0, 0, false }
