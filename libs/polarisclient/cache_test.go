package polarisclient

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	polarispb "github.com/athenaserving/asf/libs/proto/polaris/v1"
	"github.com/athenaserving/asf/libs/testpoll"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakePolaris serves a fixed registry snapshot and config files, can push a revision
// to its config watchers, and records apply reports.
type fakePolaris struct {
	polarispb.UnimplementedRegistryServer
	polarispb.UnimplementedConfigServer
	mu        sync.Mutex
	instances []*polarispb.InstanceState
	files     map[string]*polarispb.ConfigFile
	pushes    chan *polarispb.ConfigFile
	reports   []*polarispb.ReportAppliedRequest
}

func (f *fakePolaris) Watch(_ *polarispb.WatchRequest, s polarispb.Registry_WatchServer) error {
	f.mu.Lock()
	ev := &polarispb.RegistryEvent{Type: polarispb.RegistryEvent_TYPE_SNAPSHOT, Instances: f.instances}
	f.mu.Unlock()
	if err := s.Send(ev); err != nil {
		return err
	}
	<-s.Context().Done()
	return nil
}

func (f *fakePolaris) Get(_ context.Context, r *polarispb.GetConfigRequest) (*polarispb.ConfigFile, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.files[r.GetKey().GetFile()], nil
}

func (f *fakePolaris) WatchConfig(s polarispb.Config_WatchServer, key *polarispb.ConfigKey) error {
	f.mu.Lock()
	snap := &polarispb.ConfigEvent{Type: polarispb.ConfigEvent_TYPE_SNAPSHOT}
	if file, ok := f.files[key.GetFile()]; ok {
		snap.Files = append(snap.Files, file)
	}
	f.mu.Unlock()
	if err := s.Send(snap); err != nil {
		return err
	}
	for {
		select {
		case <-s.Context().Done():
			return nil
		case p := <-f.pushes:
			if err := s.Send(&polarispb.ConfigEvent{Type: polarispb.ConfigEvent_TYPE_UPDATED, Files: []*polarispb.ConfigFile{p}}); err != nil {
				return err
			}
		}
	}
}

type configServer struct{ *fakePolaris }

func (c configServer) Watch(r *polarispb.WatchConfigRequest, s polarispb.Config_WatchServer) error {
	return c.WatchConfig(s, r.GetKey())
}

func (f *fakePolaris) ReportApplied(_ context.Context, r *polarispb.ReportAppliedRequest) (*polarispb.ReportAppliedResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reports = append(f.reports, r)
	return &polarispb.ReportAppliedResponse{}, nil
}

func (f *fakePolaris) reportsOf(rev int64) []*polarispb.ReportAppliedRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*polarispb.ReportAppliedRequest
	for _, r := range f.reports {
		if r.GetRevision() == rev {
			out = append(out, r)
		}
	}
	return out
}

// serve runs f on addr ("" = a new port) until the returned stop is called.
func serve(t *testing.T, addr string, f *fakePolaris) (string, func()) {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	polarispb.RegisterRegistryServer(srv, f)
	polarispb.RegisterConfigServer(srv, configServer{f})
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	var once sync.Once
	stop := func() { once.Do(func() { srv.Stop(); <-done }) }
	t.Cleanup(stop)
	return ln.Addr().String(), stop
}

func inst(addr string) *polarispb.InstanceState {
	return &polarispb.InstanceState{Instance: &polarispb.Instance{Service: "echo", Addr: addr, Kind: "provider"}, Load: &polarispb.Load{Live: 1}}
}

var testKey = &polarispb.ConfigKey{Project: "asf", Group: "default", Service: "atom", Version: "1", File: "atom.toml"}

func cfgFile(rev int64, content string) *polarispb.ConfigFile {
	return &polarispb.ConfigFile{Key: testKey, Revision: rev, Content: []byte(content)}
}

