package resource

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/services/loader/engine"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeEngine records what is loaded under which psr id.
type fakeEngine struct {
	engine.Engine // nil: only the resource methods are called
	mu            sync.Mutex
	loaded        map[uint32]string
	loads         int
	fail          error
	gate          chan struct{} // when set, LoadResource waits for it
}

func (f *fakeEngine) LoadResource(ctx context.Context, id uint32, data []engine.Payload) error {
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.loads++
	if f.fail != nil {
		return f.fail
	}
	if len(data) != 1 || data[0].Type != engine.DataOther || data[0].Attrs[HeaderAppID] == "" {
		return fmt.Errorf("bad payloads %+v", data)
	}
	f.loaded[id] = string(data[0].Data)
	return nil
}

func (f *fakeEngine) UnloadResource(_ context.Context, id uint32) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.loaded[id]; !ok {
		return fmt.Errorf("unload of %d: not loaded", id)
	}
	delete(f.loaded, id)
	return nil
}

func (f *fakeEngine) snapshot() (map[uint32]string, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[uint32]string{}
	for k, v := range f.loaded {
		out[k] = v
	}
	return out, f.loads
}

// fakeFetcher serves app → res → data; revision is the number of sets.
type fakeFetcher struct {
	mu      sync.Mutex
	data    map[string]string
	rev     map[string]int64
	fetches int
}

func newFetcher() *fakeFetcher {
	return &fakeFetcher{data: map[string]string{}, rev: map[string]int64{}}
}

func (f *fakeFetcher) set(app, res, v string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.data[app+"/"+res] = v
	f.rev[app+"/"+res]++
	return f.rev[app+"/"+res]
}

func (f *fakeFetcher) del(app, res string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.data, app+"/"+res)
}

func (f *fakeFetcher) Fetch(_ context.Context, app, res string) (Data, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fetches++
	v, ok := f.data[app+"/"+res]
	if !ok {
		return Data{}, fmt.Errorf("%s/%s: %w", app, res, ErrNotFound)
	}
	return Data{Revision: f.rev[app+"/"+res], Bytes: []byte(v)}, nil
}

func hdr(app, res string) map[string]string {
	return map[string]string{HeaderAppID: app, HeaderResID: res}
}

func newManager(t *testing.T, f Fetcher, cfg Config) (*Manager, *fakeEngine) {
	eng := &fakeEngine{loaded: map[uint32]string{}}
	m := NewManager(eng, f, cfg, zerolog.Nop())
	t.Cleanup(m.Close)
	return m, eng
}

func TestIDs(t *testing.T) {
	got := IDs(map[string]string{HeaderResID: " a, b,,a ", HeaderPatchID: "c,b"})
	if fmt.Sprint(got) != "[a b c]" {
		t.Fatalf("IDs = %v", got)
	}
	if IDs(map[string]string{"x": "y"}) != nil {
		t.Fatal("IDs of no resource header is not nil")
	}
}

func TestAcquireLoadsOnceAndCaches(t *testing.T) {
	f := newFetcher()
	f.set("app1", "hw", "hot words")
	f.set("app2", "hw", "other app")
	m, eng := newManager(t, f, Config{})
	ctx := t.Context()
	ids, release, err := m.Acquire(ctx, hdr("app1", "hw"))
	if err != nil || len(ids) != 1 {
		t.Fatalf("acquire = %v, %v", ids, err)
	}
	loaded, _ := eng.snapshot()
	if loaded[ids[0]] != "hot words" {
		t.Fatalf("engine holds %v, want hot words under %d", loaded, ids[0])
	}
	release()
	release() // idempotent
	again, release2, err := m.Acquire(ctx, hdr("app1", "hw"))
	if err != nil || again[0] != ids[0] {
		t.Fatalf("second acquire = %v, %v; want the cached %d", again, err, ids[0])
	}
	release2()
	other, release3, err := m.Acquire(ctx, hdr("app2", "hw"))
	if err != nil || other[0] == ids[0] {
		t.Fatalf("another app's hw = %v, %v", other, err)
	}
	release3()
	if _, loads := eng.snapshot(); loads != 2 || f.fetches != 2 {
		t.Fatalf("loads %d fetches %d, want 2 and 2", loads, f.fetches)
	}
	// No resource named: nothing to do.
	if ids, rel, err := m.Acquire(ctx, map[string]string{HeaderAppID: "app1"}); err != nil || ids != nil {
		t.Fatalf("acquire of nothing = %v, %v", ids, err)
	} else {
		rel()
	}
}

