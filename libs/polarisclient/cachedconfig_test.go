package polarisclient

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/capability/capwatch"
	polarispb "github.com/athenaserving/asf/libs/proto/polaris/v1"
	"github.com/athenaserving/asf/libs/testpoll"
	"github.com/rs/zerolog"
)

// applier is a config consumer driving CachedConfig as capwatch.Watcher does: it
// records every event and reports each file applied unless its content is "bad".
type applier struct {
	client polarispb.ConfigClient
	mu     sync.Mutex
	seen   []string
}

func (a *applier) handle(ctx context.Context, ev *polarispb.ConfigEvent) {
	for _, f := range ev.GetFiles() {
		a.mu.Lock()
		a.seen = append(a.seen, fmt.Sprintf("%s:%d:%s", ev.GetType(), f.GetRevision(), f.GetContent()))
		a.mu.Unlock()
		_, _ = a.client.ReportApplied(ctx, &polarispb.ReportAppliedRequest{Key: f.GetKey(), Revision: f.GetRevision(),
			Caller: &polarispb.Caller{Addr: "10.0.0.9:1"}, Applied: string(f.GetContent()) != "bad"})
	}
}

func (a *applier) last() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.seen) == 0 {
		return ""
	}
	return a.seen[len(a.seen)-1]
}

func (a *applier) run(t *testing.T) {
	run(t, func(ctx context.Context) error {
		return capwatch.Loop(ctx, a.client, testKey, false, capwatch.Options{MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond},
			zerolog.Nop(), func(ev *polarispb.ConfigEvent) { a.handle(ctx, ev) })
	})
}

func TestCachedConfigStartsFromCacheAndKeepsAcceptedRevisions(t *testing.T) {
	dir := t.TempDir()
	fake := &fakePolaris{files: map[string]*polarispb.ConfigFile{"atom.toml": cfgFile(1, "a=1")}, pushes: make(chan *polarispb.ConfigFile)}
	addr, stop := serve(t, "", fake)

	// A first run sees revision 1, then a revision 2 it rejects.
	c1 := dialCache(t, addr, dir, zerolog.Nop())
	a1 := &applier{client: c1.CachedConfig()}
	ctx1, cancel1 := context.WithCancel(context.Background())
	done1 := make(chan struct{})
	go func() {
		defer close(done1)
		_ = capwatch.Loop(ctx1, a1.client, testKey, false, capwatch.Options{}, zerolog.Nop(),
			func(ev *polarispb.ConfigEvent) { a1.handle(ctx1, ev) })
	}()
	testpoll.Until(t, 5*time.Second, "the condition", func() bool { return len(fake.reportsOf(1)) == 1 })
	fake.pushes <- cfgFile(2, "bad")
	testpoll.Until(t, 5*time.Second, "the condition", func() bool { return len(fake.reportsOf(2)) == 1 })
	cancel1()
	<-done1
	stop()

	// polaris is down at start: the watch gets the accepted revision 1 from the cache, once.
	logs := &syncBuf{}
	c2 := dialCache(t, addr, dir, zerolog.New(logs))
	a2 := &applier{client: c2.CachedConfig()}
	a2.run(t)
	testpoll.Until(t, 5*time.Second, "the condition", func() bool { return a2.last() == "TYPE_SNAPSHOT:1:a=1" })
	if !strings.Contains(logs.String(), "using the cached config") {
		t.Fatal("cache use not logged")
	}
	gctx, gcancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer gcancel()
	if _, err := c2.CachedConfig().Get(gctx, &polarispb.GetConfigRequest{Key: testKey}); err == nil {
		t.Fatal("Get answered from a cache it never filled")
	}

	// polaris comes back: the report of the cached revision is filed, and new revisions flow.
	serve(t, addr, fake)
	testpoll.Until(t, 10*time.Second, "the condition", func() bool { return len(fake.reportsOf(1)) >= 2 })
	fake.pushes <- cfgFile(3, "a=3")
	testpoll.Until(t, 5*time.Second, "the condition", func() bool { return a2.last() == "TYPE_UPDATED:3:a=3" })
	testpoll.Until(t, 5*time.Second, "the condition", func() bool {
		ev := &polarispb.ConfigEvent{}
		return (&diskCache{dir: dir, log: zerolog.Nop()}).load(kindWatch, watchName(testKey, false), ev) &&
			len(ev.GetFiles()) == 1 && ev.GetFiles()[0].GetRevision() == 3
	})
}

// Without a cache and without polaris, a watch never gets a snapshot.
func TestCachedConfigNoCacheNoSnapshot(t *testing.T) {
	fake := &fakePolaris{files: map[string]*polarispb.ConfigFile{}}
	addr, stop := serve(t, "", fake)
	stop()
	c := dialCache(t, addr, t.TempDir(), zerolog.Nop())
	a := &applier{client: c.CachedConfig()}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := a.client.Watch(ctx, &polarispb.WatchConfigRequest{Key: testKey})
	if err == nil {
		_, err = st.Recv()
	}
	if err == nil || !unreachable(err) {
		t.Fatalf("watch with polaris down and no cache: %v, want unavailable", err)
	}
}
