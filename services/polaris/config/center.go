package config

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/services/polaris/internal/fanout"
)

// DefaultMaxFileSize is the largest file content a push accepts by default.
const DefaultMaxFileSize = 4 << 20

// DefaultHistory is how many revisions of a file are kept by default.
const DefaultHistory = 50

// ErrTooLarge is returned for a push whose content exceeds the size limit.
var ErrTooLarge = aserr.New(aserr.ErrInvalidParam.Code, "config file too large")

// ErrPruned is returned for a rollback to (or a read of) a revision the history
// retention removed.
var ErrPruned = aserr.ErrRevisionPruned

// Options tune a Center; zero values take the defaults.
type Options struct {
	// Now is the clock (tests inject one); time.Now by default.
	Now func() time.Time
	// MaxFileSize is the largest content a push accepts; DefaultMaxFileSize by default.
	MaxFileSize int
	// History is how many revisions of a file are kept (the oldest beyond it are pruned
	// at the next push; revisions in force are never pruned); DefaultHistory by default.
	History int
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
	store   Store
	shared  SharedStore // store when it is shared, else nil
	now     func() time.Time
	maxSize int
	history int

	mu  sync.Mutex // serialises writes and watch registration
	hub *fanout.Hub[Event, *watchState]
	// notified is the last revision announced to raw watchers per file, -1 once deleted,
	// so that a shared store's echo of this replica's own writes is not announced twice.
	notified map[Key]int64
}

// New returns a config center backed by store.
func New(store Store, opt Options) *Center {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.MaxFileSize <= 0 {
		opt.MaxFileSize = DefaultMaxFileSize
	}
	if opt.History <= 0 {
		opt.History = DefaultHistory
	}
	c := &Center{store: store, now: opt.Now, maxSize: opt.MaxFileSize, history: opt.History, hub: fanout.NewHub[Event, *watchState](), notified: map[Key]int64{}}
	c.shared, _ = store.(SharedStore)
	return c
}

// Run follows the changes other replicas make in a shared store and tells this
// replica's watchers, until ctx ends. With a store that is not shared it only waits.
func (c *Center) Run(ctx context.Context) {
	if c.shared == nil {
		<-ctx.Done()
		return
	}
	c.shared.Watch(ctx, c.applyRemote)
}

// applyRemote tells watchers about a change seen in the shared store.
func (c *Center) applyRemote(k Key, rec *Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	last, known := c.notified[k]
	if rec == nil {
		if known && last < 0 {
			return // this replica deleted it
		}
		c.notified[k] = -1
		c.notifyLocked(k, nil, nil)
		return
	}
	var raw []File
	switch {
	case known && last >= rec.Last():
		// already announced (this replica's own push)
	case known && last > 0:
		for _, f := range rec.Revisions {
			if f.Revision > last {
				raw = append(raw, f)
			}
		}
	case len(rec.Revisions) > 0:
		raw = rec.Revisions[len(rec.Revisions)-1:]
	}
	if rec.Last() > last {
		c.notified[k] = rec.Last()
	}
	c.notifyLocked(k, rec, raw)
}

// Resolve picks the revision of rec that caller gets: its gray group's revision when the
// caller's "gray" label names a group of rec, else the current revision.
func Resolve(rec Record, caller Caller) (File, bool) {
	if g := caller.Labels[GrayLabel]; g != "" {
		if n, ok := rec.Gray[g]; ok {
			if f, ok := rec.Revision(n); ok {
				f = cloneFile(f)
				f.Gray = true
				return f, true
			}
		}
	}
	if rec.Current == 0 {
		return File{}, false
	}
	f, ok := rec.Revision(rec.Current)
	return cloneFile(f), ok
}

