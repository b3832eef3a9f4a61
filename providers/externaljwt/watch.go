package externaljwt

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/authagent/authagent/providers/tokencmd"
)

// debounce lets a burst of file events (a write in pieces, a symlink swap) settle before the
// file is read again.
const debounce = 100 * time.Millisecond

// Watch calls changed whenever the token file's content differs from what Fetch last read
// (or from what Watch last reported), so the agent can drop its cached token and fetch the
// new one. It watches the file's directory, not the file: Kubernetes projected tokens rotate
// by swapping a "..data" symlink next to the file, and many programs replace a file by
// renaming a new one over it. When the file is a symlink into another directory, that
// directory is watched too. Events are debounced (about 100 ms); a file that disappears is
// not reported until it comes back, so the old token keeps being served meanwhile.
//
// Watch blocks until ctx is done, then returns nil; it returns an error when it cannot
// watch. changed is called from Watch's goroutine and should return quickly. For command
// and push profiles there is nothing to watch and Watch returns nil at once.
func (p *Provider) Watch(ctx context.Context, changed func()) error {
	if p.src != sourceFile {
		return nil
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch token file %s: %w", p.file, err)
	}
	defer w.Close()
	dir := filepath.Dir(p.file)
	if err := w.Add(dir); err != nil {
		return fmt.Errorf("watch the directory of token file %s: %w", p.file, err)
	}
	var target, targetDir string // where the file's symlinks lead, when that is elsewhere
	follow := func() {
		t, err := filepath.EvalSymlinks(p.file)
		if err != nil {
			return // gone for now; keep watching what we have
		}
		target = t
		if td := filepath.Dir(t); td != targetDir {
			if targetDir != "" && targetDir != dir {
				w.Remove(targetDir) // may be gone already: rotation deletes old directories
			}
			targetDir = ""
			if td == dir || w.Add(td) == nil {
				targetDir = td
			}
		}
	}
	relevant := func(name string) bool {
		if name == p.file || name == target {
			return true
		}
		// Kubernetes AtomicWriter's "..data" link and "..<timestamp>" directories.
		return filepath.Dir(name) == dir && strings.HasPrefix(filepath.Base(name), "..")
	}
	check := func() {
		follow()
		b, err := tokencmd.ReadFile(p.file)
		if err != nil {
			return
		}
		sum := sha256.Sum256(b)
		p.mu.Lock()
		if sum == p.lastSum {
			p.mu.Unlock()
			return
		}
		p.lastSum = sum
		p.mu.Unlock()
		changed()
	}

	follow()
	// The file may have changed between the last Fetch and now. Before any Fetch there is
	// nothing cached to be stale.
	p.mu.Lock()
	fetched := p.read
	p.mu.Unlock()
	if fetched {
		check()
	}

	timer := time.NewTimer(debounce)
	timer.Stop()
	var fire <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return fmt.Errorf("watch token file %s: the watcher stopped", p.file)
			}
			if ev.Name == dir && ev.Has(fsnotify.Remove|fsnotify.Rename) {
				return fmt.Errorf("watch token file %s: its directory was removed or renamed", p.file)
			}
			if relevant(ev.Name) {
				timer.Reset(debounce)
				fire = timer.C
			}
		case err, ok := <-w.Errors:
			if !ok {
				return fmt.Errorf("watch token file %s: the watcher stopped", p.file)
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				timer.Reset(debounce) // events were lost; look for ourselves
				fire = timer.C
				continue
			}
			p.log.Warn("watch token file", "profile", p.name, "file", p.file, "err", err)
		case <-fire:
			fire = nil
			check()
		}
	}
}
