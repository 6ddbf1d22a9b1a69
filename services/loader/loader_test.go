package loader_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/grpcx"
	loaderpb "github.com/athenaserving/asf/libs/proto/loader/v1"
	polarispb "github.com/athenaserving/asf/libs/proto/polaris/v1"
	"github.com/athenaserving/asf/libs/testpoll"
	"github.com/athenaserving/asf/services/loader"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testConfig(licence int) loader.Config {
	cfg := loader.DefaultConfig()
	cfg.GRPCListen, cfg.AdminListen, cfg.PolarisAddr = "127.0.0.1:0", "127.0.0.1:0", ""
	cfg.Licence, cfg.WarmUp, cfg.DrainTimeout = licence, 0, 5*time.Second
	return cfg
}

// start runs a loader and returns it with a Loader client; both are stopped at cleanup.
func start(t *testing.T, cfg loader.Config) (*loader.Server, loaderpb.LoaderClient) {
	t.Helper()
	s, err := loader.New(cfg, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	t.Cleanup(func() {
		if err := s.Shutdown(context.Background()); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cc, err := grpcx.Dial(s.GRPCAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return s, loaderpb.NewLoaderClient(cc)
}

func input(sync int32, st loaderpb.Status, data string) *loaderpb.LoaderInput {
	return &loaderpb.LoaderInput{
		ServiceId: "echo", Headers: map[string]string{"sid": "sid-test"}, SyncId: sync, Status: st,
		Pl: []*loaderpb.Payload{{Meta: &loaderpb.MetaDesc{Name: "text", Attribute: map[string]string{"encoding": "utf8"}}, Data: []byte(data)}},
	}
}

// session runs a whole session (BEGIN, CONTINUE, END) and returns its outputs.
func session(ctx context.Context, c loaderpb.LoaderClient, sid string) ([]*loaderpb.LoaderOutput, error) {
	st, err := c.Session(ctx)
	if err != nil {
		return nil, err
	}
	for i, s := range []loaderpb.Status{loaderpb.Status_STATUS_BEGIN, loaderpb.Status_STATUS_CONTINUE, loaderpb.Status_STATUS_END} {
		in := input(int32(i), s, string(rune('a'+i)))
		in.Headers["sid"] = sid
		if err := st.Send(in); err != nil {
			break // the server ended the stream; Recv tells why
		}
	}
	_ = st.CloseSend()
	var outs []*loaderpb.LoaderOutput
	for {
		out, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return outs, nil
		}
		if err != nil {
			return outs, grpcx.FromStatus(err)
		}
		outs = append(outs, out)
	}
}

func TestOnceEcho(t *testing.T) {
	_, c := start(t, testConfig(2))
	in := input(0, loaderpb.Status_STATUS_ONCE, "hello")
	in.Expect = []*loaderpb.MetaDesc{{Name: "result", Attribute: map[string]string{"format": "plain"}}}
	out, err := c.Once(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	if out.GetCode() != 0 || out.GetStatus() != loaderpb.Status_STATUS_ONCE || len(out.GetPl()) != 1 {
		t.Fatalf("output = %v", out)
	}
	pl := out.GetPl()[0]
	if pl.GetMeta().GetName() != "result" || string(pl.GetData()) != "hello" ||
		pl.GetMeta().GetAttribute()["encoding"] != "utf8" || pl.GetMeta().GetAttribute()["format"] != "plain" {
		t.Fatalf("payload = %v", pl)
	}
	if out.GetLoaderNs() <= 0 || out.GetLoaderNs() < out.GetEngineNs() {
		t.Fatalf("timing loader_ns=%d engine_ns=%d", out.GetLoaderNs(), out.GetEngineNs())
	}
}

func TestSessionEcho(t *testing.T) {
	_, c := start(t, testConfig(1))
	outs, err := session(t.Context(), c, "s1")
	if err != nil {
		t.Fatal(err)
	}
	if len(outs) != 3 {
		t.Fatalf("got %d outputs", len(outs))
	}
	for i, o := range outs {
		if int(o.GetStatus()) != i || string(o.GetPl()[0].GetData()) != string(rune('a'+i)) || o.GetServiceId() != "echo" || o.GetLoaderNs() <= 0 {
			t.Fatalf("output %d = %v", i, o)
		}
	}
	// The slot is free as soon as the stream ended: a second session fits in licence 1.
	if _, err := session(t.Context(), c, "s2"); err != nil {
		t.Fatalf("second session: %v", err)
	}
}

func TestLicenceFullIsStatus10110(t *testing.T) {
	_, c := start(t, testConfig(1))
	st, err := c.Session(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(input(0, loaderpb.Status_STATUS_BEGIN, "x")); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); err != nil { // the slot is taken once a result came back
		t.Fatal(err)
	}
	_, err = session(t.Context(), c, "other")
	if aserr.CodeOf(err) != 10110 {
		t.Fatalf("second session: %v, want 10110", err)
	}
	_, err = c.Once(t.Context(), input(0, loaderpb.Status_STATUS_ONCE, "x"))
	if status.Code(err) != codes.ResourceExhausted || aserr.CodeOf(grpcx.FromStatus(err)) != 10110 {
		t.Fatalf("once: %v, want ResourceExhausted/10110", err)
	}
}

func TestCancelMidSessionFreesSlot(t *testing.T) {
	_, c := start(t, testConfig(1))
	ctx, cancel := context.WithCancel(t.Context())
	st, err := c.Session(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(input(0, loaderpb.Status_STATUS_BEGIN, "x")); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); err != nil {
		t.Fatal(err)
	}
	cancel()
	var last error
	testpoll.Until(t, 3*time.Second, "the condition", func() bool {
		_, last = session(t.Context(), c, "after-cancel")
		return last == nil
	})
}

func TestSessionErrorEndsStreamWithCode(t *testing.T) {
	_, c := start(t, testConfig(1))
	st, err := c.Session(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	_ = st.Send(input(0, loaderpb.Status_STATUS_BEGIN, "x"))
	_ = st.Send(input(0, loaderpb.Status_STATUS_CONTINUE, "dup"))
	for {
		_, err = st.Recv()
		if err != nil {
			break
		}
	}
	if aserr.CodeOf(grpcx.FromStatus(err)) != 10009 {
		t.Fatalf("duplicate sync_id: %v, want 10009", err)
	}
}

func TestAdminEndpoints(t *testing.T) {
	s, c := start(t, testConfig(1))
	if _, err := c.Once(t.Context(), input(0, loaderpb.Status_STATUS_ONCE, "x")); err != nil {
		t.Fatal(err)
	}
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + s.AdminAddr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/readyz"); code != 200 {
		t.Fatalf("/readyz = %d", code)
	}
	_, body := get("/metrics")
	for _, m := range []string{"asf_loader_sessions_active", `asf_loader_once_requests_total{code="0"} 1`, "asf_loader_engine_call_seconds", "asf_loader_licence_utilisation_ratio 0"} {
		if !strings.Contains(body, m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
}

func TestShutdownRefusesThenDrains(t *testing.T) {
	cfg := testConfig(2)
	s, c := start(t, cfg)
	st, err := c.Session(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	_ = st.Send(input(0, loaderpb.Status_STATUS_BEGIN, "x"))
	if _, err := st.Recv(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	testpoll.Until(t, 3*time.Second, "the condition", func() bool {
		_, err := c.Once(t.Context(), input(0, loaderpb.Status_STATUS_ONCE, "x"))
		return aserr.CodeOf(grpcx.FromStatus(err)) == 10110
	})
	// The running session still completes.
	if err := st.Send(input(1, loaderpb.Status_STATUS_END, "y")); err != nil {
		t.Fatal(err)
	}
	out, err := st.Recv()
	if err != nil || out.GetStatus() != loaderpb.Status_STATUS_END {
		t.Fatalf("END output: %v, %v", out, err)
	}
	if _, err := st.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("after END: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// fakePolaris records what a loader tells the registry.
type fakePolaris struct {
	polarispb.UnimplementedRegistryServer
	mu     sync.Mutex
	inst   *polarispb.Instance
	known  bool
	loads  []*polarispb.Load
	deregs int
}

func (f *fakePolaris) Register(_ context.Context, r *polarispb.RegisterRequest) (*polarispb.RegisterResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inst, f.known = r.GetInstance(), true
	f.loads = append(f.loads, r.GetLoad())
	return &polarispb.RegisterResponse{}, nil
}

func (f *fakePolaris) Heartbeat(_ context.Context, r *polarispb.HeartbeatRequest) (*polarispb.HeartbeatResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.loads = append(f.loads, r.GetLoad())
	return &polarispb.HeartbeatResponse{Known: f.known}, nil
}

func (f *fakePolaris) Deregister(context.Context, *polarispb.DeregisterRequest) (*polarispb.DeregisterResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deregs++
	f.known = false
	return &polarispb.DeregisterResponse{}, nil
}

func (f *fakePolaris) last() (*polarispb.Load, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.loads) == 0 {
		return nil, f.deregs
	}
	return f.loads[len(f.loads)-1], f.deregs
}

func runPolaris(t *testing.T) (*fakePolaris, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakePolaris{}
	srv := grpc.NewServer()
	polarispb.RegisterRegistryServer(srv, f)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return f, ln.Addr().String()
}

func TestRegistersHeartbeatsOnChangeAndDeregisters(t *testing.T) {
	f, addr := runPolaris(t)
	cfg := testConfig(2)
	cfg.PolarisAddr, cfg.Service = addr, "echo-reg"
	cfg.HeartbeatInterval = time.Hour // every heartbeat below is caused by a licence change
	s, c := start(t, cfg)
	f.mu.Lock()
	inst := f.inst
	f.mu.Unlock()
	if inst.GetService() != "echo-reg" || inst.GetAddr() != s.GRPCAddr() || inst.GetKind() != "provider" {
		t.Fatalf("registered %v, loader at %s", inst, s.GRPCAddr())
	}
	if l, _ := f.last(); l.GetTotal() != 2 || l.GetIdle() != 2 || l.GetLive() != 1 {
		t.Fatalf("registered load %v", l)
	}
	st, err := c.Session(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	_ = st.Send(input(0, loaderpb.Status_STATUS_BEGIN, "x"))
	if _, err := st.Recv(); err != nil {
		t.Fatal(err)
	}
	testpoll.Until(t, 3*time.Second, "the condition", func() bool { l, _ := f.last(); return l.GetIdle() == 1 })
	_ = st.Send(input(1, loaderpb.Status_STATUS_END, "y"))
	for {
		if _, err := st.Recv(); err != nil {
			break
		}
	}
	testpoll.Until(t, 3*time.Second, "the condition", func() bool { l, _ := f.last(); return l.GetIdle() == 2 })
	if err := s.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if l, deregs := f.last(); l.GetLive() != 0 || deregs != 1 {
		t.Fatalf("after shutdown: last load %v, deregs %d", l, deregs)
	}
}

func TestKillDoesNotDeregister(t *testing.T) {
	f, addr := runPolaris(t)
	cfg := testConfig(1)
	cfg.PolarisAddr = addr
	s, c := start(t, cfg)
	s.Kill()
	if s.Ready() {
		t.Fatal("ready after kill")
	}
	if _, err := c.Once(t.Context(), input(0, loaderpb.Status_STATUS_ONCE, "x")); status.Code(err) != codes.Unavailable {
		t.Fatalf("once after kill: %v, want Unavailable", err)
	}
	if l, deregs := f.last(); deregs != 0 || l.GetLive() != 1 {
		t.Fatalf("kill reported offline: last load %v, deregs %d", l, deregs)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for name, mut := range map[string]func(*loader.Config){
		"licence":   func(c *loader.Config) { c.Licence = 0 },
		"engine":    func(c *loader.Config) { c.Engine = "nope" },
		"advertise": func(c *loader.Config) { c.Advertise = "no-port" },
		"listen":    func(c *loader.Config) { c.GRPCListen = "256.0.0.1:x" },
	} {
		cfg := testConfig(1)
		mut(&cfg)
		if s, err := loader.New(cfg, zerolog.Nop(), nil); err == nil {
			_ = s.Shutdown(context.Background())
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestShutdownWithoutStart(t *testing.T) {
	s, err := loader.New(testConfig(1), zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := s.GRPCAddr()
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr) // the listener was released
	if err != nil {
		t.Fatalf("listener not closed: %v", err)
	}
	_ = ln.Close()
}

func TestAdvertiseAddr(t *testing.T) {
	for bound, want := range map[string]string{
		"0.0.0.0:5090":   "127.0.0.1:5090",
		"[::]:5090":      "127.0.0.1:5090",
		":5090":          "127.0.0.1:5090",
		"10.1.2.3:5090":  "10.1.2.3:5090",
		"[fe80::1]:5090": "[fe80::1]:5090",
	} {
		if got, err := loader.AdvertiseAddr("", bound); err != nil || got != want {
			t.Errorf("AdvertiseAddr(%q) = %q, %v; want %q", bound, got, err, want)
		}
	}
	if got, _ := loader.AdvertiseAddr("loader-1:5090", "0.0.0.0:1"); got != "loader-1:5090" {
		t.Errorf("explicit advertise replaced: %q", got)
	}
}

func FuzzAdvertiseAddr(f *testing.F) {
	f.Add("0.0.0.0:5090")
	f.Add("[::]:1")
	f.Add("host")
	f.Fuzz(func(t *testing.T, bound string) {
		got, err := loader.AdvertiseAddr("", bound)
		if err != nil {
			return
		}
		host, port, err := net.SplitHostPort(got)
		if err != nil {
			t.Fatalf("AdvertiseAddr(%q) = %q: not host:port: %v", bound, got, err)
		}
		if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
			t.Fatalf("AdvertiseAddr(%q) = %q: unspecified host", bound, got)
		}
		if _, bport, _ := net.SplitHostPort(bound); bport != port {
			t.Fatalf("AdvertiseAddr(%q) = %q: port changed", bound, got)
		}
	})
}
