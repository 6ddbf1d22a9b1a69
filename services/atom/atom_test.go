package atom_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/grpcx"
	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
	lbpb "github.com/athenaserving/asf/libs/proto/lb/v1"
	loaderpb "github.com/athenaserving/asf/libs/proto/loader/v1"
	"github.com/athenaserving/asf/services/atom"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// serve runs a gRPC server on 127.0.0.1:0 until the test ends.
func serve(t *testing.T, register func(*grpc.Server)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	register(s)
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(ln) }()
	t.Cleanup(func() { s.Stop(); <-done })
	return ln.Addr().String()
}

type fakeLB struct {
	lbpb.UnimplementedLbServer
	mu    sync.Mutex
	addrs map[string][]string
}

func (l *fakeLB) Pick(_ context.Context, r *lbpb.PickRequest) (*lbpb.PickResponse, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	all, ok := l.addrs[r.Service]
	if !ok {
		return nil, grpcx.ToStatus(aserr.ErrNotFound)
	}
	var out []string
	for _, a := range all {
		if !slices.Contains(r.Exclude, a) && len(out) < int(r.N) {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return nil, grpcx.ToStatus(aserr.ErrNoEngine)
	}
	return &lbpb.PickResponse{Addrs: out}, nil
}

// fakeLoader echoes inputs; full refuses every call with 10110; dieAfterFirst ends a
// session with Unavailable after its first output; sessionEnded receives the session
// context's error when a session handler returns.
type fakeLoader struct {
	loaderpb.UnimplementedLoaderServer
	full          bool
	dieAfterFirst bool
	hang          bool
	mu            sync.Mutex
	onces         int
	sessionEnded  chan error
	gotFrame      chan struct{}
}

func (l *fakeLoader) Once(_ context.Context, in *loaderpb.LoaderInput) (*loaderpb.LoaderOutput, error) {
	l.mu.Lock()
	l.onces++
	l.mu.Unlock()
	if l.full {
		return nil, grpcx.ToStatus(aserr.ErrLicenceFull)
	}
	if in.Headers["sid"] == "" || in.State != loaderpb.State_STATE_ONCE {
		return nil, grpcx.ToStatus(aserr.ErrBadRequest)
	}
	return &loaderpb.LoaderOutput{Status: loaderpb.Status_STATUS_ONCE, Pl: in.Pl, EngineNs: 1000, LoaderNs: 2000}, nil
}

func (l *fakeLoader) Session(ss grpc.BidiStreamingServer[loaderpb.LoaderInput, loaderpb.LoaderOutput]) error {
	defer func() {
		if l.sessionEnded != nil {
			<-ss.Context().Done()
			l.sessionEnded <- ss.Context().Err()
		}
	}()
	for i := 0; ; i++ {
		in, err := ss.Recv()
		if err != nil {
			return err
		}
		if l.gotFrame != nil {
			select {
			case l.gotFrame <- struct{}{}:
			default:
			}
		}
		if l.full {
			return grpcx.ToStatus(aserr.ErrLicenceFull)
		}
		if l.hang {
			continue
		}
		if l.dieAfterFirst && i == 1 {
			return status.Error(codes.Unavailable, "engine worker gone")
		}
		st := loaderpb.Status_STATUS_CONTINUE
		if in.Status == loaderpb.Status_STATUS_END {
			st = loaderpb.Status_STATUS_END
		}
		if err := ss.Send(&loaderpb.LoaderOutput{Status: st, Pl: in.Pl, EngineNs: 10, LoaderNs: 20}); err != nil {
			return err
		}
		if st == loaderpb.Status_STATUS_END {
			return nil
		}
	}
}

type suite struct {
	srv    *atom.Server
	client atompb.AtomClient
	lb     *fakeLB
}

func start(t *testing.T, loaders map[string]*fakeLoader, svc map[string][]string) *suite {
	t.Helper()
	lb := &fakeLB{addrs: map[string][]string{}}
	names := map[string]string{}
	for name, l := range loaders {
		names[name] = serve(t, func(s *grpc.Server) { loaderpb.RegisterLoaderServer(s, l) })
	}
	for service, ls := range svc {
		for _, name := range ls {
			lb.addrs[service] = append(lb.addrs[service], names[name])
		}
	}
	lbAddr := serve(t, func(s *grpc.Server) { lbpb.RegisterLbServer(s, lb) })

	cfg := atom.DefaultConfig()
	cfg.GRPCListen, cfg.AdminListen, cfg.LBAddr = "127.0.0.1:0", "127.0.0.1:0", lbAddr
	srv, err := atom.New(cfg, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	cc, err := grpcx.Dial(srv.GRPCAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		if err := srv.Shutdown(ctx); err != nil { // idempotent
			t.Error(err)
		}
	})
	return &suite{srv: srv, client: atompb.NewAtomClient(cc), lb: lb}
}

func frame(status int32, text string) *atompb.Frame {
	return &atompb.Frame{Capability: "echo", Sid: "sid-42", Status: status,
		Header:  map[string]string{"app_id": "app", "uid": "u"},
		Accepts: map[string]*atompb.Accept{"result": {Attributes: map[string]string{"format": "plain"}}},
		Payload: []*atompb.Item{{Name: "input", DataType: "text", Data: []byte(text), Attributes: map[string]string{"encoding": "utf8"}}}}
}

func TestCallRetriesAndRendersResult(t *testing.T) {
	full := &fakeLoader{full: true}
	s := start(t, map[string]*fakeLoader{"full": full, "ok": {}}, map[string][]string{"echo": {"full", "ok"}})
	res, err := s.client.Call(t.Context(), frame(3, "hello"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Code != 0 || res.Sid != "sid-42" || res.Status != 3 || len(res.Payload) != 1 {
		t.Fatalf("result = %v", res)
	}
	p := res.Payload[0]
	if p.Name != "input" || p.DataType != "text" || string(p.Data) != "hello" || p.Attributes["encoding"] != "utf8" {
		t.Fatalf("payload = %v", p)
	}
	if res.Timing["atom_ns"] <= 0 || res.Timing["loader_ns"] != 2000 || res.Timing["engine_ns"] != 1000 {
		t.Fatalf("timing = %v", res.Timing)
	}
	full.mu.Lock()
	onces := full.onces
	full.mu.Unlock()
	if onces != 1 {
		t.Fatalf("full loader called %d times", onces)
	}

	body := scrape(t, s.srv.AdminAddr())
	for _, want := range []string{`asf_atom_requests_total{capability="echo",code="0"} 1`, `asf_atom_retries_total{capability="echo",code="10110"} 1`, `asf_atom_hop_seconds_count{hop="lb"}`} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestCallErrorsAreResults(t *testing.T) {
	s := start(t, map[string]*fakeLoader{"full": {full: true}}, map[string][]string{"echo": {"full"}})
	for _, tc := range []struct {
		capability string
		code       int32
	}{{"nope", 10404}, {"echo", 10110}} {
		f := frame(3, "x")
		f.Capability = tc.capability
		res, err := s.client.Call(t.Context(), f)
		if err != nil {
			t.Fatalf("%s: grpc error %v", tc.capability, err)
		}
		if res.Code != tc.code || res.Message == "" || res.Sid != "sid-42" {
			t.Fatalf("%s: result = %v", tc.capability, res)
		}
	}
}

func TestStreamSession(t *testing.T) {
	s := start(t, map[string]*fakeLoader{"ok": {}}, map[string][]string{"echo": {"ok"}})
	st, err := s.client.Stream(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for i, status := range []int32{0, 1, 2} {
		if err := st.Send(frame(status, "part")); err != nil {
			t.Fatal(err)
		}
		res, err := st.Recv()
		if err != nil {
			t.Fatal(err)
		}
		want := int32(1)
		if i == 2 {
			want = 2
		}
		if res.Code != 0 || res.Status != want || res.Sid != "sid-42" || res.Timing["atom_ns"] <= 0 {
			t.Fatalf("result %d = %v", i, res)
		}
	}
	if _, err := st.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("stream did not end after status 2: %v", err)
	}
}

func TestStreamReopensOnRefusal(t *testing.T) {
	s := start(t, map[string]*fakeLoader{"full": {full: true}, "ok": {}}, map[string][]string{"echo": {"full", "ok"}})
	st, err := s.client.Stream(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []*atompb.Frame{frame(0, "a"), frame(1, "b"), frame(2, "c")} {
		if err := st.Send(f); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for {
		res, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil || res.Code != 0 {
			t.Fatalf("result %v, %v", res, err)
		}
		got = append(got, string(res.Payload[0].Data))
	}
	if !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("results %v, want every frame answered in order once", got)
	}
	if body := scrape(t, s.srv.AdminAddr()); !strings.Contains(body, `asf_atom_sessions_total{capability="echo",code="0"} 1`) {
		t.Error("session not counted")
	}
}

func TestStreamLoaderDeathIsErrorResult(t *testing.T) {
	s := start(t, map[string]*fakeLoader{"dying": {dieAfterFirst: true}}, map[string][]string{"echo": {"dying"}})
	st, err := s.client.Stream(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	_ = st.Send(frame(0, "a"))
	if res, err := st.Recv(); err != nil || res.Code != 0 {
		t.Fatalf("first result %v, %v", res, err)
	}
	_ = st.Send(frame(1, "b"))
	res, err := st.Recv()
	if err != nil || res.Code != 10222 || res.Message == "" {
		t.Fatalf("error result %v, %v", res, err)
	}
	if _, err := st.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("stream did not end after the error result: %v", err)
	}
}

func TestStreamCancelAbortsLoaderSession(t *testing.T) {
	hang := &fakeLoader{hang: true, sessionEnded: make(chan error, 1), gotFrame: make(chan struct{}, 1)}
	s := start(t, map[string]*fakeLoader{"hang": hang}, map[string][]string{"echo": {"hang"}})
	ctx, cancel := context.WithCancel(t.Context())
	st, err := s.client.Stream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = st.Send(frame(0, "a"))
	select {
	case <-hang.gotFrame:
	case <-time.After(3 * time.Second):
		t.Fatal("loader session never got the first frame")
	}
	cancel()
	select {
	case err := <-hang.sessionEnded:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("loader session ended with %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("loader session not cancelled after the client aborted")
	}
}

func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestConfigAndReadiness(t *testing.T) {
	cfg := atom.DefaultConfig()
	cfg.OnceTimeout = 0
	if _, err := atom.New(cfg, zerolog.Nop(), nil); err == nil {
		t.Fatal("zero once-timeout accepted")
	}
	cfg = atom.DefaultConfig()
	cfg.GRPCListen, cfg.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
	srv, err := atom.New(cfg, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if srv.Ready() {
		t.Fatal("ready before Start")
	}
	if err := srv.Shutdown(t.Context()); err != nil { // shut down without ever starting
		t.Fatal(err)
	}
	if ln, err := net.Listen("tcp", srv.GRPCAddr()); err != nil {
		t.Fatalf("grpc listener not released: %v", err)
	} else {
		_ = ln.Close()
	}
}
