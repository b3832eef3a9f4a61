// Package audit is the agent's audit log: one JSON line per use or change of a profile
// (who asked, for which profile and host, what came of it) in a file rotated by size, and
// the reader that `authagent audit` and GET /v1/audit use. An Entry has no field that could
// hold a token, a secret, a code or a whole URL: only a URL's host goes in. The package
// knows nothing of the agent or the socket API; the agent fills in entries, the socket
// server reads them back.
package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Entry is one line of the audit log.
type Entry struct {
	Time    time.Time `json:"time"`              // when the operation ended, UTC
	Profile string    `json:"profile,omitempty"` // "" when none was found (a URL no profile lists)
	Op      string    `json:"op"`                // one of the Op constants
	// Host is the host (and port, when the URL had one) of the URL the request named;
	// never its path or query. "" when the request named no URL.
	Host string `json:"host,omitempty"`
	// Result is ResultOK or the socket API's error code (needs_login, forbidden, denied,
	// unknown_profile, …).
	Result string `json:"result"`
	// The caller, as the socket server verified it when the caller connected (see
	// agent.Caller); zero when unknown.
	Exe       string `json:"exe,omitempty"`
	PID       int    `json:"pid,omitempty"`
	ParentExe string `json:"parent_exe,omitempty"`
	ParentPID int    `json:"parent_pid,omitempty"`
	// UID is the caller's user id, set only where it is not the agent's own: an OpRefused
	// entry (nil when the kernel did not say).
	UID *int `json:"uid,omitempty"`
}

// Operations an Entry records.
const (
	OpCredential    = "credential"     // an access token (by profile name or by URL)
	OpIDToken       = "id_token"       // an ID token
	OpSign          = "sign"           // a request signed (apikey sigv4)
	OpLogin         = "login"          // a login started: Result is whether it did
	OpLoginDone     = "login_done"     // how a login ended: ok, or why not
	OpLogout        = "logout"         //
	OpPush          = "push"           // a token pushed into an externaljwt profile
	OpReject        = "reject"         // a server refused the token; the cached one is dropped
	OpPutProfile    = "put_profile"    // a profile defined or replaced
	OpDeleteProfile = "delete_profile" //
	OpSetSecret     = "set_secret"     // a profile's secret replaced
	OpLoginCancel   = "login_cancel"   // a login in progress cancelled (DELETE …/login)
	OpReloadPut     = "reload_put"     // a profile added or changed by a reload of the config file
	OpReloadDelete  = "reload_delete"  // a profile removed by a reload of the config file
	OpRefused       = "refused"        // a connection from another user refused (Result "forbidden")
)

// ResultOK is Entry.Result for an operation that worked.
const ResultOK = "ok"

// Defaults for Options.
const (
	DefaultMaxMiB     = 10 // rotate when the file would grow past this many MiB
	DefaultMaxBackups = 3  // rotated files kept besides the current one
)

const (
	// warnEvery bounds how often a failing write is logged.
	warnEvery = time.Minute
	// queueLen bounds the entries that wait for the writer; more are dropped and counted.
	queueLen = 4096
	// flushWait bounds how long Read and Close wait for the entries recorded before them.
	flushWait = 2 * time.Second
	// backupTimeFormat is the UTC timestamp in a rotated file's name (lumberjack's, which
	// wrote the log before).
	backupTimeFormat = "2006-01-02T15-04-05.000"
)

// DefaultPath is $XDG_STATE_HOME/authagent/audit.log, else
// ~/.local/state/authagent/audit.log.
func DefaultPath() (string, error) {
	dir := os.Getenv("XDG_STATE_HOME")
	if !filepath.IsAbs(dir) { // the XDG spec says to ignore a relative one
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("audit log path: set $XDG_STATE_HOME or $HOME: %w", err)
		}
		dir = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(dir, "authagent", "audit.log"), nil
}

// Options tune a Log; the zero value takes the defaults.
type Options struct {
	MaxMiB     int          // size at which the file is rotated; default DefaultMaxMiB
	MaxBackups int          // rotated files kept; default DefaultMaxBackups
	Logger     *slog.Logger // where failed writes are reported (once per minute); default: discarded
	Now        func() time.Time
}

