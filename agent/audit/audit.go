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

	"gopkg.in/natefinch/lumberjack.v2"
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

// warnEvery bounds how often a failing write is logged.
const warnEvery = time.Minute

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

// Log appends entries to an audit file. It is safe for concurrent use. Each write first
// checks that the file at its path is the one it writes: when the file was moved away or
// deleted, a new one is made at the path (0600, its directory 0700), so entries never go
// to a file nobody reads.
//
// A write that fails (a full disk, a directory removed) is not the caller's failure: the
// operation it records has happened already and its client waits for the answer. Record
// therefore returns nothing; the first failure, and then at most one a minute, is logged
// with how many entries were lost since the last report.
type Log struct {
	path string
	w    *lumberjack.Logger
	log  *slog.Logger
	now  func() time.Time

	wmu sync.Mutex  // held through a write: guards w's open file and cur
	cur os.FileInfo // the file at path when w last (re)opened it; nil: check at the next write

	mu       sync.Mutex // guards the fields below
	lastWarn time.Time
	lost     int
}

// Open prepares the audit file at path: its directory is created 0700 and the file 0600
// (an existing one is set to 0600, and ended with a newline when a crash left its last
// line without one). Errors say which of the two could not be made.
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
	fi, err := prepare(path)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return &Log{
		path: path,
		w:    &lumberjack.Logger{Filename: path, MaxSize: o.MaxMiB, MaxBackups: o.MaxBackups},
		log:  o.Logger,
		now:  o.Now,
		cur:  fi,
	}, nil
}

// prepare creates the file at path 0600 (so that lumberjack appends to it and keeps its
// mode on rotation), sets an existing one to 0600, ends it with a newline when it does not
// end in one (a line cut short by a crash would otherwise swallow the next entry), and
// returns what it opened. path's directory must exist.
func prepare(path string) (os.FileInfo, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := f.Chmod(0o600); err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if n := fi.Size(); n > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, n-1); err != nil {
			return nil, err
		}
		if last[0] != '\n' {
			if _, err := f.Write([]byte{'\n'}); err != nil {
				return nil, err
			}
		}
	}
	return fi, f.Close()
}

// reopen makes the next write go to the file at l.path when that is not the file w
// writes: one moved away or deleted (w would go on writing the old or unlinked file), or
// one rotated by lumberjack (harmless: reopened once). A missing file, or directory, is
// made again, 0600 and 0700. l.wmu is held.
func (l *Log) reopen() error {
	fi, err := os.Stat(l.path)
	if err == nil && l.cur != nil && os.SameFile(fi, l.cur) {
		return nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := l.w.Close(); err != nil {
		l.failed(fmt.Errorf("close the audit file that moved: %w", err))
	}
	l.cur = nil
	if err := os.MkdirAll(filepath.Dir(l.path), 0o700); err != nil {
		return err
	}
	if fi, err = prepare(l.path); err != nil {
		return err
	}
	l.cur = fi
	return nil
}

// Path is the file the log writes.
func (l *Log) Path() string { return l.path }

// Record appends e as one line, with Time set to now when it is zero. See Log for what
// happens when the write fails.
func (l *Log) Record(e Entry) {
	if e.Time.IsZero() {
		e.Time = l.now()
	}
	e.Time = e.Time.UTC()
	line, err := json.Marshal(e)
	if err == nil {
		l.wmu.Lock()
		if err = l.reopen(); err == nil {
			// One Write per line, under wmu: lines never mix.
			_, err = l.w.Write(append(line, '\n'))
		}
		l.wmu.Unlock()
	}
	if err != nil {
		l.failed(err)
	}
}

func (l *Log) failed(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lost++
	now := l.now()
	if !l.lastWarn.IsZero() && now.Sub(l.lastWarn) < warnEvery {
		return
	}
	l.log.Warn("cannot write the audit log; requests are still served", "path", l.path, "lost_entries", l.lost, "error", err)
	l.lastWarn, l.lost = now, 0
}

// Close closes the file; a later Record opens it again.
func (l *Log) Close() error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.cur = nil // checked and prepared again before the next write
	return l.w.Close()
}

// Filter selects entries to read.
type Filter struct {
	Profile string    // only this profile's; "" for all
	Since   time.Time // only those at or after; zero for all
	Limit   int       // at most this many, the newest; 0 for all
}

// Read is the log's entries that f selects, oldest first.
func (l *Log) Read(f Filter) ([]Entry, error) { return Read(l.path, f) }

// Read reads the audit file at path and the rotated files beside it from the newest entry
// back, until it has f.Limit entries or meets one older than f.Since, and returns what f
// selects, oldest first; so its cost grows with what it returns, not with the size of the
// log. A line that is not an entry (cut short by a crash, edited by hand) is skipped. A
// missing file is an empty log.
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
	file, err := os.Open(name)
	if err != nil {
		return err
	}
	defer file.Close()
	fi, err := file.Stat()
	if err != nil {
		return err
	}
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
