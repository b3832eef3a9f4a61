package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func entry(i int) Entry {
	return Entry{
		Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Add(time.Duration(i) * time.Second), Profile: "work",
		Op: OpCredential, Host: "api.example.com", Result: ResultOK,
		Exe: "/usr/bin/git-credential-authagent", PID: 1000 + i, ParentExe: "/usr/bin/git", ParentPID: 999,
	}
}

// settle waits until the entries recorded so far are written (or lost), as Read does
// before it reads, for tests that read the files themselves.
func settle(t *testing.T, l *Log) {
	t.Helper()
	if !l.flush(time.Minute) {
		t.Fatal("the writer did not finish the entries recorded within a minute")
	}
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// TestOpenRecordRead: Open makes the directory 0700 and the file 0600 (also a file that
// existed with a wider mode), and what Record writes, Read gives back.
func TestOpenRecordRead(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "authagent")
	path := filepath.Join(dir, "audit.log")
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if got := mode(t, dir); got != 0o700 {
		t.Errorf("directory mode %v, want 0700", got)
	}
	if got := mode(t, path); got != 0o600 {
		t.Errorf("file mode %v, want 0600", got)
	}
	want := []Entry{entry(0), entry(1)}
	for _, e := range want {
		l.Record(e)
	}
	settle(t, l) // Read's own wait is TestReadSeesRecorded's
	got, err := l.Read(Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("read back (-want +got):\n%s", d)
	}
	l.Close()

	os.Chmod(path, 0o644)
	os.Chmod(dir, 0o755)
	l2, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if got := mode(t, path); got != 0o600 {
		t.Errorf("an existing 0644 file: mode %v after Open, want 0600", got)
	}
	if got := mode(t, dir); got != 0o700 {
		t.Errorf("an existing 0755 directory: mode %v after Open, want 0700", got)
	}
}

