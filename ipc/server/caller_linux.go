//go:build linux

package server

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/authagent/authagent/agent"
	"github.com/authagent/authagent/ipc/wire"
)

// callerOf describes the peer from /proc, read when the agent accepts its connection: its
// executable (path, the file's device and inode, and its ctime and size, so that a binary
// replaced at the same path or rewritten in place is another one), its start time, and its
// parent's executable. Every read goes through one open /proc/PID directory, so they all
// describe one process: a pid reused meanwhile reads as gone, not as another program. What
// /proc cannot tell stays zero. docs/security.md says what of it can be trusted.
func callerOf(p wire.Peer) *agent.Caller {
	c := &agent.Caller{PID: p.PID, UID: p.UID}
	if p.PID <= 0 {
		return c
	}
	dir, err := openProc(p.PID)
	if err != nil {
		return c
	}
	defer unix.Close(dir)
	// The executable first: the sooner it is read after the connect, the smaller the time
	// in which an exec renames the caller.
	if exe, err := procExe(dir); err == nil {
		c.Exe, c.ExeDeleted = exe.path, exe.deleted
		c.Dev, c.Ino, c.Ctime, c.Size = exe.dev, exe.ino, exe.ctime, exe.size
		c.ExeMismatch = exe.deleted || !exe.atPath()
	}
	st, err := procStat(dir)
	if err != nil {
		return c
	}
	c.Start = st.start
	if st.ppid > 0 {
		c.ParentPID = st.ppid
		if pdir, err := openProc(st.ppid); err == nil {
			if exe, err := procExe(pdir); err == nil {
				c.ParentExe = exe.path
			}
			unix.Close(pdir)
		}
	}
	return c
}

// openProc opens /proc/PID; reads relative to it fail (ESRCH) once that process is gone,
// even when its pid is given to another.
func openProc(pid int) (int, error) {
	return unix.Open("/proc/"+strconv.Itoa(pid), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
}

type procFile struct {
	path     string
	deleted  bool
	dev, ino uint64
	ctime    int64 // nanoseconds since the epoch
	size     int64
}

// atPath: the file at f.path, in the agent's own mount namespace, is the file f is. A
// process in a mount namespace of its own can have its executable named by a path that
// holds another file here.
func (f procFile) atPath() bool {
	fi, err := os.Stat(f.path)
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && uint64(st.Dev) == f.dev && st.Ino == f.ino
}

// procExe reads exe in the /proc/PID directory dir: the path the kernel names, without the
// " (deleted)" it adds once the file was removed or replaced, and the device, inode, ctime
// and size of the file the process runs (stat follows the link to that very file, deleted
// or not).
func procExe(dir int) (procFile, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(dir, "exe", buf)
	if err != nil {
		return procFile{}, fmt.Errorf("readlink exe: %w", err)
	}
	if n == len(buf) {
		return procFile{}, errors.New("readlink exe: path too long")
	}
	var f procFile
	f.path, f.deleted = strings.CutSuffix(string(buf[:n]), " (deleted)")
	var st unix.Stat_t
	if err := unix.Fstatat(dir, "exe", &st, 0); err != nil {
		return procFile{}, fmt.Errorf("stat exe: %w", err)
	}
	f.dev, f.ino, f.size = uint64(st.Dev), st.Ino, st.Size
	f.ctime = st.Ctim.Nano()
	return f, nil
}

type procStatus struct {
	ppid  int
	start uint64 // clock ticks after boot
}

// procStat reads the parent pid (field 4) and the start time (field 22) from stat in the
// /proc/PID directory dir. The command name (field 2) is in parentheses and may itself
// hold spaces and parentheses, so the fields are counted from the last ')'.
func procStat(dir int) (procStatus, error) {
	fd, err := unix.Openat(dir, "stat", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return procStatus{}, fmt.Errorf("open stat: %w", err)
	}
	f := os.NewFile(uintptr(fd), "stat")
	defer f.Close()
	b := make([]byte, 4096)
	n, err := f.Read(b)
	if err != nil {
		return procStatus{}, fmt.Errorf("read stat: %w", err)
	}
	return parseStat(string(b[:n]))
}

func parseStat(s string) (procStatus, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStatus{}, errors.New("stat: no command name")
	}
	fields := strings.Fields(s[i+1:]) // field 3 (state), 4 (ppid), …
	if len(fields) < 20 {
		return procStatus{}, errors.New("stat: too short")
	}
	ppid, err := strconv.Atoi(fields[1])
	if err != nil {
		return procStatus{}, fmt.Errorf("stat: ppid: %w", err)
	}
	start, err := strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return procStatus{}, fmt.Errorf("stat: starttime: %w", err)
	}
	return procStatus{ppid: ppid, start: start}, nil
}
