// Package fanout delivers events to watchers without ever blocking the producer: each
// watcher has a bounded buffer and is dropped with ErrOverflow when the buffer is full.
//
// The owner (registry or config center) calls Add and Each while holding its own lock,
// so a watcher's first event (a snapshot) and every later event are in one total order.
package fanout

import (
	"sync"

	"github.com/athenaserving/asf/libs/aserr"
)

// ErrOverflow ends a watcher that did not keep up with its events. Code 10222 maps to
// gRPC Unavailable, so a client simply watches again and gets a fresh snapshot.
var ErrOverflow = aserr.New(aserr.ErrNetwork.Code, "watcher too slow: dropped")

// ErrClosed ends every watcher when the server shuts down. ErrOverflow and ErrClosed
// carry the same code, and errors.Is on aserr errors matches by code: tell them apart
// with ==, as Sub.Err returns them unwrapped.
var ErrClosed = aserr.New(aserr.ErrNetwork.Code, "server shutting down")

// Hub is a set of watchers of events E, each with owner state T.
type Hub[E, T any] struct {
	mu     sync.Mutex
	subs   map[*Sub[E, T]]struct{}
	closed bool
}

// Sub is one watcher. Read C until it is closed, then Err tells why.
type Sub[E, T any] struct {
	hub *Hub[E, T]
	ch  chan E
	err error // guarded by hub.mu
	// State is the owner's per-watcher state; only the owner touches it, under its lock.
	State T
}

// NewHub returns an empty hub.
func NewHub[E, T any]() *Hub[E, T] { return &Hub[E, T]{subs: map[*Sub[E, T]]struct{}{}} }

// Add adds a watcher with a buffer of buf events (at least 1) after first, which is
// delivered before anything else. After Close, Add returns ErrClosed.
func (h *Hub[E, T]) Add(buf int, first E, state T) (*Sub[E, T], error) {
	if buf < 1 {
		buf = 1
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	s := &Sub[E, T]{hub: h, ch: make(chan E, buf+1), State: state}
	s.ch <- first
	h.subs[s] = struct{}{}
	return s, nil
}

// Each calls fn for every watcher and delivers the event it returns when ok is true.
// A watcher whose buffer is full is removed and its channel closed with ErrOverflow.
// Each returns the number of watchers dropped.
func (h *Hub[E, T]) Each(fn func(s *Sub[E, T]) (E, bool)) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	dropped := 0
	for s := range h.subs {
		ev, ok := fn(s)
		if !ok {
			continue
		}
		select {
		case s.ch <- ev:
		default:
			h.removeLocked(s, ErrOverflow)
			dropped++
		}
	}
	return dropped
}

// Len is the number of watchers.
func (h *Hub[E, T]) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// Close ends every watcher with ErrClosed and refuses new ones.
func (h *Hub[E, T]) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.subs {
		h.removeLocked(s, ErrClosed)
	}
}

func (h *Hub[E, T]) removeLocked(s *Sub[E, T], err error) {
	if _, ok := h.subs[s]; !ok {
		return
	}
	delete(h.subs, s)
	s.err = err
	close(s.ch)
}

// C is the event channel; it is closed when the watcher ends.
func (s *Sub[E, T]) C() <-chan E { return s.ch }

// Err is why the watcher ended (nil while it runs or after Close by its reader).
func (s *Sub[E, T]) Err() error {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	return s.err
}

// Close removes the watcher; it is safe to call more than once.
func (s *Sub[E, T]) Close() {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	s.hub.removeLocked(s, nil)
}