// TestRotation: the file is rotated once it would pass MaxMiB, MaxBackups rotated files
// are kept, every file is 0600, and Read reads across them, oldest first.
func TestRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path, Options{MaxMiB: 1, MaxBackups: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	line, _ := json.Marshal(entry(0))
	n := 3*(1<<20)/(len(line)+1) + 100 // a bit over three files' worth
	for i := range n {
		l.Record(entry(i))
		if i%1000 == 999 { // the queue holds 4096: let the writer keep up
			settle(t, l)
		}
	}
	settle(t, l)
	files, err := logFiles(path)
	if err != nil {
		t.Fatal(err)
	}
	// lumberjack removes old files in the background after a rotation.
	for deadline := time.Now().Add(10 * time.Second); len(files) > 3 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		files, _ = logFiles(path)
	}
	if len(files) != 3 {
		t.Fatalf("files %q, want the current one and 2 rotated", files)
	}
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > 1<<20 {
			t.Errorf("%s: %d bytes, more than 1 MiB", f, fi.Size())
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
	got, err := l.Read(Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) < 2*(1<<20)/(len(line)+1) || len(got) >= n {
		t.Fatalf("read %d entries of %d written; want those of 3 files, at least 2 MiB of them and not the first file's", len(got), n)
	}
	for i, e := range got { // consecutive, ending with the last one written
		if want := n - len(got) + i; e.PID != 1000+want {
			t.Fatalf("entry %d has pid %d, want %d: entries missing or out of order across files", i, e.PID, 1000+want)
		}
	}
	last, err := l.Read(Filter{Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(got[len(got)-5:], last); d != "" {
		t.Errorf("Limit 5 (-want +got):\n%s", d)
	}
}

// TestConcurrentWriters: entries recorded at once from many goroutines are whole lines,
// none lost.
func TestConcurrentWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	const writers, each = 8, 300
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				e := entry(w*each + i)
				e.Profile = fmt.Sprintf("p%d", w)
				l.Record(e)
			}
		})
	}
	wg.Wait()
	settle(t, l)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != writers*each {
		t.Fatalf("%d lines, want %d", len(lines), writers*each)
	}
	seen := map[int]bool{}
	for _, line := range lines {
		var e Entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("line %q is not an entry: %v", line, err)
		}
		seen[e.PID] = true
	}
	if len(seen) != writers*each {
		t.Errorf("%d distinct entries, want %d", len(seen), writers*each)
	}
	got, err := l.Read(Filter{Profile: "p3"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != each {
		t.Errorf("Read of profile p3: %d entries, want %d", len(got), each)
	}
}

// TestReadSkipsBadLines: lines that are not entries (garbage, cut short, too long, blank,
// JSON of another shape) are skipped; the filter selects by profile and time; a missing
// file is an empty log.
func TestReadSkipsBadLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	if got, err := Read(path, Filter{}); err != nil || len(got) != 0 {
		t.Fatalf("Read of a missing log: %v, %v; want nothing and no error", got, err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	e0, e1, e2 := entry(0), entry(10), entry(20)
	e1.Profile = "other"
	enc.Encode(e0)
	buf.WriteString("not json at all\n\n")
	buf.WriteString(`{"time":"2026-01-02T03:04:05Z","op":"credential","profile":"wo` + "\n") // cut short
	buf.WriteString(`{"hello":"world"}` + "\n")
	buf.WriteString(`{"op":"credential","profile":"` + strings.Repeat("x", 100<<10) + `","time":"2026-01-02T03:04:05Z"}` + "\n")
	enc.Encode(e1)
	enc.Encode(e2)
	buf.WriteString(`{"time":"2026-01-02T03:04:05Z","op":"cred`) // the last line, unfinished
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		f    Filter
		want []Entry
	}{
		{"all", Filter{}, []Entry{e0, e1, e2}},
		{"profile", Filter{Profile: "work"}, []Entry{e0, e2}},
		{"since", Filter{Since: e1.Time}, []Entry{e1, e2}},
		{"limit", Filter{Limit: 1}, []Entry{e2}},
		{"profile and limit", Filter{Profile: "work", Limit: 2}, []Entry{e0, e2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Read(path, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

// TestWriteFailureReported: a write that fails is not the caller's error; it is logged at
// once, then at most once a minute with the number of entries lost meanwhile.
func TestWriteFailureReported(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "authagent")
	var logs bytes.Buffer
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	l, err := Open(filepath.Join(dir, "audit.log"), Options{
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Now:    func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// The directory is gone and a file stands in its place: no write can open the log.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		l.Record(entry(0))
	}
	settle(t, l)
	if got := strings.Count(logs.String(), "cannot write the audit log"); got != 1 {
		t.Fatalf("5 failed writes within a minute logged %d times, want once:\n%s", got, logs.String())
	}
	now = now.Add(61 * time.Second)
	l.Record(entry(1))
	settle(t, l)
	if got := strings.Count(logs.String(), "cannot write the audit log"); got != 2 {
		t.Fatalf("a failed write a minute later: logged %d times in all, want twice:\n%s", got, logs.String())
	}
	if !strings.Contains(logs.String(), "lost_entries=5") {
		t.Errorf("the second report should count the 5 entries lost since the first:\n%s", logs.String())
	}
}

// TestReopenMovedOrDeleted: once the file was moved away (logrotate, a user tidying up)
// or deleted, the next entry goes to a new file at the path, 0600 in a 0700 directory,
// not to the old or unlinked one; the moved file keeps what it had.
func TestReopenMovedOrDeleted(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "authagent")
	path := filepath.Join(dir, "audit.log")
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Record(entry(0))
	settle(t, l)
	moved := filepath.Join(t.TempDir(), "moved.log")
	if err := os.Rename(path, moved); err != nil {
		t.Fatal(err)
	}
	l.Record(entry(1))
	readBack := func(p string) []int {
		t.Helper()
		settle(t, l)
		got, err := Read(p, Filter{})
		if err != nil {
			t.Fatal(err)
		}
		var pids []int
		for _, e := range got {
			pids = append(pids, e.PID)
		}
		return pids
	}
	if got := readBack(path); !slices.Equal(got, []int{1001}) {
		t.Errorf("after mv: the file at the path holds entries %v, want only the new one [1001]", got)
	}
	if got := readBack(moved); !slices.Equal(got, []int{1000}) {
		t.Errorf("after mv: the moved file holds %v, want [1000] only", got)
	}
	if got := mode(t, path); got != 0o600 {
		t.Errorf("the new file's mode %v, want 0600", got)
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	l.Record(entry(2))
	if got := readBack(path); !slices.Equal(got, []int{1002}) {
		t.Errorf("after rm: the file at the path holds %v, want [1002]", got)
	}

	// The whole directory gone: made again, 0700.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	l.Record(entry(3))
	if got := readBack(path); !slices.Equal(got, []int{1003}) {
		t.Errorf("after rm -r of the directory: the file at the path holds %v, want [1003]", got)
	}
	if got := mode(t, dir); got != 0o700 {
		t.Errorf("the directory made again: mode %v, want 0700", got)
	}
	if got := mode(t, path); got != 0o600 {
		t.Errorf("the file made again: mode %v, want 0600", got)
	}
	// Entries after a reopen keep going to the same file.
	l.Record(entry(4))
	if got := readBack(path); !slices.Equal(got, []int{1003, 1004}) {
		t.Errorf("the file at the path holds %v, want [1003 1004]", got)
	}
}

// TestOpenEndsCutLine: a file whose last line a crash cut short (no newline) gets one
// before the next entry, so that entry is read back; the cut line stays skipped.
func TestOpenEndsCutLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	b, err := json.Marshal(entry(0))
	if err != nil {
		t.Fatal(err)
	}
	cut := b[:len(b)/2]
	if err := os.WriteFile(path, append(append(b, '\n'), cut...), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Record(entry(1))
	settle(t, l)
	got, err := l.Read(Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]Entry{entry(0), entry(1)}, got); d != "" {
		t.Errorf("read back (-want +got):\n%s", d)
	}
	raw, _ := os.ReadFile(path)
	if want := string(b) + "\n" + string(cut) + "\n"; !strings.HasPrefix(string(raw), want) {
		t.Errorf("the file should keep the cut line on a line of its own; it is:\n%s", raw)
	}
	// A file that ends in a newline gets none more.
	l.Close()
	before, _ := os.ReadFile(path)
	l2, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	l2.Close()
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Errorf("Open changed a file that ends in a newline:\n%q\nwas\n%q", after, before)
	}
}

// guard runs fn in a goroutine and fails the test when it has not returned within a
// minute: fn must not block (on a hung disk, a FIFO). The minute is a guard against a
// hang, not a measure of speed.
func guard(t *testing.T, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatalf("%s blocked", what)
	}
}

// TestQueueFullDrops: while the writer hangs (a hung disk), Record still returns at once:
// 4096 entries wait, further ones are dropped and counted, logged at once and then once a
// minute with the number lost; Read answers with what is on disk, and Close says the
// writer is busy. Once the writer goes on, every entry that waited is written, in order.
func TestQueueFullDrops(t *testing.T) {
	var logs bytes.Buffer
	var clockMu sync.Mutex
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	l, err := Open(filepath.Join(t.TempDir(), "audit.log"), Options{
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Now: func() time.Time {
			clockMu.Lock()
			defer clockMu.Unlock()
			return now
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}, 1), make(chan struct{})
	l.stall = func() { // the disk hangs until release
		select {
		case entered <- struct{}{}:
		default:
		}
		<-release
	}
	l.Record(entry(0))
	guard(t, "the writer's start", func() { <-entered })
	const dropped = 5
	guard(t, "Record while the writer hangs", func() {
		for i := range queueLen + dropped {
			l.Record(entry(1 + i))
		}
	})
	if got := strings.Count(logs.String(), "cannot write the audit log"); got != 1 || !strings.Contains(logs.String(), "lost_entries=1 ") {
		t.Fatalf("%d entries dropped within a minute: logged %d times, want once with lost_entries=1:\n%s", dropped, got, logs.String())
	}
	clockMu.Lock()
	now = now.Add(61 * time.Second)
	clockMu.Unlock()
	guard(t, "Record while the writer hangs", func() { l.Record(entry(1 + queueLen + dropped)) })
	if got := strings.Count(logs.String(), "cannot write the audit log"); got != 2 || !strings.Contains(logs.String(), fmt.Sprintf("lost_entries=%d ", dropped)) {
		t.Fatalf("a drop a minute later: logged %d times in all, want twice, the second with lost_entries=%d:\n%s", got, dropped, logs.String())
	}
	guard(t, "Read while the writer hangs", func() {
		if got, err := l.Read(Filter{}); err != nil || len(got) != 0 {
			t.Errorf("Read while the writer hangs: %d entries, %v; want what is on disk: none", len(got), err)
		}
	})
	guard(t, "Close while the writer hangs", func() {
		if err := l.Close(); err == nil || !strings.Contains(err.Error(), "busy") {
			t.Errorf("Close while the writer hangs: %v; want an error that says the writer is busy", err)
		}
	})
	close(release)
	settle(t, l) // 4097 entries to write: more than Read waits for on a loaded machine
	got, err := l.Read(Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1+queueLen {
		t.Fatalf("%d entries written, want the one the writer held and the %d that waited", len(got), queueLen)
	}
	for i, e := range got {
		if e.PID != 1000+i {
			t.Fatalf("entry %d has pid %d, want %d", i, e.PID, 1000+i)
		}
	}
	// The Close that waited closed the file once done; a later Record opens it again.
	l.Record(entry(9999))
	settle(t, l)
	if last, err := l.Read(Filter{Limit: 1}); err != nil || len(last) != 1 || last[0].PID != 1000+9999 {
		t.Errorf("after the writer caught up: newest %+v, %v; want pid %d", last, err, 1000+9999)
	}
	if err := l.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// TestReadSeesRecorded: Read (what GET /v1/audit and `authagent audit` use) has every
// entry recorded before it, even when the writer is slow.
func TestReadSeesRecorded(t *testing.T) {
	l, err := Open(filepath.Join(t.TempDir(), "audit.log"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.stall = func() { time.Sleep(20 * time.Millisecond) } // a slow disk
	for i := range 5 {
		for j := range 3 {
			l.Record(entry(3*i + j))
		}
		got, err := l.Read(Filter{Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].PID != 1000+3*i+1 || got[1].PID != 1000+3*i+2 {
			t.Fatalf("Read right after recording pids %d..%d: %+v; want the last two", 1000+3*i, 1000+3*i+2, got)
		}
	}
}