// Push stores content as revision N+1 of k. With grayGroup empty the revision becomes
// the one everyone gets and every gray revision of k is retired (a full release
// supersedes the canary); otherwise only callers of grayGroup get it.
func (c *Center) Push(ctx context.Context, k Key, content []byte, comment, grayGroup string) (File, error) {
	if !k.valid(true) {
		return File{}, fmt.Errorf("push %s: %w", k, ErrInvalid)
	}
	if len(content) > c.maxSize {
		return File{}, fmt.Errorf("push %s: %d bytes exceed the limit of %d bytes: %w", k, len(content), c.maxSize, ErrTooLarge)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pushLocked(ctx, k, content, comment, grayGroup)
}

func (c *Center) pushLocked(ctx context.Context, k Key, content []byte, comment, grayGroup string) (File, error) {
	rec, f, err := c.store.Append(ctx, File{Key: k, Content: content, Created: c.now(), Comment: comment, GrayGroup: grayGroup}, c.history)
	if err != nil {
		return File{}, fmt.Errorf("push %s: %w", k, err)
	}
	c.notified[k] = f.Revision
	c.notifyLocked(k, &rec, []File{f})
	return f, nil
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
	old, found := rec.Revision(rev)
	if ok && rec.Pruned(rev) {
		return File{}, fmt.Errorf("rollback %s to revision %d: only the last %d revisions are kept (oldest kept: %d): %w",
			k, rev, c.history, rec.Revisions[0].Revision, ErrPruned)
	}
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
	ok, err := c.store.Delete(ctx, k)
	if err != nil {
		return fmt.Errorf("delete %s: %w", k, err)
	}
	if !ok {
		return fmt.Errorf("delete %s: %w", k, ErrNotFound)
	}
	c.notified[k] = -1
	c.notifyLocked(k, nil, nil)
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

// HistoryLimit is how many revisions of a file are kept.
func (c *Center) HistoryLimit() int { return c.history }

// Revision returns revision rev of k: ErrPruned when the retention removed it,
// ErrNotFound when it never existed.
func (c *Center) Revision(ctx context.Context, k Key, rev int64) (File, error) {
	if !k.valid(true) {
		return File{}, fmt.Errorf("revision %s: %w", k, ErrInvalid)
	}
	rec, ok, err := c.store.Get(ctx, k)
	if err != nil {
		return File{}, fmt.Errorf("revision %s: %w", k, err)
	}
	if ok && rec.Pruned(rev) {
		return File{}, fmt.Errorf("%s revision %d: only the last %d revisions are kept: %w", k, rev, c.history, ErrPruned)
	}
	f, found := rec.Revision(rev)
	if !ok || !found {
		return File{}, fmt.Errorf("%s revision %d: %w", k, rev, ErrNotFound)
	}
	return cloneFile(f), nil
}

// History returns every kept revision of k, oldest first.
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
// pushed are the revisions to announce to raw watchers (none: nothing new for them).
func (c *Center) notifyLocked(k Key, rec *Record, pushed []File) {
	c.hub.Each(func(w *Watch) (Event, bool) {
		st := w.State
		if st.raw {
			if rec == nil {
				return Event{Type: EventRemoved, Files: []File{{Key: k}}}, true
			}
			if len(pushed) == 0 {
				return Event{}, false
			}
			files := make([]File, len(pushed))
			for i, f := range pushed {
				files[i] = cloneFile(f)
			}
			return Event{Type: EventUpdated, Files: files}, true
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
func (c *Center) ReportApplied(ctx context.Context, k Key, rev int64, caller Caller, applied bool, reason string) error {
	if !k.valid(true) || caller.Addr == "" {
		return fmt.Errorf("report applied %s by %q: %w", k, caller.Addr, ErrInvalid)
	}
	a := Applied{Key: k, Addr: caller.Addr, Revision: rev, Applied: applied, Reason: reason, At: c.now()}
	if err := c.store.PutApplied(ctx, a); err != nil {
		return fmt.Errorf("report applied %s by %s: %w", k, caller.Addr, err)
	}
	return nil
}

// appliedTimeout bounds the store read of Applied, which takes no context.
const appliedTimeout = 5 * time.Second

// Applied returns the latest apply report of every instance for k, sorted by address
// (none when the store cannot be read; AppliedReports returns the error).
func (c *Center) Applied(k Key) []Applied {
	ctx, cancel := context.WithTimeout(context.Background(), appliedTimeout)
	defer cancel()
	out, err := c.AppliedReports(ctx, k)
	if err != nil {
		return []Applied{}
	}
	return out
}

// AppliedReports returns the latest apply report of every instance for k, sorted by
// address.
func (c *Center) AppliedReports(ctx context.Context, k Key) ([]Applied, error) {
	out, err := c.store.Applied(ctx, k)
	if err != nil {
		return nil, fmt.Errorf("applied %s: %w", k, err)
	}
	if out == nil {
		out = []Applied{}
	}
	return out, nil
}
