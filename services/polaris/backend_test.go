package polaris_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/natsbus"
	polarispb "github.com/athenaserving/asf/libs/proto/polaris/v1"
	"github.com/athenaserving/asf/libs/testpoll"
	"github.com/athenaserving/asf/services/polaris"
	"github.com/athenaserving/asf/services/polaris/config"
	"github.com/athenaserving/asf/services/polaris/registry"
	"github.com/athenaserving/asf/services/polaris/store/consul/consultest"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// run starts a server on cfg and returns it with its stop (also run at cleanup).
func run(t *testing.T, cfg polaris.Config) (*polaris.Server, func()) {
	t.Helper()
	cfg.GRPCListen, cfg.AdminListen, cfg.NATSListen, cfg.ConsoleListen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.AdminToken = testAdminToken
	srv, err := polaris.New(cfg, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				t.Errorf("shutdown: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return srv, stop
}

func TestBackendConfigValidation(t *testing.T) {
	for _, mod := range []func(*polaris.Config){
		func(c *polaris.Config) { c.Backend = "etcd" },
		func(c *polaris.Config) { c.Backend, c.ConsulAddr = polaris.BackendConsul, "" },
	} {
		cfg := polaris.DefaultConfig()
		cfg.DataDir, cfg.TLS.Insecure = t.TempDir(), true
		mod(&cfg)
		if _, err := polaris.New(cfg, zerolog.Nop(), nil); err == nil {
			t.Fatalf("backend %q accepted", cfg.Backend)
		}
	}
}

func TestRestartOnEmbeddedBackend(t *testing.T) {
	cfg := polaris.DefaultConfig()
	cfg.DataDir, cfg.TTL = t.TempDir(), 600*time.Millisecond
	cfg.TLS.Insecure = true // NATS without credentials
	if cfg.Backend != polaris.BackendEmbedded {
		t.Fatalf("default backend %q", cfg.Backend)
	}
	srv, stop := run(t, cfg)
	ctx := t.Context()
	k := registry.Key{Service: "echo", Addr: "127.0.0.1:5090"}
	if _, err := srv.Registry().Register(ctx, registry.Instance{Service: k.Service, Addr: k.Addr, Version: "2"}, registry.Load{}, 0); err != nil {
		t.Fatal(err)
	}
	if err := srv.Registry().SetAdmin(ctx, k, registry.Admin{Enabled: false, Weight: 30}); err != nil {
		t.Fatal(err)
	}
	ck := config.Key{Project: "asf", Group: "g", Service: "atom", Version: "1", File: "atom.toml"}
	c := srv.ConfigCenter()
	for _, p := range []struct{ content, gray string }{{"v1", ""}, {"v2", ""}, {"v3-canary", "canary"}} {
		if _, err := c.Push(ctx, ck, []byte(p.content), "", p.gray); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.ReportApplied(ctx, ck, 2, config.Caller{Addr: "h:1"}, true, ""); err != nil {
		t.Fatal(err)
	}
	stop()

	srv2, _ := run(t, cfg)
	got := srv2.Registry().List("echo")
	if len(got) != 1 || got[0].Instance.Version != "2" || got[0].Admin.Enabled || got[0].Admin.Weight != 30 {
		t.Fatalf("registry after restart: %+v", got)
	}
	hist, err := srv2.ConfigCenter().History(ctx, ck)
	if err != nil || len(hist) != 3 {
		t.Fatalf("history after restart: %v %v", hist, err)
	}
	if f, err := srv2.ConfigCenter().Get(ctx, ck, config.Caller{Labels: map[string]string{config.GrayLabel: "canary"}}); err != nil || string(f.Content) != "v3-canary" {
		t.Fatalf("gray after restart: %q %v", f.Content, err)
	}
	if f, err := srv2.ConfigCenter().Get(ctx, ck, config.Caller{}); err != nil || string(f.Content) != "v2" {
		t.Fatalf("current after restart: %q %v", f.Content, err)
	}
	if a := srv2.ConfigCenter().Applied(ck); len(a) != 1 || a[0].Revision != 2 {
		t.Fatalf("apply reports after restart: %+v", a)
	}
	// The restored instance does not heartbeat: it is evicted within its TTL.
	testpoll.Until(t, 3*time.Second, "the condition", func() bool { return srv2.Registry().Len() == 0 })
	// The admin state outlives the eviction.
	if _, err := srv2.Registry().Register(ctx, registry.Instance{Service: k.Service, Addr: k.Addr}, registry.Load{}, 0); err != nil {
		t.Fatal(err)
	}
	if got := srv2.Registry().List("echo"); got[0].Admin.Weight != 30 {
		t.Fatalf("admin after eviction: %+v", got[0].Admin)
	}
}

func TestReplicasOnConsul(t *testing.T) {
	addr := consultest.Start(t)
	cfg := polaris.DefaultConfig()
	cfg.Backend, cfg.ConsulAddr = polaris.BackendConsul, addr
	cfg.TLS.Insecure = true // NATS without credentials
	cfg.DataDir = t.TempDir()
	a, _ := run(t, cfg)
	cfg.DataDir = t.TempDir()
	b, _ := run(t, cfg)
	ctx := t.Context()

	nc, err := nats.Connect(b.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	regSub, _ := nc.SubscribeSync(natsbus.RegistrySubject("asf", "echo"))
	cfgSub, _ := nc.SubscribeSync(natsbus.ConfigSubject("asf", "atom"))
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	// Registered through A: B lists it and publishes ADDED on its NATS.
	rcA := polarispb.NewRegistryClient(dial(t, a.GRPCAddr()))
	inst := &polarispb.Instance{Service: "echo", Addr: "127.0.0.1:5090", Kind: "provider"}
	if _, err := rcA.Register(ctx, &polarispb.RegisterRequest{Instance: inst}); err != nil {
		t.Fatal(err)
	}
	if _, ev := recvRegistry(t, regSub); ev.GetType() != polarispb.RegistryEvent_TYPE_ADDED || ev.GetInstances()[0].GetInstance().GetAddr() != inst.Addr {
		t.Fatalf("B's NATS: %v", ev)
	}
	rcB := polarispb.NewRegistryClient(dial(t, b.GRPCAddr()))
	if l, err := rcB.List(ctx, &polarispb.ListRequest{Service: "echo"}); err != nil || len(l.GetInstances()) != 1 {
		t.Fatalf("B's list: %v %v", l, err)
	}

	// Pushed through A: a watcher on B gets it.
	ccB := polarispb.NewConfigClient(dial(t, b.GRPCAddr()))
	key := &polarispb.ConfigKey{Project: "asf", Group: "g", Service: "atom", Version: "1", File: "atom.toml"}
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	w, err := ccB.Watch(wctx, &polarispb.WatchConfigRequest{Key: key, Caller: &polarispb.Caller{Addr: "h:1"}})
	if err != nil {
		t.Fatal(err)
	}
	if ev, err := w.Recv(); err != nil || ev.GetType() != polarispb.ConfigEvent_TYPE_SNAPSHOT {
		t.Fatalf("snapshot: %v %v", ev, err)
	}
	ccA := polarispb.NewConfigClient(dial(t, a.GRPCAddr()))
	if _, err := ccA.Push(ctx, &polarispb.PushConfigRequest{Key: key, Content: []byte("a=1")}); err != nil {
		t.Fatal(err)
	}
	ev, err := w.Recv()
	if err != nil || ev.GetType() != polarispb.ConfigEvent_TYPE_UPDATED || string(ev.GetFiles()[0].GetContent()) != "a=1" {
		t.Fatalf("B's watcher: %v %v", ev, err)
	}
	if _, err := cfgSub.NextMsg(5 * time.Second); err != nil {
		t.Fatalf("B's NATS config event: %v", err)
	}

	// Concurrent pushes through A and B: consecutive revisions, nothing lost.
	const each = 5
	var wg sync.WaitGroup
	errs := make(chan error, 2*each)
	for i, cc := range []polarispb.ConfigClient{ccA, ccB} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				if _, err := cc.Push(ctx, &polarispb.PushConfigRequest{Key: key, Content: fmt.Appendf(nil, "r%d-%d", i, j)}); err != nil {
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
	hist, err := ccA.History(ctx, &polarispb.HistoryRequest{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i, f := range hist.GetRevisions() {
		if f.GetRevision() != int64(i+1) {
			t.Fatalf("revision %d at %d", f.GetRevision(), i)
		}
		seen[string(f.GetContent())] = true
	}
	if len(seen) != 1+2*each {
		t.Fatalf("%d distinct revisions of %d pushes", len(seen), 1+2*each)
	}
}
