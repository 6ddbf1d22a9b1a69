package worker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/testpoll"
	"github.com/athenaserving/asf/services/loader/engine"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

const envChild = "ASF_WORKER_TEST_CHILD"

// TestMain doubles as the worker child: re-executed with envChild set, the test binary
// hosts testEngine behind Serve.
func TestMain(m *testing.M) {
	if os.Getenv(envChild) == "1" {
		conn, err := ChildConn()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Println("test worker ready")
		if fd := os.Getenv(EnvNudgeFD); fd != "" {
			go countNudges(fd)
		}
		if err := Serve(context.Background(), conn, &testEngine{Echo: engine.NewEcho()}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// testEngine is echo with a pid attribute on every output and inputs that misbehave:
// "crash" exits the process, "hang" never returns, "fail" returns 30003, "slow" sleeps
// for its data in milliseconds.
type testEngine struct {
	*engine.Echo
}

func (e *testEngine) Init(ctx context.Context, cfg map[string]string) error {
	if cfg["fail"] != "" {
		return aserr.New(30002, "init refused: "+cfg["fail"])
	}
	return e.Echo.Init(ctx, cfg)
}

func misbehave(in []engine.Payload) error {
	for _, p := range in {
		switch p.Name {
		case "crash":
			os.Exit(3)
		case "hang":
			select {}
		case "fail":
			return aserr.New(30003, "user exec error: "+string(p.Data))
		case "slow":
			ms, _ := strconv.Atoi(string(p.Data))
			time.Sleep(time.Duration(ms) * time.Millisecond)
		}
	}
	return nil
}

func withPid(outs []engine.Payload) []engine.Payload {
	for i := range outs {
		if outs[i].Attrs == nil {
			outs[i].Attrs = map[string]string{}
		}
		outs[i].Attrs["pid"] = strconv.Itoa(os.Getpid())
	}
	return outs
}

// nudges counts the bytes the child read from its hand-off socket (Config.Handoff).
var nudges atomic.Int64

func countNudges(fd string) {
	n, _ := strconv.Atoi(fd)
	f := os.NewFile(uintptr(n), "handoff")
	buf := make([]byte, 64)
	for {
		k, err := f.Read(buf)
		nudges.Add(int64(k))
		if err != nil {
			return
		}
	}
}

func (e *testEngine) Once(ctx context.Context, req engine.Request) (engine.Response, error) {
	if err := misbehave(req.Inputs); err != nil {
		return engine.Response{}, err
	}
	if len(req.Inputs) == 1 && req.Inputs[0].Name == "nudges" {
		return engine.Response{Outputs: []engine.Payload{{Meta: engine.Meta{Name: "nudges", Type: engine.DataText}, Data: []byte(strconv.FormatInt(nudges.Load(), 10))}}}, nil
	}
	resp, err := e.Echo.Once(ctx, req)
	resp.Outputs = withPid(resp.Outputs)
	return resp, err
}

func (e *testEngine) NewSession(ctx context.Context, p engine.SessionParams, emit engine.Emit) (engine.Session, error) {
	s, err := e.Echo.NewSession(ctx, p, func(r engine.Result) {
		r.Outputs = withPid(r.Outputs)
		for i := range r.Outputs {
			r.Outputs[i].Attrs["res"] = resOf(p.PsrIDs)
		}
		emit(r)
	})
	if err != nil {
		return nil, err
	}
	return &testSession{Session: s}, nil
}

type testSession struct{ engine.Session }

func (s *testSession) Write(ctx context.Context, f engine.Frame) error {
	if err := misbehave(f.Inputs); err != nil {
		return err
	}
	return s.Session.Write(ctx, f)
}

func newTestPool(t *testing.T, size int, mod func(*Config)) *Pool {
	t.Helper()
	cfg := Config{
		Name: "test", Command: []string{os.Args[0], "-test.run=^$"}, Env: []string{envChild + "=1"},
		Size: size, RestartMin: 20 * time.Millisecond, RestartMax: 200 * time.Millisecond,
		HangGrace: 100 * time.Millisecond, InitTimeout: 20 * time.Second, Log: zerolog.New(zerolog.NewTestWriter(t)),
	}
	if mod != nil {
		mod(&cfg)
	}
	return NewPool(cfg)
}

func startPool(t *testing.T, size int, mod func(*Config)) *Pool {
	t.Helper()
	p := newTestPool(t, size, mod)
	if err := p.Init(t.Context(), map[string]string{"k": "v"}); err != nil {
		t.Fatalf("init: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Fini(context.Background()); err != nil {
			t.Errorf("fini: %v", err)
		}
	})
	return p
}

func in(name, data string) []engine.Payload {
	return []engine.Payload{{Meta: engine.Meta{Name: name, Type: engine.DataText}, Data: []byte(data)}}
}

func once(t *testing.T, p *Pool, name, data string) (engine.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	return p.Once(ctx, engine.Request{Tag: "t", Inputs: in(name, data)})
}

func TestPoolOnceSpreadsOverWorkers(t *testing.T) {
	p := startPool(t, 2, nil)
	resp, err := once(t, p, "text", "hello")
	if err != nil || len(resp.Outputs) != 1 || string(resp.Outputs[0].Data) != "hello" || resp.Outputs[0].Name != "text" {
		t.Fatalf("once: %+v %v", resp, err)
	}
	var mu sync.Mutex
	pids := map[string]bool{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := once(t, p, "slow", "150")
			if err != nil {
				t.Errorf("slow once: %v", err)
				return
			}
			mu.Lock()
			pids[resp.Outputs[0].Attrs["pid"]] = true
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(pids) != 2 {
		t.Fatalf("concurrent calls used workers %v, want both", pids)
	}
	_, err = once(t, p, "fail", "bad input")
	if aserr.CodeOf(err) != 30003 || aserr.MessageOf(err) != "user exec error: bad input" {
		t.Fatalf("engine error: %v (code %d)", err, aserr.CodeOf(err))
	}
}

type collector struct {
	ch chan engine.Result
}

func newCollector() *collector            { return &collector{ch: make(chan engine.Result, 16)} }
func (c *collector) emit(r engine.Result) { c.ch <- r }
func (c *collector) next(t *testing.T) engine.Result {
	t.Helper()
	select {
	case r := <-c.ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no session result")
	}
	return engine.Result{}
}

func TestPoolSessionPinned(t *testing.T) {
	p := startPool(t, 2, nil)
	c := newCollector()
	s, err := p.NewSession(t.Context(), engine.SessionParams{Tag: "s1"}, c.emit)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	pid := ""
	for i, st := range []engine.Status{engine.StatusBegin, engine.StatusContinue, engine.StatusEnd} {
		data := fmt.Sprintf("frame-%d", i)
		if err := s.Write(t.Context(), engine.Frame{SyncID: int32(i), Status: st, Inputs: in("audio", data)}); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		r := c.next(t)
		if r.Err != nil || r.Status != st || string(r.Outputs[0].Data) != data {
			t.Fatalf("result %d: %+v", i, r)
		}
		if pid == "" {
			pid = r.Outputs[0].Attrs["pid"]
		} else if got := r.Outputs[0].Attrs["pid"]; got != pid {
			t.Fatalf("session moved from worker %s to %s", pid, got)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
}

func TestPoolCrashFailsInFlightAndRestarts(t *testing.T) {
	p := startPool(t, 2, nil)
	before := p.PIDs()
	// Two sessions: the least-loaded rule puts them on different workers.
	ca, cb := newCollector(), newCollector()
	sa, err := p.NewSession(t.Context(), engine.SessionParams{Tag: "a"}, ca.emit)
	if err != nil {
		t.Fatal(err)
	}
	defer sa.Close()
	sb, err := p.NewSession(t.Context(), engine.SessionParams{Tag: "b"}, cb.emit)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()

	err = sa.Write(t.Context(), engine.Frame{Status: engine.StatusBegin, Inputs: in("crash", "")})
	if !errors.Is(err, aserr.ErrEngineCrashed) {
		t.Fatalf("write to a crashing worker: %v, want 10109", err)
	}
	if r := ca.next(t); !errors.Is(r.Err, aserr.ErrEngineCrashed) {
		t.Fatalf("crashed session result: %+v", r)
	}
	if err := sa.Write(t.Context(), engine.Frame{Status: engine.StatusContinue, Inputs: in("audio", "x")}); !errors.Is(err, aserr.ErrEngineCrashed) {
		t.Fatalf("write after crash: %v", err)
	}
	// The other worker keeps serving its session.
	if err := sb.Write(t.Context(), engine.Frame{Status: engine.StatusBegin, Inputs: in("audio", "still")}); err != nil {
		t.Fatalf("other session: %v", err)
	}
	if r := cb.next(t); r.Err != nil || string(r.Outputs[0].Data) != "still" {
		t.Fatalf("other session result: %+v", r)
	}
	// An in-flight once call fails at once when its worker dies.
	if _, err := once(t, p, "crash", ""); !errors.Is(err, aserr.ErrEngineCrashed) {
		t.Fatalf("once on a crashing worker: %v, want 10109", err)
	}
	testpoll.Until(t, 10*time.Second, "both workers live again with new pids", func() bool {
		now := p.PIDs()
		return p.Live() == 2 && (now[0] != before[0] || now[1] != before[1])
	})
	if p.Restarts() < 1 {
		t.Fatalf("restarts = %d", p.Restarts())
	}
	if resp, err := once(t, p, "text", "after"); err != nil || string(resp.Outputs[0].Data) != "after" {
		t.Fatalf("once after restart: %+v %v", resp, err)
	}
}

func TestPoolHangTimesOutAndReplacesWorker(t *testing.T) {
	p := startPool(t, 1, nil)
	before := p.PIDs()[0]
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := p.Once(ctx, engine.Request{Inputs: in("hang", "")})
	if !errors.Is(err, aserr.ErrOnceTimeout) {
		t.Fatalf("hung call: %v, want 10102", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("hung call returned after %s", took)
	}
	testpoll.Until(t, 10*time.Second, "the hung worker replaced", func() bool {
		pid := p.PIDs()[0]
		return pid != 0 && pid != before
	})
	if resp, err := once(t, p, "text", "ok"); err != nil || string(resp.Outputs[0].Data) != "ok" {
		t.Fatalf("once after replacement: %+v %v", resp, err)
	}
}

func TestPoolInitError(t *testing.T) {
	p := newTestPool(t, 2, nil)
	err := p.Init(t.Context(), map[string]string{"fail": "no model"})
	if aserr.CodeOf(err) != 30002 || aserr.MessageOf(err) != "init refused: no model" {
		t.Fatalf("init: %v", err)
	}
	if _, err := once(t, p, "text", "x"); !errors.Is(err, aserr.ErrReleased) {
		t.Fatalf("once after failed init: %v", err)
	}
}

func TestPoolBadCommand(t *testing.T) {
	p := newTestPool(t, 1, func(c *Config) { c.Command = []string{"/nonexistent/worker"} })
	if err := p.Init(t.Context(), nil); err == nil {
		t.Fatal("init with a missing binary succeeded")
	}
}

// BenchmarkPoolOnce measures an echo once call through one Go worker process, against
// the same engine called directly.
func BenchmarkPoolOnce(b *testing.B) {
	req := engine.Request{Tag: "bench", Inputs: in("text", string(make([]byte, 1280)))}
	ctx := context.Background()
	b.Run("direct", func(b *testing.B) {
		e := engine.NewEcho()
		_ = e.Init(ctx, nil)
		for b.Loop() {
			if _, err := e.Once(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("worker", func(b *testing.B) {
		p := NewPool(Config{Name: "bench", Command: []string{os.Args[0], "-test.run=^$"}, Env: []string{envChild + "=1"}, Size: 1})
		if err := p.Init(ctx, nil); err != nil {
			b.Fatal(err)
		}
		defer p.Fini(ctx)
		for b.Loop() {
			if _, err := p.Once(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestHandoffNudges: with Config.Handoff the child gets a hand-off socket and a byte on
// it only while a call has been unanswered for Handoff or longer; short calls send none.
func TestHandoffNudges(t *testing.T) {
	const h = 2 * time.Millisecond
	p := startPool(t, 1, func(c *Config) { c.Handoff = h })
	allowed := 0 // see below
	count := func() int {
		t.Helper()
		start := time.Now()
		defer func() { allowed += int(time.Since(start)/h) + 1 }() // a call still running at its return
		resp, err := once(t, p, "nudges", "")
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.Atoi(string(resp.Outputs[0].Data))
		return n
	}
	base := count()
	// A nudge needs a call unanswered for h at one of the pool's looks, one look per h:
	// a call that took d allows at most d/h of them. Echo calls take microseconds, so
	// nudges here would mean the child was woken for nothing.
	allowed = 0
	for range 200 {
		start := time.Now()
		if _, err := once(t, p, "echo", "x"); err != nil {
			t.Fatal(err)
		}
		allowed += int(time.Since(start) / h)
	}
	if n := count() - base; n > allowed {
		t.Fatalf("%d nudges for 200 short calls (at most %d for calls that took that long)", n, allowed)
	}
	before := count()
	if _, err := once(t, p, "slow", "40"); err != nil {
		t.Fatal(err)
	}
	testpoll.Until(t, 10*time.Second, "a nudge for a call running 40 ms", func() bool { return count() > before })
}

// TestNoHandoffSocketByDefault: without Config.Handoff the child gets no hand-off socket.
func TestNoHandoffSocketByDefault(t *testing.T) {
	p := startPool(t, 1, nil)
	if _, err := once(t, p, "slow", "20"); err != nil {
		t.Fatal(err)
	}
	resp, err := once(t, p, "nudges", "")
	if err != nil || string(resp.Outputs[0].Data) != "0" {
		t.Fatalf("nudges without Handoff: %v %v", resp.Outputs, err)
	}
}
