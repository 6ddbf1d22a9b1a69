package config

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/athenaserving/asf/services/polaris/internal/fanout"
)

// Options tune a Center; zero values take the defaults.
type Options struct {
	// Now is the clock (tests inject one); time.Now by default.
	Now func() time.Time
}

type watchState struct {
	key    Key
	prefix bool
	caller Caller
	raw    bool
	seen   map[Key]int64 // revision last sent per file, for resolved watchers
}

// Watch is a watcher of config events: read C until it is closed, then Err tells why
// (fanout.ErrOverflow for a watcher that fell behind, fanout.ErrClosed at shutdown).
type Watch = fanout.Sub[Event, *watchState]

// Center is the config center. It is safe for concurrent use.
// Lock order: Center.mu, then the watcher hub's lock, then appliedMu.
type Center struct {
	store Store
	now   func() time.Time

	mu  sync.Mutex // serialises writes and watch registration
	hub *fanout.Hub[Event, *watchState]

	appliedMu sync.Mutex
	applied   map[Key]map[string]Applied
}

// New returns a config center backed by store.
func New(store Store, opt Options) *Center {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Center{store: store, now: opt.Now, hub: fanout.NewHub[Event, *watchState](), applied: map[Key]map[string]Applied{}}
}

// Resolve picks the revision of rec that caller gets: its gray group's revision when the
// caller's "gray" label names a group of rec, else the current revision.
func Resolve(rec Record, caller Caller) (File, bool) {
	if g := caller.Labels[GrayLabel]; g != "" {
		if n, ok := rec.Gray[g]; ok {
			if f, ok := rec.revision(n); ok {
				f = cloneFile(f)
				f.Gray = true
				return f, true
			}
		}
	}
	if rec.Current == 0 {
		return File{}, false
	}
	f, ok := rec.revision(rec.Current)
	return cloneFile(f), ok
}