// NotRegularError is the failure to write or read the log because something other than a
// regular file (a symlink, FIFO, socket, device or directory) is at its path: the log is
// written only to a regular file, so that a FIFO nobody reads cannot stop the writer, nor
// a symlink send entries elsewhere.
type NotRegularError struct {
	Path string
	Mode fs.FileMode // what is there (its type bits)
}

func (e *NotRegularError) Error() string {
	what := "not a regular file"
	switch t := e.Mode.Type(); {
	case t&fs.ModeSymlink != 0:
		what = "a symlink"
	case t&fs.ModeNamedPipe != 0:
		what = "a FIFO"
	case t&fs.ModeSocket != 0:
		what = "a socket"
	case t&fs.ModeDevice != 0:
		what = "a device"
	case t&fs.ModeDir != 0:
		what = "a directory"
	}
	return fmt.Sprintf("%s is %s, not a regular file: move it away and the agent makes a new log there", e.Path, what)
}

// errBehind is why an entry was dropped: the queue to the writer is full.
var errBehind = fmt.Errorf("%d entries wait for the disk (slow or hung); new ones are dropped until it catches up", queueLen)

// Log appends entries to an audit file. It is safe for concurrent use.
//
// Record hands the entry to a writer goroutine and returns: it never waits for the disk,
// so a slow or hung file system, or a FIFO at the path, cannot hold up the request it
// records. At most 4096 entries wait for the writer; one more is dropped and counted as
// lost. Read and Close first wait (up to 2s) until the entries recorded before them are
// written.
//
// Before each batch of entries the writer checks that the file at its path is the one it
// writes: when the file was moved away or deleted, a new one is made at the path (0600,
// its directory 0700), so entries never go to a file nobody reads. It only ever opens a
// regular file (on Unix one this user owns, never following a symlink, never waiting in
// open); anything else at the path is a failed write.
//
// A write that fails (a full disk, a directory removed, a FIFO or symlink at the path) is
// not the caller's failure: the operation it records has happened already and its client
// waits for the answer. Record therefore returns nothing; the first failure, and then at
// most one a minute, is logged with how many entries were lost since the last report.
type Log struct {
	path       string
	maxBytes   int64
	maxBackups int
	log        *slog.Logger
	now        func() time.Time

	// The writer's: only the one writer goroutine that runs (mu hands them from one to
	// the next) and Open touch them.
	f     *os.File    // the file at path, open for appending; nil: open it before the next write
	cur   os.FileInfo // f's; compared with what is at path before each batch
	size  int64       // f's size
	stall func()      // tests only: called by the writer before each batch

	mu       sync.Mutex // guards the fields below
	queue    []item     // waiting for the writer, oldest first
	running  bool       // a writer goroutine drains queue
	queued   uint64     // items ever queued
	done     uint64     // items the writer finished with (written or lost)
	progress chan struct{}
	closeErr error // of the last close the writer did
	lastWarn time.Time
	lost     int
}

// item is one line to append (with its newline), or, when line is nil, an order to close
// the file (Close).
type item struct{ line []byte }

// Open prepares the audit file at path: its directory is created 0700 and the file 0600
// (an existing one is set to 0600, and ended with a newline when a crash left its last
// line without one). Errors say which of the two could not be made; a symlink, FIFO or
// other non-regular file at path is a *NotRegularError.
func Open(path string, o Options) (*Log, error) {
	if o.MaxMiB <= 0 {
		o.MaxMiB = DefaultMaxMiB
	}
	if o.MaxBackups <= 0 {
		o.MaxBackups = DefaultMaxBackups
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit log directory: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit log directory: %w", err)
	}
	f, fi, size, err := prepare(path)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return &Log{
		path:       path,
		maxBytes:   int64(o.MaxMiB) << 20,
		maxBackups: o.MaxBackups,
		log:        o.Logger,
		now:        o.Now,
		f:          f,
		cur:        fi,
		size:       size,
		progress:   make(chan struct{}),
	}, nil
}

