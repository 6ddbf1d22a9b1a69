package consul_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/testpoll"
	"github.com/athenaserving/asf/services/polaris/config"
	"github.com/athenaserving/asf/services/polaris/registry"
	"github.com/athenaserving/asf/services/polaris/store/consul"
	"github.com/athenaserving/asf/services/polaris/store/consul/consultest"
	"github.com/athenaserving/asf/services/polaris/store/storetest"
	"github.com/hashicorp/consul/api"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var ns atomic.Int64

// open returns a store in namespace name (KV prefix and Consul service name).
func open(t *testing.T, addr, name string) *consul.Store {
	t.Helper()
	st, err := consul.Open(context.Background(), consul.Options{Addr: addr, Prefix: name + "/", Service: name, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func fresh() string { return fmt.Sprintf("polaris-t%d", ns.Add(1)) }

func TestConsulConformance(t *testing.T) {
	addr := consultest.Start(t)
	storetest.Run(t, func(t *testing.T) storetest.Stores {
		name := fresh()
		st := open(t, addr, name)
		return storetest.Stores{Registry: st, Config: st, Resources: st, Reopen: func(t *testing.T) storetest.Stores {
			_ = st.Close()
			re := open(t, addr, name)
			return storetest.Stores{Registry: re, Config: re, Resources: re}
		}}
	})
}

// countingStore counts the liveness writes that reach Consul.
type countingStore struct {
	*consul.Store
	alive atomic.Int64
}

func (c *countingStore) Alive(ctx context.Context, k registry.Key) error {
	c.alive.Add(1)
	return c.Store.Alive(ctx, k)
}

type replica struct {
	reg    *registry.Registry
	center *config.Center
	st     *countingStore
}

func startReplica(t *testing.T, addr, name string, ttl time.Duration) *replica {
	t.Helper()
	st := &countingStore{Store: open(t, addr, name)}
	ctx, cancel := context.WithCancel(context.Background())
	reg, err := registry.New(ctx, st, registry.Options{TTL: ttl, SweepInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	center := config.New(st, config.Options{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); reg.Run(ctx) }()
	go func() { defer wg.Done(); center.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		reg.Close()
		center.Close()
	})
	return &replica{reg: reg, center: center, st: st}
}

func nextReg(t *testing.T, s *registry.Subscription, want registry.EventType) registry.Event {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-s.C():
			if !ok {
				t.Fatalf("subscription closed: %v", s.Err())
			}
			if ev.Type == want {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %v event", want)
		}
	}
}

func TestReplicasShareRegistry(t *testing.T) {
	addr := consultest.Start(t)
	name := fresh()
	a := startReplica(t, addr, name, 3*time.Second)
	b := startReplica(t, addr, name, 3*time.Second)
	sub, err := b.reg.Subscribe("echo", 64)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ctx := t.Context()
	k := registry.Key{Service: "echo", Addr: "127.0.0.1:5090"}
	if _, err := a.reg.Register(ctx, registry.Instance{Service: k.Service, Addr: k.Addr, Labels: map[string]string{"z": "1"}}, registry.Load{}, 0); err != nil {
		t.Fatal(err)
	}
	ev := nextReg(t, sub, registry.EventAdded)
	if ev.Instances[0].Instance.Labels["z"] != "1" || ev.Instances[0].TTL != 3*time.Second {
		t.Fatalf("B's ADDED: %+v", ev.Instances[0])
	}
	if l := b.reg.List("echo"); len(l) != 1 {
		t.Fatalf("B lists %v", l)
	}
	if err := a.reg.SetAdmin(ctx, k, registry.Admin{Enabled: false, Weight: 7}); err != nil {
		t.Fatal(err)
	}
	ev = nextReg(t, sub, registry.EventChanged)
	if ev.Instances[0].Admin.Enabled || ev.Instances[0].Admin.Weight != 7 {
		t.Fatalf("B's admin: %+v", ev.Instances[0].Admin)
	}
	if _, err := a.reg.Deregister(ctx, k); err != nil {
		t.Fatal(err)
	}
	nextReg(t, sub, registry.EventRemoved)
	if b.reg.Len() != 0 {
		t.Fatal("B still holds the instance")
	}
}

func TestLivenessInConsul(t *testing.T) {
	addr := consultest.Start(t)
	name := fresh()
	const ttl = 900 * time.Millisecond
	a := startReplica(t, addr, name, ttl)
	b := startReplica(t, addr, name, ttl)
	ctx := t.Context()
	k := registry.Key{Service: "echo", Addr: "127.0.0.1:5091"}
	if _, err := a.reg.Register(ctx, registry.Instance{Service: k.Service, Addr: k.Addr}, registry.Load{}, 0); err != nil {
		t.Fatal(err)
	}
	testpoll.Until(t, 10*time.Second, "B sees the instance", func() bool { return b.reg.Len() == 1 })

	// Heartbeats every 50 ms for 3 TTLs: the instance stays, and Consul gets at most one
	// write per TTL/3.
	start := time.Now()
	for time.Since(start) < 3*ttl {
		if known, err := a.reg.Heartbeat(ctx, k, registry.Load{Idle: 1}); err != nil || !known {
			t.Fatalf("heartbeat: known=%v err=%v", known, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if b.reg.Len() != 1 || a.reg.Len() != 1 {
		t.Fatal("a heartbeating instance was evicted")
	}
	writes, beats := a.st.alive.Load(), int64(3*ttl/(50*time.Millisecond))
	if max := int64(3*ttl/(ttl/3)) + 1; writes > max || writes < 3 {
		t.Fatalf("%d liveness writes for ~%d heartbeats: want 3..%d", writes, beats, max)
	}
	// Silence: Consul fails the check and both replicas drop the instance.
	testpoll.Until(t, 10*time.Second, "eviction on both replicas", func() bool { return a.reg.Len() == 0 && b.reg.Len() == 0 })
	if known, _ := a.reg.Heartbeat(ctx, k, registry.Load{}); known {
		t.Fatal("an evicted instance is still known")
	}
	// Registering again brings it back everywhere.
	if _, err := a.reg.Register(ctx, registry.Instance{Service: k.Service, Addr: k.Addr}, registry.Load{}, 0); err != nil {
		t.Fatal(err)
	}
	testpoll.Until(t, 10*time.Second, "B sees it again", func() bool { return b.reg.Len() == 1 })
}

func nextCfg(t *testing.T, w *config.Watch) config.Event {
	t.Helper()
	select {
	case ev, ok := <-w.C():
		if !ok {
			t.Fatalf("watch closed: %v", w.Err())
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no config event")
	}
	return config.Event{}
}

func TestReplicasShareConfig(t *testing.T) {
	addr := consultest.Start(t)
	name := fresh()
	a := startReplica(t, addr, name, time.Second)
	b := startReplica(t, addr, name, time.Second)
	ctx := t.Context()
	k := config.Key{Project: "asf", Group: "g", Service: "atom", Version: "1", File: "atom.toml"}
	w, err := b.center.Watch(ctx, k, false, config.Caller{Addr: "h:1"}, 64)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	raw, err := b.center.Changes(64)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	nextCfg(t, w)
	nextCfg(t, raw)
	if _, err := a.center.Push(ctx, k, []byte("a=1"), "via A", ""); err != nil {
		t.Fatal(err)
	}
	if ev := nextCfg(t, w); ev.Type != config.EventUpdated || string(ev.Files[0].Content) != "a=1" || ev.Files[0].Revision != 1 {
		t.Fatalf("B's watcher: %+v", ev)
	}
	if ev := nextCfg(t, raw); ev.Files[0].Revision != 1 {
		t.Fatalf("B's changes feed: %+v", ev)
	}

	// Concurrent pushes through both replicas: consecutive, distinct, none lost.
	const each = 8
	var wg sync.WaitGroup
	errs := make(chan error, 2*each)
	for i, c := range []*config.Center{a.center, b.center} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				if _, err := c.Push(ctx, k, fmt.Appendf(nil, "r%d-%d", i, j), "", ""); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	hist, err := b.center.History(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i, f := range hist {
		if f.Revision != int64(i+1) {
			t.Fatalf("revision %d at position %d", f.Revision, i)
		}
		seen[string(f.Content)] = true
	}
	if len(hist) != 1+2*each || len(seen) != 1+2*each {
		t.Fatalf("%d revisions, %d distinct: pushes lost", len(hist), len(seen))
	}
	// B's watcher ends on the last revision.
	testpoll.Until(t, 10*time.Second, "B's watcher reaches the last revision", func() bool {
		for {
			select {
			case ev := <-w.C():
				if ev.Files[0].Revision == int64(len(hist)) {
					return true
				}
			default:
				return false
			}
		}
	})
	// A delete through A reaches B's watcher.
	if err := a.center.Delete(ctx, k); err != nil {
		t.Fatal(err)
	}
	for ev := nextCfg(t, w); ev.Type != config.EventRemoved; ev = nextCfg(t, w) {
	}
}

func TestConcurrentLargePushesLeaveNoOrphans(t *testing.T) {
	addr := consultest.Start(t)
	name := fresh()
	a, b := open(t, addr, name), open(t, addr, name)
	ctx := t.Context()
	k := config.Key{Project: "asf", Group: "g", Service: "atom", Version: "1", File: "big.bin"}
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for i, st := range []*consul.Store{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 3 {
				content := make([]byte, 300<<10) // chunked: written before the commit
				content[0], content[1] = byte(i), byte(j)
				if _, _, err := st.Append(ctx, config.File{Key: k, Content: content}, 0); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	rec, _, err := a.Get(ctx, k)
	if err != nil || len(rec.Revisions) != 6 {
		t.Fatalf("%d revisions, %v", len(rec.Revisions), err)
	}
	seen := map[[2]byte]bool{}
	for _, f := range rec.Revisions {
		seen[[2]byte{f.Content[0], f.Content[1]}] = true
	}
	if len(seen) != 6 {
		t.Fatalf("%d distinct contents of 6", len(seen))
	}
	// Every chunk left in Consul belongs to a committed revision: 6 blobs of 2 chunks.
	keys, _, err := apiKeys(addr, name+"/config/file/")
	if err != nil {
		t.Fatal(err)
	}
	blobs := 0
	for _, key := range keys {
		if strings.Contains(key, "/blob/") {
			blobs++
		}
	}
	if blobs != 12 {
		t.Fatalf("%d chunks stored for 6 revisions of 2 chunks: orphans left", blobs)
	}
}

func apiKeys(addr, prefix string) ([]string, *api.QueryMeta, error) {
	c, err := api.NewClient(&api.Config{Address: addr, Transport: &http.Transport{DisableKeepAlives: true}})
	if err != nil {
		return nil, nil, err
	}
	return c.KV().Keys(prefix, "", nil)
}
