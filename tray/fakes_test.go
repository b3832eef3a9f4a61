package tray

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
)

var errTest = errors.New("test error")

// fakeNotifier records notifications; the ids it hands out start at 1.
type fakeNotifier struct {
	mu     sync.Mutex
	shown  []Notification
	ids    []uint32 // ids of shown, in order
	closed []uint32
	open   map[uint32]Notification
	err    error // what Notify answers, when set
}

func (f *fakeNotifier) Notify(_ context.Context, n Notification) (uint32, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return 0, f.err
	}
	if f.open == nil {
		f.open = map[uint32]Notification{}
	}
	id := n.Replaces
	if _, ok := f.open[id]; !ok {
		id = uint32(len(f.shown) + 1)
	}
	f.shown = append(f.shown, n)
	f.ids = append(f.ids, id)
	f.open[id] = n
	return id, nil
}

func (f *fakeNotifier) CloseNotification(_ context.Context, id uint32) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.open[id]; !ok {
		return fmt.Errorf("no notification %d", id)
	}
	delete(f.open, id)
	f.closed = append(f.closed, id)
	return nil
}

// onScreen lists the summaries of the notifications that are up, by id.
func (f *fakeNotifier) onScreen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, id := range slices.Sorted(maps.Keys(f.open)) {
		out = append(out, f.open[id].Summary)
	}
	return out
}

func (f *fakeNotifier) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.shown)
}

func (f *fakeNotifier) last() Notification {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.shown) == 0 {
		return Notification{}
	}
	return f.shown[len(f.shown)-1]
}

// fakeOpener records what it was asked to open.
type fakeOpener struct {
	mu     sync.Mutex
	opened []string
}

func (f *fakeOpener) Open(_ context.Context, target string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.opened = append(f.opened, target)
	return nil
}

func (f *fakeOpener) all() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.opened)
}
