package atom_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
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
	polarispb "github.com/athenaserving/asf/libs/proto/polaris/v1"
	"github.com/athenaserving/asf/libs/testpoll"
	"github.com/athenaserving/asf/services/atom"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/peer"
)

// slotLoader is a loader with max licence slots: a session takes one on its first input
// and frees it when its stream ends; once requests take one for the call. It echoes
// inputs and records, per sid, how many frames came and over which connections (one
// per atom replica).
type slotLoader struct {
	loaderpb.UnimplementedLoaderServer
	max  int
	once func(in *loaderpb.LoaderInput) (*loaderpb.LoaderOutput, error)

	mu     sync.Mutex
	busy   int
	onces  int
	frames map[string]int
	peers  map[string][]string
}

func newSlotLoader(max int) *slotLoader {
	return &slotLoader{max: max, frames: map[string]int{}, peers: map[string][]string{}}
}

func (l *slotLoader) acquire() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.busy >= l.max {
		return aserr.ErrLicenceFull
	}
	l.busy++
	return nil
}

func (l *slotLoader) release() {
	l.mu.Lock()
	l.busy--
	l.mu.Unlock()
}

func (l *slotLoader) state() (busy int, frames map[string]int, peers map[string][]string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, p := map[string]int{}, map[string][]string{}
	for k, v := range l.frames {
		f[k] = v
	}
	for k, v := range l.peers {
		p[k] = slices.Clone(v)
	}
	return l.busy, f, p
}

func (l *slotLoader) record(ctx context.Context, in *loaderpb.LoaderInput) {
	sid := in.Headers["sid"]
	from := "?"
	if p, ok := peer.FromContext(ctx); ok {
		from = p.Addr.String()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.frames[sid]++
	if !slices.Contains(l.peers[sid], from) {
		l.peers[sid] = append(l.peers[sid], from)
	}
}

func (l *slotLoader) Once(ctx context.Context, in *loaderpb.LoaderInput) (*loaderpb.LoaderOutput, error) {
	if err := l.acquire(); err != nil {
		return nil, grpcx.ToStatus(err)
	}
	defer l.release()
	l.mu.Lock()
	l.onces++
	l.mu.Unlock()
	l.record(ctx, in)
	if l.once != nil {
		out, err := l.once(in)
		return out, grpcx.ToStatus(err)
	}
	return &loaderpb.LoaderOutput{Status: loaderpb.Status_STATUS_ONCE, Pl: in.Pl}, nil
}

func (l *slotLoader) Session(ss grpc.BidiStreamingServer[loaderpb.LoaderInput, loaderpb.LoaderOutput]) error {
	first := true
	for {
		in, err := ss.Recv()
		if err != nil {
			return err
		}
		if first {
			if err := l.acquire(); err != nil {
				return grpcx.ToStatus(err)
			}
			defer l.release()
			first = false
		}
		l.record(ss.Context(), in)
		st := loaderpb.Status_STATUS_CONTINUE
		if in.Status == loaderpb.Status_STATUS_END {
			st = loaderpb.Status_STATUS_END
		}
		if err := ss.Send(&loaderpb.LoaderOutput{Status: st, Pl: in.Pl}); err != nil {
			return err
		}
		if st == loaderpb.Status_STATUS_END {
			return nil
		}
	}
}

// serveStoppable runs a gRPC server on 127.0.0.1:0 and returns its address and a stop
// that kills it (connections closed, running calls failed) as a dying process would.
func serveStoppable(t *testing.T, register func(*grpc.Server)) (string, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	register(s)
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(ln) }()
	var once sync.Once
	stop := func() { once.Do(func() { s.Stop(); <-done }) }
	t.Cleanup(stop)
	return ln.Addr().String(), stop
}