func TestAcquireSeveralAndPatchID(t *testing.T) {
	f := newFetcher()
	f.set("a", "x", "X")
	f.set("a", "y", "Y")
	m, eng := newManager(t, f, Config{})
	ids, release, err := m.Acquire(t.Context(), map[string]string{HeaderAppID: "a", HeaderResID: "x", HeaderPatchID: "y"})
	if err != nil || len(ids) != 2 {
		t.Fatalf("acquire = %v, %v", ids, err)
	}
	defer release()
	loaded, _ := eng.snapshot()
	if loaded[ids[0]] != "X" || loaded[ids[1]] != "Y" {
		t.Fatalf("engine holds %v for %v", loaded, ids)
	}
}

func TestErrors(t *testing.T) {
	f := newFetcher()
	f.set("a", "ok", "fine")
	m, eng := newManager(t, f, Config{MaxPerRequest: 2})
	ctx := t.Context()
	check := func(name string, h map[string]string, code int) {
		t.Helper()
		_, _, err := m.Acquire(ctx, h)
		if aserr.CodeOf(err) != code {
			t.Fatalf("%s: err %v, want code %d", name, err, code)
		}
	}
	check("unknown", hdr("a", "nope"), 10166)
	check("no app", map[string]string{HeaderResID: "ok"}, 10107)
	check("too many", map[string]string{HeaderAppID: "a", HeaderResID: "a,b,c"}, 10107)
	// One unknown among known ones: the known one is released, not leaked.
	check("one unknown", map[string]string{HeaderAppID: "a", HeaderResID: "ok,nope"}, 10166)
	eng.mu.Lock()
	eng.fail = errors.New("bad resource format")
	eng.mu.Unlock()
	f.set("a", "bad", "x")
	check("engine refuses", hdr("a", "bad"), 10903)
	eng.mu.Lock()
	eng.fail = aserr.New(20005, "engine says no")
	eng.mu.Unlock()
	check("engine code kept", hdr("a", "bad"), 20005)

	plain := NewManager(struct{ engine.Engine }{}, f, Config{}, zerolog.Nop())
	if _, _, err := plain.Acquire(ctx, hdr("a", "ok")); aserr.CodeOf(err) != 10003 {
		t.Fatalf("engine without LoadRes: %v, want 10003", err)
	}
	noSource := NewManager(&fakeEngine{loaded: map[uint32]string{}}, nil, Config{}, zerolog.Nop())
	if _, _, err := noSource.Acquire(ctx, hdr("a", "ok")); aserr.CodeOf(err) != 10166 {
		t.Fatalf("no source: %v, want 10166", err)
	}
	if got := m.Stats(); got.Loaded != 1 {
		t.Fatalf("stats %+v: want 1 loaded (ok)", got)
	}
}

func TestConcurrentFirstRequestsShareOneLoad(t *testing.T) {
	f := newFetcher()
	f.set("a", "r", "data")
	m, eng := newManager(t, f, Config{})
	eng.gate = make(chan struct{})
	const n = 8
	var wg sync.WaitGroup
	ids := make([]uint32, n)
	errs := make([]error, n)
	rels := make([]func(), n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var got []uint32
			got, rels[i], errs[i] = m.Acquire(context.Background(), hdr("a", "r"))
			if len(got) == 1 {
				ids[i] = got[0]
			}
		}()
	}
	close(eng.gate)
	wg.Wait()
	for i := range n {
		if errs[i] != nil || ids[i] != ids[0] {
			t.Fatalf("acquire %d = %d, %v; want %d", i, ids[i], errs[i], ids[0])
		}
		rels[i]()
	}
	if _, loads := eng.snapshot(); loads != 1 {
		t.Fatalf("%d loads, want 1", loads)
	}
}

func TestWaiterGivesUp(t *testing.T) {
	f := newFetcher()
	f.set("a", "r", "data")
	m, eng := newManager(t, f, Config{})
	eng.gate = make(chan struct{})
	first := make(chan error, 1)
	go func() {
		_, rel, err := m.Acquire(context.Background(), hdr("a", "r"))
		if err == nil {
			rel()
		}
		first <- err
	}()
	// Wait until the first request holds the load, then join it with a cancelled context.
	for {
		m.mu.Lock()
		_, loading := m.byKey[key{"a", "r"}]
		m.mu.Unlock()
		if loading {
			break
		}
		runtime.Gosched()
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := m.Acquire(ctx, hdr("a", "r")); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter: %v", err)
	}
	close(eng.gate)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if m.Loaded() != 1 || m.lru.Len() != 1 {
		t.Fatalf("loaded %d idle %d, want 1 and 1", m.Loaded(), m.lru.Len())
	}
}

