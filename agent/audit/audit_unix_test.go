//go:build linux || darwin

package audit

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// TestFIFOAtPath: a FIFO put where the log was (mv audit.log x; mkfifo audit.log), with
// nobody reading it, holds up neither Record nor the writer nor Read: the entries are
// lost, the failure logged, Read says what is at the path, and Open refuses it at once.
// Once a regular file can be made there again, entries go to it.
func TestFIFOAtPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	var logs bytes.Buffer
	l, err := Open(path, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Record(entry(0))
	settle(t, l)
	if err := os.Rename(path, filepath.Join(t.TempDir(), "moved.log")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	guard(t, "Record with a FIFO at the path", func() {
		l.Record(entry(1))
		l.Record(entry(2))
	})
	guard(t, "the writer with a FIFO at the path", func() { settle(t, l) })
	if s := logs.String(); !strings.Contains(s, "cannot write the audit log") || !strings.Contains(s, "is a FIFO, not a regular file") {
		t.Errorf("the FIFO is not in the log:\n%s", s)
	}
	guard(t, "Read with a FIFO at the path", func() {
		var nr *NotRegularError
		if got, err := l.Read(Filter{}); !errors.As(err, &nr) {
			t.Errorf("Read with a FIFO at the path: %+v, %v; want a NotRegularError", got, err)
		}
	})
	guard(t, "Open of a FIFO", func() {
		var nr *NotRegularError
		if l2, err := Open(path, Options{}); !errors.As(err, &nr) {
			if l2 != nil {
				l2.Close()
			}
			t.Errorf("Open of a FIFO: %v, want a NotRegularError", err)
		}
	})

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	l.Record(entry(3))
	settle(t, l)
	got, err := l.Read(Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].PID != 1003 {
		t.Errorf("after the FIFO was removed: %+v; want the new entry only", got)
	}
	if fi, err := os.Lstat(path); err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
		t.Errorf("the file made again: %v, %v; want a regular file 0600", fi, err)
	}
}

// TestSymlinkAtPath: a symlink put at the path, even one to the very file the log
// writes, is refused: its target is not written, the failure is logged, and Read says so.
func TestSymlinkAtPath(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	var logs bytes.Buffer
	l, err := Open(path, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Record(entry(0))
	settle(t, l)
	moved := filepath.Join(dir, "moved.log")
	if err := os.Rename(path, moved); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, "elsewhere")
	if err := os.WriteFile(target, []byte("keep\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(moved)
	for _, to := range []string{target, moved} {
		if err := os.Symlink(to, path); err != nil {
			t.Fatal(err)
		}
		l.Record(entry(1))
		settle(t, l)
		var nr *NotRegularError
		if got, err := l.Read(Filter{}); !errors.As(err, &nr) {
			t.Errorf("Read with a symlink at the path: %+v, %v; want a NotRegularError", got, err)
		}
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	}
	if b, _ := os.ReadFile(target); string(b) != "keep\n" {
		t.Errorf("the symlink's target was written: %q", b)
	}
	if b, _ := os.ReadFile(moved); !bytes.Equal(b, before) {
		t.Errorf("the log, through a symlink to it, was written:\n%s", b)
	}
	if s := logs.String(); !strings.Contains(s, "is a symlink, not a regular file") {
		t.Errorf("the symlink is not in the log:\n%s", s)
	}
	l.Record(entry(2))
	settle(t, l)
	got, err := l.Read(Filter{})
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range got {
		pids = append(pids, e.PID)
	}
	if !slices.Equal(pids, []int{1002}) {
		t.Errorf("after the symlink was removed: pids %v, want [1002]", pids)
	}
}

// TestOtherUsersFileRefused: a file of another user at the path is not written. Needs
// root (CI runs as root) to make one.
func TestOtherUsersFileRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI runs the tests as root; this one needs root to make a file of another user")
		}
		t.Skip("needs root to make a file of another user")
	}
	path := filepath.Join(t.TempDir(), "audit.log")
	var logs bytes.Buffer
	l, err := Open(path, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	l.Record(entry(0))
	settle(t, l)
	if b, _ := os.ReadFile(path); len(b) != 0 {
		t.Errorf("another user's file was written: %q", b)
	}
	if s := logs.String(); !strings.Contains(s, "belongs to uid 65534") {
		t.Errorf("the other user's file is not in the log:\n%s", s)
	}
}
