// Package resource maps the personalisation resources a request names (ASE header
// res_id or patch_id, AIGES psrIds) to engine resource ids: the first request naming
// a resource fetches it (from polaris, through a Fetcher), loads it into the engine
// (wrapperLoadRes) under an id the manager allocates, and keeps it loaded; idle
// resources beyond the bound are evicted least recently used first and unloaded
// (wrapperUnloadRes); a changed or deleted resource is unloaded as soon as no request
// uses it any more. Concurrent first requests for one resource share one load.
//
//	m := resource.NewManager(eng, fetcher, resource.Config{MaxLoaded: 64}, log)
//	ids, release, err := m.Acquire(ctx, headers)   // 10166 unknown, 10903 load failed
//	if err != nil { ... }
//	defer release()
//	req.PsrIDs = ids
//	...
//	m.Invalidate(appID, resID, 0)                   // deleted: unload when idle
//
// The package imports no transport.
package resource

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/services/loader/engine"
	"github.com/rs/zerolog"
)

// Header names that carry resource ids (ids separated by commas).
const (
	HeaderResID   = "res_id"
	HeaderPatchID = "patch_id"
	HeaderAppID   = "app_id"
)

// Errors of the manager, with their codes.
var (
	// ErrNotFound: the request names a resource its app does not have (10166).
	ErrNotFound = aserr.ErrResNotFound
	// ErrLoad: the engine refused the resource (10903, as AIGES wrapperLoadRes errors),
	// unless the engine's error carries its own code.
	ErrLoad = aserr.New(10903, "engine load resource failed")
	// ErrUnsupported: the engine has no wrapperLoadRes (10003).
	ErrUnsupported = aserr.New(aserr.ErrInvalidOp.Code, "engine does not load personalisation resources")
)

// Data is a fetched resource.
type Data struct {
	// Revision identifies this upload; a change event with another revision makes
	// the loaded copy stale.
	Revision int64
	Bytes    []byte
}

// Fetcher gets a resource of the loader's service. It returns an error wrapping
// ErrNotFound (10166) when the resource does not exist.
type Fetcher interface {
	Fetch(ctx context.Context, appID, resID string) (Data, error)
}

// Config tunes the manager. Zero values take the defaults.
type Config struct {
	// MaxLoaded bounds the resources kept loaded while no request uses them
	// (default 64); resources in use are never evicted, so the engine may hold more
	// while they are.
	MaxLoaded int
	// MaxPerRequest bounds the resources one request may name (default 8).
	MaxPerRequest int
	// LoadTimeout bounds one fetch and load (default 30 s); a load is shared, so it
	// does not end with the request that started it.
	LoadTimeout time.Duration
}

func (c Config) withDefaults() Config {
	if c.MaxLoaded <= 0 {
		c.MaxLoaded = 64
	}
	if c.MaxPerRequest <= 0 {
		c.MaxPerRequest = 8
	}
	if c.LoadTimeout <= 0 {
		c.LoadTimeout = 30 * time.Second
	}
	return c
}

type key struct{ app, res string }

func (k key) String() string { return k.app + "/" + k.res }

// entry is one resource loaded, or being loaded, into the engine.
type entry struct {
	key   key
	psr   uint32
	rev   int64
	refs  int
	stale bool          // changed or deleted: no longer in byKey; unload at refs 0
	ready chan struct{} // closed when the load ended; err tells how
	err   error
	idle  *list.Element // in the LRU list while loaded and unused
}

// Stats counts what the manager did.
type Stats struct {
	Loaded, Loads, LoadErrors, Unloads, Evictions int
}

// Manager maps resource ids to engine psr ids. It owns no goroutine: loads run in the
// goroutine of the request that needs them first.
type Manager struct {
	eng   engine.ResourceLoader // nil: the engine cannot load resources
	fetch Fetcher               // nil: no resource source
	cfg   Config
	log   zerolog.Logger

	mu      sync.Mutex
	byKey   map[key]*entry
	lru     *list.List // idle loaded entries, most recently used at the front
	loaded  int        // entries whose load succeeded and which are not unloaded yet
	nextPsr uint32
	stats   Stats
	closed  bool
}

// NewManager returns a manager loading into eng, which may be an engine that does not
// implement engine.ResourceLoader (requests naming resources then fail with 10003).
// fetch may be nil when there is no resource source (they fail with 10166).
func NewManager(eng engine.Engine, fetch Fetcher, cfg Config, log zerolog.Logger) *Manager {
	rl, _ := eng.(engine.ResourceLoader)
	return &Manager{eng: rl, fetch: fetch, cfg: cfg.withDefaults(), log: log, byKey: map[key]*entry{}, lru: list.New()}
}

