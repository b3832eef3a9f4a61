//go:build linux

package server

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/authagent/authagent/agent"
	"github.com/authagent/authagent/ipc/wire"
)

// callerOf describes the peer from /proc, read when it connects: its executable (path and
// the file's device and inode, so a binary replaced at the same path is another one) and
// its parent's. What /proc cannot tell stays zero. docs/security.md says what of it can be
// trusted.
func callerOf(p wire.Peer) *agent.Caller {
	c := &agent.Caller{PID: p.PID, UID: p.UID}
	if p.PID <= 0 {
		return c
	}
	if exe, err := procExe(p.PID); err == nil {
		c.Exe, c.ExeDeleted, c.Dev, c.Ino = exe.path, exe.deleted, exe.dev, exe.ino
	}
	if ppid, err := procParent(p.PID); err == nil && ppid > 0 {
		c.ParentPID = ppid
		if exe, err := procExe(ppid); err == nil {
			c.ParentExe = exe.path
		}
	}
	return c
}

type procFile struct {
	path     string
	deleted  bool
	dev, ino uint64
}

// procExe reads /proc/PID/exe: the path the kernel names, without the " (deleted)" it
// adds once the file was removed or replaced, and the device and inode of the file the
// process runs (stat follows the link to that very file, deleted or not).
func procExe(pid int) (procFile, error) {
	link := "/proc/" + strconv.Itoa(pid) + "/exe"
	path, err := os.Readlink(link)
	if err != nil {
		return procFile{}, err
	}
	var f procFile
	f.path, f.deleted = strings.CutSuffix(path, " (deleted)")
	fi, err := os.Stat(link)
	if err != nil {
		return procFile{}, err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		f.dev, f.ino = uint64(st.Dev), st.Ino
	}
	return f, nil
}

// procParent is the parent pid from /proc/PID/stat: the second field after the command
// name, which is in parentheses and may itself hold spaces and parentheses, so the fields
// are counted from the last ')'.
func procParent(pid int) (int, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	fields := strings.Fields(s[i+1:]) // state, ppid, …
	if len(fields) < 2 {
		return 0, fmt.Errorf("/proc/%d/stat: too short", pid)
	}
	return strconv.Atoi(fields[1])
}
