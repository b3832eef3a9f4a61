//go:build unix

package agent

import (
	"os"
	"syscall"
)

// selfExe is the device and inode of the executable this process runs: /proc/self/exe
// where there is one (it is that very file, even if the path now holds another), else the
// file at os.Executable's path.
func selfExe() (dev, ino uint64, ok bool) {
	fi, err := os.Stat("/proc/self/exe")
	if err != nil {
		path, perr := os.Executable()
		if perr != nil {
			return 0, 0, false
		}
		if fi, err = os.Stat(path); err != nil {
			return 0, 0, false
		}
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return uint64(st.Dev), uint64(st.Ino), true
}
