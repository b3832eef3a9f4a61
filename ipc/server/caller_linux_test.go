//go:build linux

package server

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/authagent/authagent/agent"
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
	st := statOf(t, path)
	return uint64(st.Dev), st.Ino
}

func statOf(t *testing.T, path string) *syscall.Stat_t {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t)
}

// startTime is field 22 of /proc/PID/stat, read here with a parser of its own.
func startTime(t *testing.T, pid int) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]) // field 3 on
	if len(f) < 20 {
		t.Fatalf("stat %q: too short", s)
	}
	v, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		t.Fatalf("stat %q: %v", s, err)
	}
	return v
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
	if c.ExeDeleted || c.ExeMismatch {
		t.Errorf("ExeDeleted %v, ExeMismatch %v for a binary still in place", c.ExeDeleted, c.ExeMismatch)
	}
	if st := statOf(t, exe); c.Ctime != st.Ctim.Nano() || c.Size != st.Size {
		t.Errorf("Ctime, Size %d, %d; want %d, %d (stat of the executable)", c.Ctime, c.Size, st.Ctim.Nano(), st.Size)
	}
	if want := startTime(t, os.Getpid()); c.Start != want || want == 0 {
		t.Errorf("Start %d, want %d (field 22 of /proc/self/stat)", c.Start, want)
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
	if c1.ExeMismatch {
		t.Error("ExeMismatch for a child whose path holds its file")
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
	if !again.ExeMismatch {
		t.Error("the first child after the replacement: its path now holds another file, but ExeMismatch is false")
	}
	if c2.ExeMismatch {
		t.Error("the second child runs the file at its path, but ExeMismatch is true")
	}
}

// TestCallerOfRewritten: a binary rewritten in place (same path, same inode, same size:
// `cat other > prog`) has another ctime, so it is another executable.
func TestCallerOfRewritten(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	prog := filepath.Join(t.TempDir(), "prog")
	copyFile(t, sleep, prog)
	cmd := exec.Command(prog, "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c1 := callerOf(wire.Peer{PID: cmd.Process.Pid, UID: os.Getuid(), Known: true})
	cmd.Process.Kill()
	cmd.Wait() // a running binary cannot be written (ETXTBSY)
	if st := statOf(t, prog); c1.Ctime != st.Ctim.Nano() || c1.Size != st.Size {
		t.Fatalf("Ctime, Size %d, %d; want %d, %d", c1.Ctime, c1.Size, st.Ctim.Nano(), st.Size)
	}
	// The kernel stamps ctime with a coarse clock: rewrite until the stamp moves on.
	for i := 0; statOf(t, prog).Ctim.Nano() == c1.Ctime; i++ {
		if i == 1000 {
			t.Fatal("the ctime of a rewritten file does not change")
		}
		time.Sleep(5 * time.Millisecond)
		copyFile(t, sleep, prog) // O_TRUNC: the same inode, the same bytes
	}
	second := startChild(t, prog)
	c2 := callerOf(wire.Peer{PID: second, UID: os.Getuid(), Known: true})
	if c2.Dev != c1.Dev || c2.Ino != c1.Ino || c2.Size != c1.Size || c2.Exe != c1.Exe {
		t.Fatalf("rewritten in place: %+v; want the path, inode and size of %+v", c2, c1)
	}
	if c2.Ctime == c1.Ctime {
		t.Errorf("a binary rewritten in place has the same Ctime %d", c2.Ctime)
	}
	if c2.ExeMismatch {
		t.Error("ExeMismatch for a binary rewritten in place: its path holds the file it runs")
	}
}

// TestCallerOfOtherNamespace: a process in a mount namespace of its own, with another file
// bind-mounted over a trusted name, reads in /proc as that name; the agent sees that the
// file at the name here is another one (ExeMismatch).
func TestCallerOfOtherNamespace(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Fatal(err) // util-linux: on every machine the tests run on
	}
	dir := t.TempDir()
	evil, name := filepath.Join(dir, "evil"), filepath.Join(dir, "curl")
	copyFile(t, sleep, evil)
	copyFile(t, sleep, name) // a file of its own at the trusted name
	args := []string{"-m"}
	if os.Getuid() != 0 {
		args = []string{"-r", "-m"} // a user namespace lets a plain user mount
	}
	probe := exec.Command(unshare, append(args, "true")...)
	if out, err := probe.CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("unshare %q: %v: %s", args, err, out)
		}
		t.Skipf("this machine does not let the test make a mount namespace (%v: %s); CI runs it as root", err, out)
	}
	cmd := exec.Command(unshare, append(args, "sh", "-c", `mount --bind "$1" "$2" && exec "$2" 60`, "sh", evil, name)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	evilDev, evilIno := devIno(t, evil)
	var c *agent.Caller
	for i := 0; ; i++ {
		c = callerOf(wire.Peer{PID: cmd.Process.Pid, UID: os.Getuid(), Known: true})
		if c.Exe == name || i == 1000 {
			break
		}
		time.Sleep(10 * time.Millisecond) // until sh has mounted and exec'd
	}
	if c.Exe != name || c.Dev != evilDev || c.Ino != evilIno {
		t.Fatalf("caller %+v; want %q read from /proc, with the inode %d of the other file", c, name, evilIno)
	}
	if !c.ExeMismatch || c.ExeDeleted {
		t.Errorf("ExeMismatch %v, ExeDeleted %v; want true, false: the file at %s here is not the one it runs", c.ExeMismatch, c.ExeDeleted, name)
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
	if c.PID != pid || c.Exe != "" || c.ParentPID != 0 || c.Ino != 0 || c.Start != 0 {
		t.Errorf("caller of an exited pid: %+v; want only PID and UID", c)
	}
}