// SetFetcher sets the resource source (a loader learns it once connected to polaris).
func (m *Manager) SetFetcher(f Fetcher) {
	m.mu.Lock()
	m.fetch = f
	m.mu.Unlock()
}

// IDs returns the resource ids named by headers res_id and patch_id (comma separated,
// blanks and repeats dropped), in order.
func IDs(headers map[string]string) []string {
	var out []string
	for _, h := range []string{HeaderResID, HeaderPatchID} {
		for _, p := range strings.Split(headers[h], ",") {
			p = strings.TrimSpace(p)
			if p == "" {
				continue
			}
			dup := false
			for _, q := range out {
				dup = dup || q == p
			}
			if !dup {
				out = append(out, p)
			}
		}
	}
	return out
}

func noop() {}

// Acquire returns the engine ids of the resources headers name (see IDs) for the app
// in header app_id, loading those not loaded yet, and a release to call once the
// engine call or session that uses them has ended. No resource named: nil, a no-op
// release and no error.
func (m *Manager) Acquire(ctx context.Context, headers map[string]string) ([]uint32, func(), error) {
	if headers[HeaderResID] == "" && headers[HeaderPatchID] == "" {
		return nil, noop, nil // the common request: no resource, no allocation
	}
	ids := IDs(headers)
	if len(ids) == 0 {
		return nil, noop, nil
	}
	app := headers[HeaderAppID]
	switch {
	case len(ids) > m.cfg.MaxPerRequest:
		return nil, noop, fmt.Errorf("%d resources named, at most %d: %w", len(ids), m.cfg.MaxPerRequest, aserr.ErrInvalidParam)
	case app == "":
		return nil, noop, fmt.Errorf("resource %s named without app_id: %w", ids[0], aserr.ErrInvalidParam)
	case m.eng == nil:
		return nil, noop, fmt.Errorf("resource %s: %w", ids[0], ErrUnsupported)
	}
	m.mu.Lock()
	fetch := m.fetch
	m.mu.Unlock()
	if fetch == nil {
		return nil, noop, fmt.Errorf("resource %s/%s: the loader has no resource source (polaris): %w", app, ids[0], ErrNotFound)
	}
	got := make([]*entry, 0, len(ids))
	release := func() {
		for _, e := range got {
			m.release(e)
		}
	}
	psr := make([]uint32, 0, len(ids))
	for _, id := range ids {
		e, err := m.acquire(ctx, key{app, id}, fetch)
		if err != nil {
			release()
			return nil, noop, err
		}
		got = append(got, e)
		psr = append(psr, e.psr)
	}
	var once sync.Once
	return psr, func() { once.Do(release) }, nil
}

// acquire returns k's entry, loaded, with a reference taken.
func (m *Manager) acquire(ctx context.Context, k key, fetch Fetcher) (*entry, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, fmt.Errorf("resource %s: %w", k, aserr.ErrReleased)
	}
	e := m.byKey[k]
	if e == nil {
		e = &entry{key: k, ready: make(chan struct{}), refs: 1}
		m.byKey[k] = e
		m.mu.Unlock()
		m.load(ctx, e, fetch)
		if e.err != nil {
			return nil, e.err
		}
		return e, nil
	}
	e.refs++
	if e.idle != nil {
		m.lru.Remove(e.idle)
		e.idle = nil
	}
	m.mu.Unlock()
	select {
	case <-e.ready:
	case <-ctx.Done():
		m.release(e)
		return nil, fmt.Errorf("resource %s: %w", k, ctx.Err())
	}
	if e.err != nil {
		return nil, e.err
	}
	return e, nil
}

// load fetches and loads e; it ends e's load with success or e.err (and then drops e).
func (m *Manager) load(ctx context.Context, e *entry, fetch Fetcher) {
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.cfg.LoadTimeout)
	defer cancel()
	d, err := fetch.Fetch(lctx, e.key.app, e.key.res)
	var psr uint32
	if err == nil {
		psr = m.allocPsr()
		data := []engine.Payload{{
			Meta: engine.Meta{Name: e.key.res, Type: engine.DataOther, Attrs: map[string]string{
				HeaderAppID: e.key.app, HeaderResID: e.key.res, "revision": strconv.FormatInt(d.Revision, 10),
			}},
			Data: d.Bytes,
		}}
		if lerr := m.eng.LoadResource(lctx, psr, data); lerr != nil {
			err = fmt.Errorf("load resource %s into the engine: %w", e.key, loadErr(lerr))
		}
	} else {
		err = fmt.Errorf("fetch resource %s: %w", e.key, err)
	}
	m.mu.Lock()
	if err != nil {
		e.err = err
		if m.byKey[e.key] == e {
			delete(m.byKey, e.key)
		}
		m.stats.LoadErrors++
	} else {
		e.psr, e.rev = psr, d.Revision
		m.loaded++
		m.stats.Loads++
	}
	close(e.ready)
	m.mu.Unlock()
	if err != nil {
		m.log.Warn().Err(err).Str("app_id", e.key.app).Str("res_id", e.key.res).Msg("resource load")
	} else {
		m.log.Info().Str("app_id", e.key.app).Str("res_id", e.key.res).Uint32("psr", psr).Int64("revision", d.Revision).
			Int("bytes", len(d.Bytes)).Msg("resource loaded")
	}
}

