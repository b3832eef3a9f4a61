package agent

import (
	"sync"
	"time"
)

// Event types.
const (
	EventAdded   = "added"   // a profile was defined
	EventChanged = "changed" // a profile's state, expiry, error or login changed
	EventRemoved = "removed" // a profile was removed
)

// Event is one change, as published on the bus.
type Event struct {
	Type    string
	Profile ProfileInfo
	Time    time.Time
}

// subscriberBuffer is how many events a watcher may fall behind before it is dropped. A
// dropped watcher sees its channel closed and reconnects; the agent never blocks on a
// slow reader.
const subscriberBuffer = 256

// bus fans events out to subscribers.
type bus struct {
	mu   sync.Mutex
	subs map[*Subscription]struct{}
}

// Subscription receives events until Close is called or it falls too far behind.
type Subscription struct {
	C    <-chan Event
	c    chan Event
	bus  *bus
	once sync.Once
}

func (b *bus) subscribe() *Subscription {
	c := make(chan Event, subscriberBuffer)
	s := &Subscription{C: c, c: c, bus: b}
	b.mu.Lock()
	if b.subs == nil {
		b.subs = make(map[*Subscription]struct{})
	}
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	return s
}

// Close ends the subscription and closes C.
func (s *Subscription) Close() {
	s.bus.mu.Lock()
	defer s.bus.mu.Unlock()
	s.closeLocked()
}

func (s *Subscription) closeLocked() {
	s.once.Do(func() {
		delete(s.bus.subs, s)
		close(s.c)
	})
}

func (b *bus) publish(e Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		select {
		case s.c <- e:
		default:
			s.closeLocked()
		}
	}
}

func (b *bus) closeAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		s.closeLocked()
	}
}