// prepare opens the regular file at path for appending, creating it 0600, sets an existing
// one to 0600, ends it with a newline when it does not end in one (a line cut short by a
// crash would otherwise swallow the next entry), and returns it with its size. path's
// directory must exist.
func prepare(path string) (*os.File, os.FileInfo, int64, error) {
	f, fi, err := openFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND)
	if err != nil {
		return nil, nil, 0, err
	}
	size := fi.Size()
	err = f.Chmod(0o600)
	if err == nil && size > 0 {
		last := make([]byte, 1)
		if _, err = f.ReadAt(last, size-1); err == nil && last[0] != '\n' {
			_, err = f.Write([]byte{'\n'})
			size++
		}
	}
	if err != nil {
		f.Close()
		return nil, nil, 0, err
	}
	return f, fi, size, nil
}

// reopen makes the next write go to the file at l.path when that is not the file l.f:
// one moved away or deleted (l.f would go on writing the old or unlinked file), or one
// rotated. A missing file, or directory, is made again, 0600 and 0700. Only the writer
// calls it.
func (l *Log) reopen() error {
	fi, err := os.Lstat(l.path)
	if err == nil && l.f != nil && os.SameFile(fi, l.cur) {
		return nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if cerr := l.closeFile(); cerr != nil {
		l.failed(0, fmt.Errorf("close the audit file that moved: %w", cerr))
	}
	if err != nil { // not there: maybe its directory is gone too
		if err := os.MkdirAll(filepath.Dir(l.path), 0o700); err != nil {
			return err
		}
	}
	f, fi, size, err := prepare(l.path)
	if err != nil {
		return err
	}
	l.f, l.cur, l.size = f, fi, size
	return nil
}

// closeFile closes l.f, if open. Only the writer calls it.
func (l *Log) closeFile() error {
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f, l.cur, l.size = nil, nil, 0
	return err
}

// rotate renames the file at l.path to NAME-TIMESTAMP.EXT (the time in UTC to the
// millisecond, as lumberjack named them), opens a new one at l.path and removes the
// oldest rotated files beyond l.maxBackups. Only the writer calls it, with l.f open.
func (l *Log) rotate() error {
	// Only the file l.f writes is renamed: whatever else is at the path now is for the
	// reopen that follows to refuse.
	fi, err := os.Lstat(l.path)
	same := err == nil && os.SameFile(fi, l.cur)
	if cerr := l.closeFile(); cerr != nil {
		l.failed(0, fmt.Errorf("close the audit file to rotate it: %w", cerr))
	}
	if same {
		dir, base := filepath.Split(l.path)
		ext := filepath.Ext(base)
		prefix := strings.TrimSuffix(base, ext) + "-"
		t := l.now().UTC()
		name := filepath.Join(dir, prefix+t.Format(backupTimeFormat)+ext)
		for { // never over an existing one: two rotations within a millisecond
			if _, err := os.Lstat(name); errors.Is(err, fs.ErrNotExist) {
				break
			}
			t = t.Add(time.Millisecond)
			name = filepath.Join(dir, prefix+t.Format(backupTimeFormat)+ext)
		}
		if err := os.Rename(l.path, name); err != nil {
			return err
		}
	}
	if err := l.reopen(); err != nil {
		return err
	}
	if files, err := logFiles(l.path); err == nil {
		backups := files[:len(files)-1]
		for _, old := range backups[:max(len(backups)-l.maxBackups, 0)] {
			if err := os.Remove(old); err != nil && !errors.Is(err, fs.ErrNotExist) {
				l.failed(0, fmt.Errorf("remove an old rotated audit file: %w", err))
			}
		}
	}
	return nil
}

// Path is the file the log writes.
func (l *Log) Path() string { return l.path }

// Record queues e to be appended as one line, with Time set to now when it is zero, and
// returns at once. See Log for what happens when the write fails or the queue is full.
func (l *Log) Record(e Entry) {
	if e.Time.IsZero() {
		e.Time = l.now()
	}
	e.Time = e.Time.UTC()
	line, err := json.Marshal(e)
	if err != nil {
		l.failed(1, err)
		return
	}
	l.mu.Lock()
	if len(l.queue) >= queueLen {
		l.mu.Unlock()
		l.failed(1, errBehind)
		return
	}
	l.enqueue(item{line: append(line, '\n')})
	l.mu.Unlock()
}

// enqueue adds it to the queue, starts a writer when none runs, and returns the number
// the writer's done count reaches once it is handled. l.mu is held.
func (l *Log) enqueue(it item) uint64 {
	l.queue = append(l.queue, it)
	l.queued++
	if !l.running {
		l.running = true
		go l.drain()
	}
	return l.queued
}

// drain is the writer: it writes what is queued, batch by batch, until the queue is
// empty, then ends (the next Record starts another).
func (l *Log) drain() {
	for {
		l.mu.Lock()
		batch := l.queue
		l.queue = nil
		if len(batch) == 0 {
			l.running = false
			l.mu.Unlock()
			return
		}
		l.mu.Unlock()
		if l.stall != nil {
			l.stall()
		}
		closed, closeErr := l.write(batch)
		l.mu.Lock()
		if closed {
			l.closeErr = closeErr
		}
		l.done += uint64(len(batch))
		close(l.progress)
		l.progress = make(chan struct{})
		l.mu.Unlock()
	}
}

// write appends batch's lines to the file, rotating it on the way when it would grow past
// l.maxBytes, with one write per run of lines, and closes the file where batch says so.
// Lines it cannot write are reported as lost. Only the writer calls it.
func (l *Log) write(batch []item) (closed bool, closeErr error) {
	var buf []byte
	n := 0 // lines in buf
	var err error
	open := false // reopen ran for this batch
	put := func() {
		if n == 0 {
			return
		}
		if err == nil && !open {
			err, open = l.reopen(), true
		}
		if err == nil {
			var w int
			w, err = l.f.Write(buf)
			l.size += int64(w)
		}
		if err != nil {
			l.failed(n, err)
		}
		buf, n = buf[:0], 0
	}
	for _, it := range batch {
		if it.line == nil {
			put()
			closed, closeErr, open = true, l.closeFile(), false
			err = nil // a later Record opens it again
			continue
		}
		if err == nil && !open {
			err, open = l.reopen(), true
		}
		if err == nil && l.size+int64(len(buf)+len(it.line)) > l.maxBytes && l.size+int64(len(buf)) > 0 {
			put()
			if err == nil {
				err = l.rotate()
			}
		}
		buf = append(buf, it.line...)
		n++
	}
	put()
	return closed, closeErr
}

// failed reports n entries lost to err (n 0: a failure that lost none): the first
// failure, and then at most one a minute, is logged with the entries lost since the last
// report, this one's first.
func (l *Log) failed(n int, err error) {
	l.mu.Lock()
	now := l.now()
	l.lost += n
	if !l.lastWarn.IsZero() && now.Sub(l.lastWarn) < warnEvery {
		l.mu.Unlock()
		return
	}
	carry := max(n-1, 0) // the others of this batch count toward the next report
	lost := l.lost - carry
	l.lastWarn, l.lost = now, carry
	l.mu.Unlock()
	l.log.Warn("cannot write the audit log; requests are still served", "path", l.path, "lost_entries", lost, "error", err)
}

// flush waits until the entries recorded before it was called are written (or lost), at
// most for wait, and reports whether they were.
func (l *Log) flush(wait time.Duration) bool {
	l.mu.Lock()
	return l.waitFor(l.queued, wait)
}

// waitFor waits until the writer's done count reaches target, at most for wait, and
// reports whether it did. l.mu is held, and released.
func (l *Log) waitFor(target uint64, wait time.Duration) bool {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for l.done < target {
		ch := l.progress
		l.mu.Unlock()
		select {
		case <-ch:
		case <-timer.C:
			return false
		}
		l.mu.Lock()
	}
	l.mu.Unlock()
	return true
}

// Close writes the entries recorded before it and closes the file; a later Record opens
// it again. When the writer does not finish within 2s (a hung disk) Close returns an
// error saying so, and the writer closes the file when it does.
func (l *Log) Close() error {
	l.mu.Lock()
	target := l.enqueue(item{}) // past queueLen if need be: it holds no entry
	if !l.waitFor(target, flushWait) {
		return fmt.Errorf("close audit log %s: its writer is still busy (a hung disk?); it closes the file when done", l.path)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closeErr
}

// Filter selects entries to read.
type Filter struct {
	Profile string    // only this profile's; "" for all
	Since   time.Time // only those at or after; zero for all
	Limit   int       // at most this many, the newest; 0 for all
}

// Read is the log's entries that f selects, oldest first, with those recorded before the
// call: it first waits for the writer to write them, up to 2s (a hung disk: Read answers
// with what is in the files).
func (l *Log) Read(f Filter) ([]Entry, error) {
	l.flush(flushWait)
	return Read(l.path, f)
}

// Read reads the audit file at path and the rotated files beside it from the newest entry
// back, until it has f.Limit entries or meets one older than f.Since, and returns what f
// selects, oldest first; so its cost grows with what it returns, not with the size of the
// log. A line that is not an entry (cut short by a crash, edited by hand) is skipped. A
// missing file is an empty log; a symlink, FIFO or other non-regular file at path is a
// *NotRegularError (rotated files other than regular ones are skipped).
func Read(path string, f Filter) ([]Entry, error) {
	files, err := logFiles(path)
	if err != nil {
		return nil, err
	}
	var rev []Entry // newest first
	done := false
	for i := len(files) - 1; i >= 0 && !done; i-- {
		err := eachLineBackward(files[i], func(line []byte) bool {
			var e Entry
			if json.Unmarshal(line, &e) != nil || e.Op == "" || e.Time.IsZero() {
				return true
			}
			if e.Time.Before(f.Since) {
				done = true // entries are appended in time order: the rest are older still
				return false
			}
			if f.Profile == "" || e.Profile == f.Profile {
				rev = append(rev, e)
			}
			done = f.Limit > 0 && len(rev) >= f.Limit
			return !done
		})
		if errors.Is(err, fs.ErrNotExist) {
			continue // rotated away meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("read audit log: %w", err)
		}
	}
	slices.Reverse(rev)
	return rev, nil
}

// logFiles lists path's rotated files (lumberjack names them NAME-TIMESTAMP.EXT, with a
// UTC timestamp that sorts as time does), oldest first, then path itself.
func logFiles(path string) ([]string, error) {
	dir, base := filepath.Split(path)
	ext := filepath.Ext(base)
	prefix := strings.TrimSuffix(base, ext) + "-"
	ents, err := os.ReadDir(filepath.Clean(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	var files []string
	for _, e := range ents {
		if n := e.Name(); e.Type().IsRegular() && strings.HasPrefix(n, prefix) && strings.HasSuffix(n, ext) {
			files = append(files, filepath.Join(dir, n))
		}
	}
	slices.Sort(files)
	return append(files, path), nil
}

// maxLine bounds a line the reader takes; longer ones are skipped.
const maxLine = 64 << 10

// eachLineBackward calls fn with each non-blank line of the file name, the last line
// first, until fn returns false. Lines longer than maxLine are skipped.
func eachLineBackward(name string, fn func(line []byte) bool) error {
	file, fi, err := openFile(name, os.O_RDONLY)
	if err != nil {
		return err
	}
	defer file.Close()
	pos := fi.Size()
	var carry []byte  // the end part of a line whose start is in a block not read yet
	skipping := false // carry grew past maxLine: drop that line
	emit := func(line []byte) bool {
		if skipping {
			skipping = false
			return true
		}
		if line = bytes.TrimSpace(line); len(line) == 0 || len(line) > maxLine {
			return true
		}
		return fn(line)
	}
	block := make([]byte, maxLine)
	for pos > 0 {
		n := int64(len(block))
		if pos < n {
			n = pos
		}
		pos -= n
		if _, err := file.ReadAt(block[:n], pos); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		buf := append(slices.Clone(block[:n]), carry...)
		for {
			i := bytes.LastIndexByte(buf, '\n')
			if i < 0 {
				break
			}
			if !emit(buf[i+1:]) {
				return nil
			}
			buf = buf[:i]
		}
		carry = buf
		if len(carry) > maxLine {
			carry, skipping = nil, true
		}
	}
	emit(carry)
	return nil
}
