package gate

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/athenaserving/asf/services/webgate/auth"
)

// Sessions counts the open WebSocket sessions and decides whether new ones may begin:
// Refuse stops new ones, Close also asks the open ones to end (GoingAway).
type Sessions struct {
	mu        sync.Mutex
	closing   bool          // new sessions are refused
	goneAway  bool          // goingAway is closed
	goingAway chan struct{} // closed by Close
	wg        sync.WaitGroup
}

func newSessions() Sessions { return Sessions{goingAway: make(chan struct{})} }

// Begin counts a new session; false means sessions are refused. Every true Begin is
// followed by one End.
func (s *Sessions) Begin() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.wg.Add(1)
	return true
}

// End uncounts a session of Begin.
func (s *Sessions) End() { s.wg.Done() }

// Refuse refuses new sessions and lets open ones go on.
func (s *Sessions) Refuse() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing = true
}

// Close refuses new sessions and closes GoingAway, on which open sessions end. It is
// idempotent.
func (s *Sessions) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing = true
	if !s.goneAway {
		s.goneAway = true
		close(s.goingAway)
	}
}

// GoingAway is closed by Close.
func (s *Sessions) GoingAway() <-chan struct{} { return s.goingAway }

// Wait waits until every session has ended or ctx ends.
func (s *Sessions) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { // ends with the last session, even if ctx ends first
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for websocket sessions: %w", ctx.Err())
	}
}

// maxEndedCIDs is how many ended sub-session ids a multiplexed socket remembers, so late
// frames of an ended sub-session are dropped instead of starting a new one.
const maxEndedCIDs = 64

// Subs is the sub-session book of one WebSocket connection, keyed by cid (a connection
// without multiplexing has one, cid ""): which run, how many count against the socket's
// MaxSubSessions and the app's concurrency limit, and which ended lately. The
// connection's own lease covers one sub-session; each further one takes a lease of its
// own. Subs is not safe for concurrent use: the connection guards it with its own mutex.
type Subs[T any] struct {
	g   *Gate
	req *Request
	m   map[string]*subEntry[T]
	// extra are the app leases of a multiplexed socket's sub-sessions beyond the first:
	// len(extra) == max(0, len(m)-ending-1) once Free and Remove have run.
	extra []*auth.Lease
	// ending counts the sub-sessions in m that delivered their last frame and are only
	// winding down: they no longer count against MaxSubSessions or the app's leases, so a
	// client that read a sub-session's last result may start another at once.
	ending int
	ended  []string
}

type subEntry[T any] struct {
	v     T
	start time.Time
	freed bool
}

// NewSubs returns the sub-session book of the connection of req.
func NewSubs[T any](g *Gate, req *Request) *Subs[T] {
	return &Subs[T]{g: g, req: req, m: map[string]*subEntry[T]{}}
}

// Get returns the sub-session of cid.
func (s *Subs[T]) Get(cid string) (T, bool) {
	e, ok := s.m[cid]
	if !ok {
		var zero T
		return zero, false
	}
	return e.v, true
}

// Len is the number of sub-sessions that have not ended, winding down ones included.
func (s *Subs[T]) Len() int { return len(s.m) }

// All returns the sub-sessions that have not ended.
func (s *Subs[T]) All() []T {
	out := make([]T, 0, len(s.m))
	for _, e := range s.m {
		out = append(out, e.v)
	}
	return out
}

// Newest returns the sub-session that began last; ok is false when none runs.
func (s *Subs[T]) Newest() (v T, ok bool) {
	var newest *subEntry[T]
	for _, e := range s.m {
		if newest == nil || e.start.After(newest.start) {
			newest = e
		}
	}
	if newest == nil {
		return v, false
	}
	return newest.v, true
}

// Admit admits one more sub-session of a multiplexed socket: within MaxSubSessions
// (ErrSubSessionLimit), and beyond the first one, within the app's max_sessions, taking a
// lease of its own (ErrConnLimit); a lowered app limit calls stopNewest.
func (s *Subs[T]) Admit(stopNewest func()) error {
	active := len(s.m) - s.ending
	if active >= s.g.opts.MaxSubSessions {
		return ErrSubSessionLimit
	}
	lim, app := s.g.opts.Limiter, s.req.App
	if active == 0 || lim == nil || app == nil {
		return nil
	}
	ls, ok := lim.Acquire(app, stopNewest)
	if !ok {
		return ErrConnLimit
	}
	s.extra = append(s.extra, ls)
	return nil
}

// Add records a sub-session that began.
func (s *Subs[T]) Add(cid string, v T) {
	s.m[cid] = &subEntry[T]{v: v, start: time.Now()}
}

// Free takes the sub-session of cid out of the counts (MaxSubSessions, the app's leases)
// as it delivers its last frame; it is idempotent.
func (s *Subs[T]) Free(cid string) {
	e := s.m[cid]
	if e == nil || e.freed {
		return
	}
	e.freed = true
	s.ending++
	s.releaseExtra(len(s.m) - s.ending - 1)
}

// Remove records the end of the sub-session of cid; remember keeps its cid among the
// lately ended ones.
func (s *Subs[T]) Remove(cid string, remember bool) {
	if e := s.m[cid]; e != nil && e.freed {
		s.ending--
	}
	delete(s.m, cid)
	s.releaseExtra(len(s.m) - s.ending - 1)
	if remember {
		s.Remember(cid)
	}
}

// Remember keeps cid among the lately ended sub-sessions: their late frames are dropped
// rather than starting a new one.
func (s *Subs[T]) Remember(cid string) {
	s.ended = append(s.ended, cid)
	if len(s.ended) > maxEndedCIDs {
		s.ended = s.ended[1:]
	}
}

// Ended reports whether cid ended lately.
func (s *Subs[T]) Ended(cid string) bool {
	for _, x := range s.ended {
		if x == cid {
			return true
		}
	}
	return false
}

// ReleaseAll releases every lease of the sub-sessions, at the connection's end.
func (s *Subs[T]) ReleaseAll() { s.releaseExtra(0) }

// releaseExtra releases sub-session leases until at most keep are held, newest first.
func (s *Subs[T]) releaseExtra(keep int) {
	for len(s.extra) > max(0, keep) {
		ls := s.extra[len(s.extra)-1]
		s.extra = s.extra[:len(s.extra)-1]
		s.g.opts.Limiter.Release(ls)
	}
}