// loadErr keeps the code of an engine error that has one, else gives 10903.
func loadErr(err error) error {
	var ae *aserr.Error
	if errors.As(err, &ae) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("%v: %w", err, ErrLoad)
}

func (m *Manager) allocPsr() uint32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nextPsr++
	if m.nextPsr == 0 {
		m.nextPsr = 1
	}
	return m.nextPsr
}

// release drops one reference of e: an unused stale entry is unloaded, an unused
// current one joins the LRU list, and the least recently used idle entries beyond
// MaxLoaded are unloaded.
func (m *Manager) release(e *entry) {
	var drop []*entry
	m.mu.Lock()
	e.refs--
	if e.refs == 0 && e.err == nil && isClosed(e.ready) {
		if e.stale {
			drop = append(drop, e)
		} else {
			e.idle = m.lru.PushFront(e)
		}
	}
	for m.loaded-len(drop) > m.cfg.MaxLoaded && m.lru.Len() > 0 {
		old := m.lru.Remove(m.lru.Back()).(*entry)
		old.idle = nil
		delete(m.byKey, old.key)
		drop = append(drop, old)
		m.stats.Evictions++
	}
	m.mu.Unlock()
	m.unload(drop)
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// unload unloads entries already out of byKey and the LRU list.
func (m *Manager) unload(es []*entry) {
	for _, e := range es {
		ctx, cancel := context.WithTimeout(context.Background(), m.cfg.LoadTimeout)
		err := m.eng.UnloadResource(ctx, e.psr)
		cancel()
		m.mu.Lock()
		m.loaded--
		m.stats.Unloads++
		m.mu.Unlock()
		if err != nil {
			m.log.Warn().Err(err).Str("app_id", e.key.app).Str("res_id", e.key.res).Uint32("psr", e.psr).Msg("resource unload")
		} else {
			m.log.Debug().Str("app_id", e.key.app).Str("res_id", e.key.res).Uint32("psr", e.psr).Msg("resource unloaded")
		}
	}
}

// Invalidate makes the loaded copy of appID's resID stale unless its revision is
// keep (pass 0 for a deleted resource): requests from now on fetch it again, and the
// old copy is unloaded once no request uses it.
func (m *Manager) Invalidate(appID, resID string, keep int64) {
	m.mu.Lock()
	e := m.byKey[key{appID, resID}]
	if e == nil || (keep != 0 && isClosed(e.ready) && e.rev == keep) {
		m.mu.Unlock()
		return
	}
	drop := m.staleLocked(e)
	m.mu.Unlock()
	m.unload(drop)
}

// staleLocked marks e stale and returns it when it can be unloaded now.
func (m *Manager) staleLocked(e *entry) []*entry {
	delete(m.byKey, e.key)
	e.stale = true
	if e.idle != nil {
		m.lru.Remove(e.idle)
		e.idle = nil
		return []*entry{e}
	}
	return nil
}

// Sync reconciles the loaded resources with a snapshot of every resource that
// exists (app_id → res_id → revision): the others and those of another revision are
// invalidated. Watchers call it after (re)connecting, when changes may have been
// missed.
func (m *Manager) Sync(exist map[string]map[string]int64) {
	var drop []*entry
	m.mu.Lock()
	for k, e := range m.byKey {
		rev, ok := exist[k.app][k.res]
		if ok && (!isClosed(e.ready) || e.rev == rev) {
			continue
		}
		drop = append(drop, m.staleLocked(e)...)
	}
	m.mu.Unlock()
	m.unload(drop)
}

// Loaded counts the resources loaded in the engine now.
func (m *Manager) Loaded() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.loaded
}

// Stats returns the counters.
func (m *Manager) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.stats
	s.Loaded = m.loaded
	return s
}

// Close refuses new acquisitions (10101) and unloads the idle resources; resources
// still in use stay loaded until the engine finishes.
func (m *Manager) Close() {
	var drop []*entry
	m.mu.Lock()
	m.closed = true
	for m.lru.Len() > 0 {
		e := m.lru.Remove(m.lru.Back()).(*entry)
		e.idle = nil
		delete(m.byKey, e.key)
		drop = append(drop, e)
	}
	m.mu.Unlock()
	if m.eng != nil {
		m.unload(drop)
	}
}