func TestEvictionUnloadsLeastRecentlyUsed(t *testing.T) {
	f := newFetcher()
	for _, r := range []string{"r1", "r2", "r3"} {
		f.set("a", r, r)
	}
	m, eng := newManager(t, f, Config{MaxLoaded: 2})
	ctx := t.Context()
	use := func(r string) uint32 {
		t.Helper()
		ids, rel, err := m.Acquire(ctx, hdr("a", r))
		if err != nil {
			t.Fatal(err)
		}
		rel()
		return ids[0]
	}
	id1 := use("r1")
	use("r2")
	use("r1") // r2 is now the least recently used
	use("r3")
	loaded, _ := eng.snapshot()
	if len(loaded) != 2 || loaded[id1] != "r1" {
		t.Fatalf("engine holds %v, want r1 and r3", loaded)
	}
	for _, v := range loaded {
		if v == "r2" {
			t.Fatalf("r2 was not evicted: %v", loaded)
		}
	}
	// In-use resources are never evicted: hold all three.
	var rels []func()
	for _, r := range []string{"r1", "r2", "r3"} {
		_, rel, err := m.Acquire(ctx, hdr("a", r))
		if err != nil {
			t.Fatal(err)
		}
		rels = append(rels, rel)
	}
	if loaded, _ := eng.snapshot(); len(loaded) != 3 {
		t.Fatalf("engine holds %v while all three are used", loaded)
	}
	for _, rel := range rels {
		rel()
	}
	if loaded, _ := eng.snapshot(); len(loaded) != 2 || m.Stats().Evictions != 2 {
		t.Fatalf("engine holds %v after release, stats %+v", loaded, m.Stats())
	}
}

func TestInvalidateAndSync(t *testing.T) {
	f := newFetcher()
	f.set("a", "r", "v1")
	m, eng := newManager(t, f, Config{})
	ctx := t.Context()
	ids, rel, err := m.Acquire(ctx, hdr("a", "r"))
	if err != nil {
		t.Fatal(err)
	}
	// Deleted while in use: stays loaded for the running request, gone after it.
	f.del("a", "r")
	m.Invalidate("a", "r", 0)
	if loaded, _ := eng.snapshot(); loaded[ids[0]] != "v1" {
		t.Fatalf("in-use resource unloaded early: %v", loaded)
	}
	rel()
	if loaded, _ := eng.snapshot(); len(loaded) != 0 {
		t.Fatalf("deleted resource still loaded: %v", loaded)
	}
	if _, _, err := m.Acquire(ctx, hdr("a", "r")); aserr.CodeOf(err) != 10166 {
		t.Fatalf("after delete: %v, want 10166", err)
	}
	// Updated: an event with the loaded revision changes nothing, another reloads.
	rev := f.set("a", "r", "v2")
	ids, rel, _ = m.Acquire(ctx, hdr("a", "r"))
	rel()
	m.Invalidate("a", "r", rev)
	if loaded, _ := eng.snapshot(); loaded[ids[0]] != "v2" {
		t.Fatalf("same-revision event unloaded: %v", loaded)
	}
	rev = f.set("a", "r", "v3")
	m.Invalidate("a", "r", rev)
	if loaded, _ := eng.snapshot(); len(loaded) != 0 {
		t.Fatalf("updated resource still loaded: %v", loaded)
	}
	ids, rel, _ = m.Acquire(ctx, hdr("a", "r"))
	rel()
	if loaded, _ := eng.snapshot(); loaded[ids[0]] != "v3" {
		t.Fatalf("after update: %v", loaded)
	}
	// Sync: a snapshot without it unloads it; one with its revision keeps it.
	m.Sync(map[string]map[string]int64{"a": {"r": rev}})
	if m.Loaded() != 1 {
		t.Fatal("sync with the same revision unloaded")
	}
	m.Sync(map[string]map[string]int64{})
	if loaded, _ := eng.snapshot(); len(loaded) != 0 || m.Loaded() != 0 {
		t.Fatalf("sync without it: %v", loaded)
	}
}

func TestCloseUnloadsIdleAndRefuses(t *testing.T) {
	f := newFetcher()
	f.set("a", "r", "x")
	eng := &fakeEngine{loaded: map[uint32]string{}}
	m := NewManager(eng, f, Config{}, zerolog.Nop())
	_, rel, err := m.Acquire(t.Context(), hdr("a", "r"))
	if err != nil {
		t.Fatal(err)
	}
	rel()
	m.Close()
	if loaded, _ := eng.snapshot(); len(loaded) != 0 {
		t.Fatalf("close left %v", loaded)
	}
	if _, _, err := m.Acquire(t.Context(), hdr("a", "r")); aserr.CodeOf(err) != 10101 {
		t.Fatalf("after close: %v, want 10101", err)
	}
}