// syncBuf is a log sink read while clients write.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func dialCache(t *testing.T, addr, dir string, log zerolog.Logger) *Client {
	t.Helper()
	c, err := DialWith(addr, Options{CacheDir: dir, Caller: &polarispb.Caller{Addr: "10.0.0.9:1"}, Log: log,
		Backoff: Backoff{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// run starts fn on a goroutine stopped at cleanup.
func run(t *testing.T, fn func(ctx context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = fn(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// snapshots collects what Watch delivers.
type snapshots struct {
	mu   sync.Mutex
	last []string
	n    int
}

func (s *snapshots) fn(snap []*polarispb.InstanceState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	s.last = s.last[:0]
	for _, st := range snap {
		s.last = append(s.last, st.GetInstance().GetAddr())
	}
}

func (s *snapshots) get() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.last, ",")
}

func TestWatchUsesCacheThenCatchesUp(t *testing.T) {
	dir := t.TempDir()
	fake := &fakePolaris{instances: []*polarispb.InstanceState{inst("10.0.0.1:1")}}
	addr, stop := serve(t, "", fake)

	// A first run fills the cache.
	first := &snapshots{}
	c1 := dialCache(t, addr, dir, zerolog.Nop())
	ctx1, cancel1 := context.WithCancel(context.Background())
	done1 := make(chan struct{})
	go func() { defer close(done1); _ = c1.Watch(ctx1, "echo", first.fn) }()
	testpoll.Until(t, 5*time.Second, "the condition", func() bool { return first.get() == "10.0.0.1:1" })
	cancel1()
	<-done1
	stop()

	// polaris is down at start: the cached registry is used.
	logs := &syncBuf{}
	second := &snapshots{}
	c2 := dialCache(t, addr, dir, zerolog.New(logs))
	run(t, func(ctx context.Context) error { return c2.Watch(ctx, "echo", second.fn) })
	testpoll.Until(t, 5*time.Second, "the condition", func() bool { return second.get() == "10.0.0.1:1" })
	if !strings.Contains(logs.String(), "using the cached registry") {
		t.Fatal("cache use not logged")
	}

	// polaris comes back with more instances: the watch catches up.
	fake.mu.Lock()
	fake.instances = append(fake.instances, inst("10.0.0.2:1"))
	fake.mu.Unlock()
	serve(t, addr, fake)
	testpoll.Until(t, 10*time.Second, "the condition", func() bool { return second.get() == "10.0.0.1:1,10.0.0.2:1" })
}

func TestWatchConfigCacheReloadAndReport(t *testing.T) {
	dir := t.TempDir()
	fake := &fakePolaris{files: map[string]*polarispb.ConfigFile{"atom.toml": cfgFile(1, "a=1")}, pushes: make(chan *polarispb.ConfigFile)}
	addr, stop := serve(t, "", fake)

	var mu sync.Mutex
	var reloads []string
	reload := func(f *polarispb.ConfigFile) error {
		mu.Lock()
		defer mu.Unlock()
		reloads = append(reloads, string(f.GetContent()))
		if string(f.GetContent()) == "bad" {
			return os.ErrInvalid
		}
		return nil
	}
	got := func() string { mu.Lock(); defer mu.Unlock(); return strings.Join(reloads, "|") }

	c1 := dialCache(t, addr, dir, zerolog.Nop())
	ctx1, cancel1 := context.WithCancel(context.Background())
	done1 := make(chan struct{})
	go func() { defer close(done1); _ = c1.WatchConfig(ctx1, testKey, false, reload) }()
	testpoll.Until(t, 5*time.Second, "the condition", func() bool { return len(fake.reportsOf(1)) == 1 })
	if r := fake.reportsOf(1)[0]; !r.GetApplied() || r.GetCaller().GetAddr() != "10.0.0.9:1" {
		t.Fatalf("report: %v", r)
	}
	cancel1()
	<-done1
	stop()

	// Down at start: the cached revision is loaded; GetConfig answers from the cache.
	c2 := dialCache(t, addr, dir, zerolog.Nop())
	run(t, func(ctx context.Context) error { return c2.WatchConfig(ctx, testKey, false, reload) })
	testpoll.Until(t, 5*time.Second, "the condition", func() bool { return got() == "a=1|a=1" })
	gctx, gcancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer gcancel()
	if f, err := c2.GetConfig(gctx, testKey); err != nil || string(f.GetContent()) != "a=1" {
		t.Fatalf("GetConfig from cache: %v %v", f, err)
	}

	// Back with the same revision: reported again, not reloaded; then a push and a bad push.
	serve(t, addr, fake)
	testpoll.Until(t, 10*time.Second, "the condition", func() bool { return len(fake.reportsOf(1)) == 2 })
	fake.pushes <- cfgFile(2, "a=2")
	testpoll.Until(t, 5*time.Second, "the condition", func() bool { return len(fake.reportsOf(2)) == 1 })
	fake.pushes <- cfgFile(3, "bad")
	testpoll.Until(t, 5*time.Second, "the condition", func() bool { return len(fake.reportsOf(3)) == 1 })
	if r := fake.reportsOf(3)[0]; r.GetApplied() || r.GetReason() == "" {
		t.Fatalf("failed reload reported as %v", r)
	}
	if g := got(); g != "a=1|a=1|a=2|bad" {
		t.Fatalf("reloads %q", g)
	}
	// The cache keeps the last revision that applied, not the bad one.
	cached := &polarispb.ConfigFile{}
	if !(&diskCache{dir: dir, log: zerolog.Nop()}).load(kindConfig, configName(testKey), cached) || cached.GetRevision() != 2 {
		t.Fatalf("cached revision %d", cached.GetRevision())
	}
}

func TestCorruptCacheIgnored(t *testing.T) {
	dir := t.TempDir()
	good, _ := encodeEntry(kindRegistry, "echo", &polarispb.ListResponse{Instances: []*polarispb.InstanceState{inst("10.0.0.1:1")}}, time.Now())
	bad := bytes.Replace(good, []byte(`"v":1`), []byte(`"v":1,"x":0`), 1)
	bad = bad[:len(bad)-20] // truncated
	if err := os.WriteFile(filepath.Join(dir, cacheName(kindRegistry, "echo")), bad, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, cacheName(kindConfig, configName(testKey))), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Nothing listens on this address.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	_ = ln.Close()
	logs := &syncBuf{}
	c := dialCache(t, addr, dir, zerolog.New(logs))
	s := &snapshots{}
	run(t, func(ctx context.Context) error { return c.Watch(ctx, "echo", s.fn) })
	testpoll.Until(t, 5*time.Second, "the condition", func() bool { return strings.Contains(logs.String(), "polaris cache file ignored") })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := c.GetConfig(ctx, testKey); err == nil {
		t.Fatal("corrupt config cache was used")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n != 0 {
		t.Fatal("corrupt registry cache was delivered")
	}
}

func TestCacheRoundTrip(t *testing.T) {
	f := cfgFile(7, "x=1")
	b, err := encodeEntry(kindConfig, configName(testKey), f, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	got := &polarispb.ConfigFile{}
	name, err := decodeEntry(b, kindConfig, got)
	if err != nil || name != configName(testKey) || !proto.Equal(got, f) {
		t.Fatalf("round trip: %v %v", got, err)
	}
	if _, err := decodeEntry(b, kindRegistry, got); err == nil {
		t.Fatal("wrong kind accepted")
	}
}

func FuzzDecodeEntry(f *testing.F) {
	good, _ := encodeEntry(kindConfig, "n", cfgFile(1, "a"), time.Unix(0, 0))
	f.Add(good)
	f.Add([]byte(`{"v":1,"kind":"config","payload":"","sum":""}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m := &polarispb.ConfigFile{}
		if _, err := decodeEntry(b, kindConfig, m); err != nil {
			return
		}
		// Whatever decodes re-encodes to an entry that decodes to the same message.
		again, err := encodeEntry(kindConfig, "n", m, time.Unix(0, 0))
		if err != nil {
			t.Fatal(err)
		}
		m2 := &polarispb.ConfigFile{}
		if _, err := decodeEntry(again, kindConfig, m2); err != nil || !proto.Equal(m, m2) {
			t.Fatalf("re-decode: %v", err)
		}
	})
}