// Push stores content as revision N+1 of k. With grayGroup empty the revision becomes
// the one everyone gets and every gray revision of k is retired (a full release
// supersedes the canary); otherwise only callers of grayGroup get it.
func (c *Center) Push(ctx context.Context, k Key, content []byte, comment, grayGroup string) (File, error) {
	if !k.valid(true) {
		return File{}, fmt.Errorf("push %s: %w", k, ErrInvalid)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pushLocked(ctx, k, content, comment, grayGroup)
}

func (c *Center) pushLocked(ctx context.Context, k Key, content []byte, comment, grayGroup string) (File, error) {
	rec, _, err := c.store.Get(ctx, k)
	if err != nil {
		return File{}, fmt.Errorf("push %s: %w", k, err)
	}
	rec.Key = k
	f := File{
		Key: k, Content: append([]byte(nil), content...), Revision: rec.last() + 1,
		Created: c.now(), Comment: comment, GrayGroup: grayGroup, Gray: grayGroup != "",
	}
	rec.Revisions = append(rec.Revisions, f)
	if grayGroup == "" {
		rec.Current, rec.Gray = f.Revision, nil
	} else {
		if rec.Gray == nil {
			rec.Gray = map[string]int64{}
		}
		rec.Gray[grayGroup] = f.Revision
	}
	if err := c.store.Put(ctx, rec); err != nil {
		return File{}, fmt.Errorf("push %s: %w", k, err)
	}
	c.notifyLocked(k, &rec, f)
	return cloneFile(f), nil
}

// Rollback pushes the content of revision rev of k again, as a new revision for everyone.
func (c *Center) Rollback(ctx context.Context, k Key, rev int64) (File, error) {
	if !k.valid(true) {
		return File{}, fmt.Errorf("rollback %s: %w", k, ErrInvalid)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	rec, ok, err := c.store.Get(ctx, k)
	if err != nil {
		return File{}, fmt.Errorf("rollback %s: %w", k, err)
	}
	old, found := rec.revision(rev)
	if !ok || !found {
		return File{}, fmt.Errorf("rollback %s to revision %d: %w", k, rev, ErrNotFound)
	}
	return c.pushLocked(ctx, k, old.Content, fmt.Sprintf("rollback to revision %d", rev), "")
}

// Delete removes k with its history and tells its watchers.
func (c *Center) Delete(ctx context.Context, k Key) error {
	if !k.valid(true) {
		return fmt.Errorf("delete %s: %w", k, ErrInvalid)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok, err := c.store.Get(ctx, k)
	if err != nil {
		return fmt.Errorf("delete %s: %w", k, err)
	}
	if !ok {
		return fmt.Errorf("delete %s: %w", k, ErrNotFound)
	}
	if err := c.store.Delete(ctx, k); err != nil {
		return fmt.Errorf("delete %s: %w", k, err)
	}
	c.notifyLocked(k, nil, File{Key: k})
	c.appliedMu.Lock()
	delete(c.applied, k)
	c.appliedMu.Unlock()
	return nil
}

// Get returns the revision of k that caller gets.
func (c *Center) Get(ctx context.Context, k Key, caller Caller) (File, error) {
	if !k.valid(true) {
		return File{}, fmt.Errorf("get %s: %w", k, ErrInvalid)
	}
	rec, ok, err := c.store.Get(ctx, k)
	if err != nil {
		return File{}, fmt.Errorf("get %s: %w", k, err)
	}
	f, found := Resolve(rec, caller)
	if !ok || !found {
		return File{}, fmt.Errorf("get %s: %w", k, ErrNotFound)
	}
	return f, nil
}

// History returns every revision of k, oldest first.
func (c *Center) History(ctx context.Context, k Key) ([]File, error) {
	if !k.valid(true) {
		return nil, fmt.Errorf("history %s: %w", k, ErrInvalid)
	}
	rec, ok, err := c.store.Get(ctx, k)
	if err != nil {
		return nil, fmt.Errorf("history %s: %w", k, err)
	}
	if !ok {
		return nil, fmt.Errorf("history %s: %w", k, ErrNotFound)
	}
	return rec.Revisions, nil
}

// Watch watches k (prefix: every file of k's directory whose name starts with k.File) as
// caller sees it. The first event is a snapshot of the matching files; then UPDATED when
// the revision the caller gets changes and REMOVED when a file it had goes away. Up to
// buf events are buffered; a watcher that falls further behind is dropped.
func (c *Center) Watch(ctx context.Context, k Key, prefix bool, caller Caller, buf int) (*Watch, error) {
	if !k.valid(!prefix) {
		return nil, fmt.Errorf("watch %s: %w", k, ErrInvalid)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var recs []Record
	if prefix {
		rs, err := c.store.List(ctx, k)
		if err != nil {
			return nil, fmt.Errorf("watch %s: %w", k, err)
		}
		recs = rs
	} else {
		rec, ok, err := c.store.Get(ctx, k)
		if err != nil {
			return nil, fmt.Errorf("watch %s: %w", k, err)
		}
		if ok {
			recs = []Record{rec}
		}
	}
	st := &watchState{key: k, prefix: prefix, caller: caller, seen: map[Key]int64{}}
	snap := Event{Type: EventSnapshot}
	for _, rec := range recs {
		if f, ok := Resolve(rec, caller); ok {
			snap.Files = append(snap.Files, f)
			st.seen[rec.Key] = f.Revision
		}
	}
	return c.hub.Add(buf, snap, st)
}

// Changes watches every push and delete as it happens, unresolved: UPDATED carries the
// pushed revision (GrayGroup set for a gray push), REMOVED the deleted key. The first
// event is an empty snapshot. It feeds the NATS publisher.
func (c *Center) Changes(buf int) (*Watch, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hub.Add(buf, Event{Type: EventSnapshot}, &watchState{raw: true})
}

// Watchers is the number of live watches (Changes included).
func (c *Center) Watchers() int { return c.hub.Len() }

// Close ends every watch with fanout.ErrClosed and refuses new ones.
func (c *Center) Close() { c.hub.Close() }

// notifyLocked tells watchers that k changed: rec is its new record, nil once deleted;
// pushed is the revision just pushed (or the bare key on delete).
func (c *Center) notifyLocked(k Key, rec *Record, pushed File) {
	c.hub.Each(func(w *Watch) (Event, bool) {
		st := w.State
		if st.raw {
			if rec == nil {
				return Event{Type: EventRemoved, Files: []File{{Key: k}}}, true
			}
			return Event{Type: EventUpdated, Files: []File{cloneFile(pushed)}}, true
		}
		if !st.key.Matches(k, st.prefix) {
			return Event{}, false
		}
		var f File
		ok := false
		if rec != nil {
			f, ok = Resolve(*rec, st.caller)
		}
		last, had := st.seen[k]
		switch {
		case !ok && had:
			delete(st.seen, k)
			return Event{Type: EventRemoved, Files: []File{{Key: k}}}, true
		case ok && (!had || last != f.Revision):
			st.seen[k] = f.Revision
			return Event{Type: EventUpdated, Files: []File{f}}, true
		}
		return Event{}, false
	})
}

// ReportApplied records whether the instance at caller.Addr applied revision rev of k.
func (c *Center) ReportApplied(_ context.Context, k Key, rev int64, caller Caller, applied bool, reason string) error {
	if !k.valid(true) || caller.Addr == "" {
		return fmt.Errorf("report applied %s by %q: %w", k, caller.Addr, ErrInvalid)
	}
	c.appliedMu.Lock()
	defer c.appliedMu.Unlock()
	m := c.applied[k]
	if m == nil {
		m = map[string]Applied{}
		c.applied[k] = m
	}
	m[caller.Addr] = Applied{Key: k, Addr: caller.Addr, Revision: rev, Applied: applied, Reason: reason, At: c.now()}
	return nil
}

// Applied returns the latest apply report of every instance for k, sorted by address.
func (c *Center) Applied(k Key) []Applied {
	c.appliedMu.Lock()
	defer c.appliedMu.Unlock()
	out := make([]Applied, 0, len(c.applied[k]))
	for _, a := range c.applied[k] {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Addr < out[j].Addr })
	return out
}