func startAtom(t *testing.T, cfg atom.Config) *atom.Server {
	t.Helper()
	cfg.GRPCListen, cfg.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	srv, err := atom.New(cfg, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	return srv
}

func dialAtom(t *testing.T, target string) atompb.AtomClient {
	t.Helper()
	cc, err := grpcx.Dial(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return atompb.NewAtomClient(cc)
}

// lbFor serves a fake lbclient listing addrs, in order, for service "echo".
func lbFor(t *testing.T, addrs ...string) string {
	t.Helper()
	lb := &fakeLB{addrs: map[string][]string{"echo": addrs}}
	return serve(t, func(s *grpc.Server) { lbpb.RegisterLbServer(s, lb) })
}

func sessionFrame(sid string, status int32, text string) *atompb.Frame {
	f := frame(status, text)
	f.Sid = sid
	return f
}

// runSession sends n frames (BEGIN, CONTINUE..., END) and reads every result in order.
func runSession(t *testing.T, c atompb.AtomClient, sid string, n int) {
	t.Helper()
	st, err := c.Stream(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		status := int32(1)
		switch {
		case i == 0:
			status = 0
		case i == n-1:
			status = 2
		}
		if err := st.Send(sessionFrame(sid, status, fmt.Sprint("f", i))); err != nil {
			t.Fatal(err)
		}
		res, err := st.Recv()
		if err != nil || res.Code != 0 || string(res.Payload[0].Data) != fmt.Sprint("f", i) {
			t.Fatalf("session %s frame %d: %v, %v", sid, i, res, err)
		}
	}
	if _, err := st.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("session %s did not end: %v", sid, err)
	}
}

func TestOnceRetriesDeadLoader(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	_ = ln.Close()
	ok := newSlotLoader(1)
	okAddr, _ := serveStoppable(t, func(s *grpc.Server) { loaderpb.RegisterLoaderServer(s, ok) })
	cfg := atom.DefaultConfig()
	cfg.LBAddr = lbFor(t, dead, okAddr)
	srv := startAtom(t, cfg)
	res, err := dialAtom(t, srv.GRPCAddr()).Call(t.Context(), frame(3, "hi"))
	if err != nil || res.Code != 0 || string(res.Payload[0].Data) != "hi" {
		t.Fatalf("result %v, %v", res, err)
	}
	if body := scrape(t, srv.AdminAddr()); !strings.Contains(body, `asf_atom_retries_total{capability="echo",code="10222"} 1`) {
		t.Error("retry on the dead loader not counted")
	}
}

func TestSessionPinnedAcross100Frames(t *testing.T) {
	a, b := newSlotLoader(4), newSlotLoader(4)
	aAddr, _ := serveStoppable(t, func(s *grpc.Server) { loaderpb.RegisterLoaderServer(s, a) })
	bAddr, _ := serveStoppable(t, func(s *grpc.Server) { loaderpb.RegisterLoaderServer(s, b) })
	cfg := atom.DefaultConfig()
	cfg.LBAddr = lbFor(t, aAddr, bAddr)
	c := dialAtom(t, startAtom(t, cfg).GRPCAddr())
	runSession(t, c, "pinned", 100)
	_, fa, _ := a.state()
	_, fb, _ := b.state()
	if fa["pinned"]+fb["pinned"] != 100 || (fa["pinned"] != 0 && fb["pinned"] != 0) {
		t.Fatalf("frames split a=%d b=%d, want all 100 on one loader", fa["pinned"], fb["pinned"])
	}
}

func TestClientAbortFreesSlot(t *testing.T) {
	l := newSlotLoader(1)
	addr, _ := serveStoppable(t, func(s *grpc.Server) { loaderpb.RegisterLoaderServer(s, l) })
	cfg := atom.DefaultConfig()
	cfg.LBAddr = lbFor(t, addr)
	c := dialAtom(t, startAtom(t, cfg).GRPCAddr())

	ctx, cancel := context.WithCancel(t.Context())
	st, err := c.Stream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = st.Send(sessionFrame("aborted", 0, "a"))
	if res, err := st.Recv(); err != nil || res.Code != 0 {
		t.Fatalf("first result %v, %v", res, err)
	}
	if busy, _, _ := l.state(); busy != 1 {
		t.Fatalf("busy = %d during the session", busy)
	}
	cancel() // the client goes away without END
	testpoll.Until(t, 2*time.Second, "the condition", func() bool { busy, _, _ := l.state(); return busy == 0 })
	runSession(t, c, "next", 3) // the single slot serves the next session
}

func TestLoaderKilledMidSession(t *testing.T) {
	a, b := newSlotLoader(4), newSlotLoader(4)
	aAddr, killA := serveStoppable(t, func(s *grpc.Server) { loaderpb.RegisterLoaderServer(s, a) })
	bAddr, _ := serveStoppable(t, func(s *grpc.Server) { loaderpb.RegisterLoaderServer(s, b) })
	cfg := atom.DefaultConfig()
	cfg.LBAddr = lbFor(t, aAddr, bAddr) // lbclient keeps listing a first: it has not noticed yet
	c := dialAtom(t, startAtom(t, cfg).GRPCAddr())

	st, err := c.Stream(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	_ = st.Send(sessionFrame("victim", 0, "a"))
	if res, err := st.Recv(); err != nil || res.Code != 0 {
		t.Fatalf("first result %v, %v", res, err)
	}
	if _, fa, _ := a.state(); fa["victim"] != 1 {
		t.Fatal("session not on loader a")
	}
	killed := time.Now()
	killA()
	res, err := st.Recv()
	if err != nil || res.Code != 10222 || res.Status != 2 {
		t.Fatalf("error result %v, %v", res, err)
	}
	if took := time.Since(killed); took > time.Second {
		t.Fatalf("client told after %v, want under 1 s", took)
	}
	runSession(t, c, "after", 3)
	if _, fb, _ := b.state(); fb["after"] != 3 {
		t.Fatal("the next session did not go to the live loader")
	}
}

func TestTwoAtomReplicas(t *testing.T) {
	l := newSlotLoader(8)
	addr, _ := serveStoppable(t, func(s *grpc.Server) { loaderpb.RegisterLoaderServer(s, l) })
	cfg := atom.DefaultConfig()
	cfg.LBAddr = lbFor(t, addr)
	r1, r2 := startAtom(t, cfg), startAtom(t, cfg)
	c := dialAtom(t, r1.GRPCAddr()+","+r2.GRPCAddr())

	// Round-robin reaches a replica once its connection is ready: run sessions until
	// both served some (bounded), then a few more.
	n := 0
	both := func() bool {
		_, _, peers := l.state()
		seen := map[string]bool{}
		for _, p := range peers {
			for _, a := range p {
				seen[a] = true
			}
		}
		return len(seen) == 2
	}
	for ; n < 40 && (!both() || n < 6); n++ {
		runSession(t, c, fmt.Sprint("s", n), 5)
	}
	if !both() {
		t.Fatalf("%d sessions all went through one replica", n)
	}
	_, frames, peers := l.state()
	for sid, p := range peers {
		if len(p) != 1 || frames[sid] != 5 {
			t.Fatalf("session %s: %d frames over %d replicas, want 5 over 1", sid, frames[sid], len(p))
		}
	}
	for _, srv := range []*atom.Server{r1, r2} {
		if !strings.Contains(scrape(t, srv.AdminAddr()), `asf_atom_sessions_total{capability="echo",code="0"}`) {
			t.Errorf("replica %s served no session", srv.GRPCAddr())
		}
	}
}

// fakePolaris serves the config watch (one snapshot of schema files) and the registry
// (recording registrations) of polaris.
type fakePolaris struct {
	polarispb.UnimplementedConfigServer
	files map[string]string
	reg   fakeRegistry
}

// fakeRegistry is fakePolaris's registry service (a type of its own: both services have Watch).
type fakeRegistry struct {
	polarispb.UnimplementedRegistryServer

	mu         sync.Mutex
	registered map[string]bool // addr → registered now (as provider "atom")
	consumers  map[string]bool // service → registered now as a consumer
}

func (p *fakePolaris) Watch(req *polarispb.WatchConfigRequest, ss grpc.ServerStreamingServer[polarispb.ConfigEvent]) error {
	ev := &polarispb.ConfigEvent{Type: polarispb.ConfigEvent_TYPE_SNAPSHOT}
	for name, content := range p.files {
		k := &polarispb.ConfigKey{Project: req.Key.Project, Group: req.Key.Group, Service: req.Key.Service, Version: req.Key.Version, File: name}
		if !strings.HasPrefix(name, req.Key.File) || req.Key.Service != "capabilities" {
			continue
		}
		ev.Files = append(ev.Files, &polarispb.ConfigFile{Key: k, Content: []byte(content), Revision: 1})
	}
	if err := ss.Send(ev); err != nil {
		return err
	}
	<-ss.Context().Done()
	return nil
}

func (p *fakePolaris) ReportApplied(context.Context, *polarispb.ReportAppliedRequest) (*polarispb.ReportAppliedResponse, error) {
	return &polarispb.ReportAppliedResponse{}, nil
}

func (p *fakeRegistry) Register(_ context.Context, r *polarispb.RegisterRequest) (*polarispb.RegisterResponse, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r.Instance.Service == "atom" && r.Instance.Kind == "provider" {
		p.registered[r.Instance.Addr] = true
	}
	if r.Instance.Kind == "consumer" {
		if p.consumers == nil {
			p.consumers = map[string]bool{}
		}
		p.consumers[r.Instance.Service] = true
	}
	return &polarispb.RegisterResponse{TtlMs: 3000}, nil
}

func (p *fakeRegistry) Heartbeat(_ context.Context, r *polarispb.HeartbeatRequest) (*polarispb.HeartbeatResponse, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return &polarispb.HeartbeatResponse{Known: p.registered[r.Addr] && r.Service == "atom" || p.consumers[r.Service]}, nil
}

func (p *fakeRegistry) Deregister(_ context.Context, r *polarispb.DeregisterRequest) (*polarispb.DeregisterResponse, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r.Service == "atom" {
		delete(p.registered, r.Addr)
	} else {
		delete(p.consumers, r.Service)
	}
	return &polarispb.DeregisterResponse{}, nil
}

func (p *fakeRegistry) isRegistered(addr string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.registered[addr]
}

func (p *fakeRegistry) consumes(service string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.consumers[service]
}

const ttsSchema = `{
  "meta": {
    "serviceId": "tts", "version": "v1", "service": ["tts"], "engine": "echo", "once_timeout": 5,
    "tts": {
      "input": {"text": {"dataType": "text"}},
      "accept": {"audio": {"dataType": "audio"}, "subtitle": {"dataType": "text"}}
    }
  },
  "schemaoutput": {"type": "object", "properties": {"payload": {"type": "object", "properties": {
    "audio": {"type": "object", "properties": {"sample_rate": {"type": "integer"}, "encoding": {"type": "string"}}},
    "subtitle": {"type": "object", "properties": {"final": {"type": "boolean"}}}}}}}
}`

func TestSchemasFromPolarisAndRegistration(t *testing.T) {
	pol := &fakePolaris{files: map[string]string{"schema_tts.json": ttsSchema}, reg: fakeRegistry{registered: map[string]bool{}}}
	polAddr := serve(t, func(s *grpc.Server) {
		polarispb.RegisterConfigServer(s, pol)
		polarispb.RegisterRegistryServer(s, &pol.reg)
	})
	l := newSlotLoader(2)
	inputs := make(chan *loaderpb.LoaderInput, 1)
	l.once = func(in *loaderpb.LoaderInput) (*loaderpb.LoaderOutput, error) {
		inputs <- in
		out := &loaderpb.LoaderOutput{Status: loaderpb.Status_STATUS_ONCE}
		for _, e := range in.Expect {
			attrs := map[string]string{"sample_rate": "16000.0", "final": "1"}
			out.Pl = append(out.Pl, &loaderpb.Payload{Meta: &loaderpb.MetaDesc{Name: e.Name, Attribute: attrs}, Data: []byte(e.Name)})
		}
		return out, nil
	}
	addr, _ := serveStoppable(t, func(s *grpc.Server) { loaderpb.RegisterLoaderServer(s, l) })
	cfg := atom.DefaultConfig()
	cfg.LBAddr, cfg.Polaris = lbFor(t, addr), polAddr // the loader service "echo" serves capability "tts"
	srv := startAtom(t, cfg)
	testpoll.Until(t, 3*time.Second, "the condition", func() bool { return pol.reg.isRegistered(srv.GRPCAddr()) })

	f := &atompb.Frame{Capability: "tts", Sid: "tts-1", Status: 3, Header: map[string]string{"app_id": "app"},
		Accepts: map[string]*atompb.Accept{"audio": {Attributes: map[string]string{"encoding": "lame"}}, "subtitle": {Attributes: map[string]string{"format": "json"}}},
		Payload: []*atompb.Item{{Name: "text", DataType: "text", Data: []byte("hello")}}}
	res, err := dialAtom(t, srv.GRPCAddr()).Call(t.Context(), f)
	if err != nil || res.Code != 0 || len(res.Payload) != 2 {
		t.Fatalf("result %v, %v", res, err)
	}
	// atom records itself as a consumer of the loader service it routed to.
	testpoll.Until(t, 3*time.Second, "the condition", func() bool { return pol.reg.consumes("echo") })
	got := <-inputs
	if got.ServiceId != "tts" || got.ServiceName != "echo" || len(got.Expect) != 2 ||
		got.Expect[0].DataType != loaderpb.DataType_DATA_TYPE_AUDIO || got.Expect[1].DataType != loaderpb.DataType_DATA_TYPE_TEXT {
		t.Fatalf("loader input %v", got)
	}
	audio, sub := res.Payload[0], res.Payload[1]
	if audio.Name != "audio" || audio.DataType != "audio" || audio.Attributes["sample_rate"] != "16000" || audio.Attributes["encoding"] != "lame" {
		t.Errorf("audio item %v", audio)
	}
	if sub.Name != "subtitle" || sub.DataType != "text" || sub.Attributes["final"] != "true" || sub.Attributes["format"] != "json" || sub.Attributes["sample_rate"] != "16000.0" {
		t.Errorf("subtitle item %v", sub)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if pol.reg.isRegistered(srv.GRPCAddr()) || pol.reg.consumes("echo") {
		t.Fatal("still registered after Shutdown")
	}
}

func TestStartFailsWithoutSchemas(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	_ = ln.Close()
	cfg := atom.DefaultConfig()
	cfg.GRPCListen, cfg.AdminListen, cfg.Polaris = "127.0.0.1:0", "127.0.0.1:0", dead
	cfg.DataDir = t.TempDir() // empty: no cached schemas either
	srv, err := atom.New(cfg, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if err := srv.Start(ctx); err == nil {
		t.Fatal("started without the capability schemas")
	}
	if err := srv.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if ln, err := net.Listen("tcp", srv.GRPCAddr()); err != nil {
		t.Fatalf("grpc listener not released: %v", err)
	} else {
		_ = ln.Close()
	}
}

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRequestLogLinesCarrySid(t *testing.T) {
	full := newSlotLoader(0)
	ok := newSlotLoader(1)
	fullAddr, _ := serveStoppable(t, func(s *grpc.Server) { loaderpb.RegisterLoaderServer(s, full) })
	okAddr, _ := serveStoppable(t, func(s *grpc.Server) { loaderpb.RegisterLoaderServer(s, ok) })
	var buf syncBuffer
	cfg := atom.DefaultConfig()
	cfg.GRPCListen, cfg.AdminListen, cfg.LBAddr = "127.0.0.1:0", "127.0.0.1:0", lbFor(t, fullAddr, okAddr)
	srv, err := atom.New(cfg, zerolog.New(&buf).Level(zerolog.DebugLevel), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Shutdown(context.Background()) }()
	c := dialAtom(t, srv.GRPCAddr())
	if res, err := c.Call(t.Context(), frame(3, "x")); err != nil || res.Code != 0 {
		t.Fatalf("once %v, %v", res, err)
	}
	runSession(t, c, "logged-session", 3)
	f := frame(3, "x")
	f.Capability = "unknown"
	if res, err := c.Call(t.Context(), f); err != nil || res.Code != 10404 {
		t.Fatalf("unknown capability %v, %v", res, err)
	}
	lines := 0
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if strings.Contains(line, `"message":"grpc call"`) || strings.Contains(line, `"component":"lbpick"`) || strings.Contains(line, `"component":"loader-streams"`) {
			continue // libs/grpcx's access line (per RPC) and the pick and once streams' lines: not per request
		}
		lines++
		if !strings.Contains(line, `"sid":"sid-42"`) && !strings.Contains(line, `"sid":"logged-session"`) {
			t.Errorf("log line without sid: %s", line)
		}
	}
	if lines < 4 {
		t.Fatalf("%d request log lines:\n%s", lines, buf.String())
	}
}
