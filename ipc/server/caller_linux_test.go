//go:build linux

package server

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/authagent/authagent/ipc/wire"
)

// realPath is path with its links resolved, as /proc names an executable.
func realPath(t *testing.T, path string) string {
	t.Helper()
	p, err := filepath.EvalSymlinks(path)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func devIno(t *testing.T, path string) (uint64, uint64) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return uint64(st.Dev), st.Ino
}

// TestCallerOfSelf: the test process itself is named by its executable and that file's
// device and inode, and its parent is found.
func TestCallerOfSelf(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	c := callerOf(wire.Peer{PID: os.Getpid(), UID: os.Getuid(), Known: true})
	if want := realPath(t, exe); c.Exe != want {
		t.Errorf("Exe %q, want %q", c.Exe, want)
	}
	dev, ino := devIno(t, exe)
	if c.Dev != dev || c.Ino != ino {
		t.Errorf("Dev, Ino %d, %d; want %d, %d (stat of the executable)", c.Dev, c.Ino, dev, ino)
	}
	if c.ExeDeleted {
		t.Error("ExeDeleted for a binary still in place")
	}
	if c.ParentPID != os.Getppid() {
		t.Errorf("ParentPID %d, want %d", c.ParentPID, os.Getppid())
	}
	if c.ParentExe == "" {
		t.Error("ParentExe empty")
	}
	if c.PID != os.Getpid() || c.UID != os.Getuid() {
		t.Errorf("PID, UID %d, %d; want %d, %d", c.PID, c.UID, os.Getpid(), os.Getuid())
	}
}

// startChild runs path (a copy of sleep) and returns its pid; it is killed at the end of
// the test.
func startChild(t *testing.T, path string) int {
	t.Helper()
	cmd := exec.Command(path, "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd.Process.Pid
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestCallerOfChild: a child process is named by its own executable, and its parent is
// this test binary; a binary replaced at the same path is another inode, and a process
// still running the old one is marked ExeDeleted and keeps the old inode.
func TestCallerOfChild(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err) // coreutils: on every machine the tests run on
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	prog := filepath.Join(t.TempDir(), "prog")
	copyFile(t, sleep, prog)
	first := startChild(t, prog)
	c1 := callerOf(wire.Peer{PID: first, UID: os.Getuid(), Known: true})
	if c1.Exe != prog {
		t.Errorf("child Exe %q, want %q", c1.Exe, prog)
	}
	if c1.ParentPID != os.Getpid() || c1.ParentExe != realPath(t, self) {
		t.Errorf("child's parent %d %q, want this test binary %d %q", c1.ParentPID, c1.ParentExe, os.Getpid(), realPath(t, self))
	}
	if dev, ino := devIno(t, prog); c1.Dev != dev || c1.Ino != ino {
		t.Errorf("child Dev, Ino %d, %d; want %d, %d", c1.Dev, c1.Ino, dev, ino)
	}

	// Replace the binary as an upgrade does: a new file renamed over the old path.
	next := prog + ".new"
	copyFile(t, sleep, next)
	if err := os.Rename(next, prog); err != nil {
		t.Fatal(err)
	}
	second := startChild(t, prog)
	c2 := callerOf(wire.Peer{PID: second, UID: os.Getuid(), Known: true})
	if c2.Exe != prog {
		t.Errorf("replaced binary: Exe %q, want %q", c2.Exe, prog)
	}
	if c2.Ino == c1.Ino && c2.Dev == c1.Dev {
		t.Errorf("a binary replaced at the same path has the same Dev/Ino %d/%d; want another", c2.Dev, c2.Ino)
	}
	again := callerOf(wire.Peer{PID: first, UID: os.Getuid(), Known: true})
	if again.Exe != prog || !again.ExeDeleted || again.Ino != c1.Ino {
		t.Errorf("the first child after the replacement: Exe %q, ExeDeleted %v, Ino %d; want %q, true, %d",
			again.Exe, again.ExeDeleted, again.Ino, prog, c1.Ino)
	}
}

// TestCallerOfGone: a pid that no longer runs gives the kernel's pid and uid and nothing
// else, not an error or another process.
func TestCallerOfGone(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	c := callerOf(wire.Peer{PID: pid, UID: os.Getuid(), Known: true})
	if c.PID != pid || c.Exe != "" || c.ParentPID != 0 || c.Ino != 0 {
		t.Errorf("caller of an exited pid: %+v; want only PID and UID", c)
	}
}
