package python

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/testpoll"
	"github.com/athenaserving/asf/services/loader/engine"
	"github.com/athenaserving/asf/services/loader/worker"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func needPython(tb testing.TB) {
	tb.Helper()
	if _, err := os.Stat(DefaultPython); err != nil {
		tb.Skipf("%s is not installed: Python engine tests skipped", DefaultPython)
	}
}

func repoPath(tb testing.TB, rel string) string {
	tb.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "..", "..", rel))
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// TestSDKUnittest runs the aiges SDK's own tests (python3 -m unittest) so that `make test`
// covers them.
func TestSDKUnittest(t *testing.T) {
	needPython(t)
	sdk := repoPath(t, "sdk/python")
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, DefaultPython, "-m", "unittest", "discover", "-s", "tests", "-t", ".")
	cmd.Dir = sdk
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1", "PYTHONPATH="+sdk)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python3 -m unittest in %s: %v\n%s", sdk, err, out)
	}
	t.Logf("%s", out)
	if !strings.Contains(string(out), "OK") {
		t.Fatalf("unittest did not report OK:\n%s", out)
	}
}

func startEngine(t testing.TB, wrapper string, workers int, cfg map[string]string) *worker.Pool {
	t.Helper()
	needPython(t)
	eng := New(Options{
		WrapperPath: wrapper, Workers: workers, Log: zerolog.New(zerolog.NewTestWriter(t)),
		HangGrace: 100 * time.Millisecond, RestartMin: 20 * time.Millisecond, RestartMax: 200 * time.Millisecond,
	})
	p, ok := eng.(*worker.Pool)
	if !ok {
		t.Fatalf("New: %v", eng.Init(context.Background(), nil))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Init(ctx, cfg); err != nil {
		t.Fatalf("init: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Fini(context.Background()); err != nil {
			t.Errorf("fini: %v", err)
		}
	})
	return p
}

func in(name string, data string) []engine.Payload {
	return []engine.Payload{{Meta: engine.Meta{Name: name, Type: engine.DataText}, Data: []byte(data)}}
}

func once(t testing.TB, e engine.Engine, name, data string, d time.Duration) (engine.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return e.Once(ctx, engine.Request{Tag: "sid-once", Params: map[string]string{"mode": "identity"}, Inputs: in(name, data)})
}

func TestExampleOnce(t *testing.T) {
	e := startEngine(t, repoPath(t, "examples/engines/python-echo"), 1, map[string]string{"k": "v"})
	req := engine.Request{Tag: "s", Inputs: []engine.Payload{
		{Meta: engine.Meta{Name: "text", Type: engine.DataText}, Data: []byte("héllo")},
		{Meta: engine.Meta{Name: "pcm", Type: engine.DataAudio}, Data: []byte{0, 1, 2, 255}},
	}}
	resp, err := e.Once(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Outputs) != 2 || string(resp.Outputs[0].Data) != "héllo" || resp.Outputs[0].Name != "text" ||
		resp.Outputs[1].Type != engine.DataAudio || string(resp.Outputs[1].Data) != "\x00\x01\x02\xff" {
		t.Fatalf("outputs: %+v", resp.Outputs)
	}
}

type collector chan engine.Result

func (c collector) next(t *testing.T) engine.Result {
	t.Helper()
	select {
	case r := <-c:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no session result")
	}
	return engine.Result{}
}

func streamThrough(t *testing.T, e engine.Engine, want func(string) string) {
	t.Helper()
	c := make(collector, 8)
	s, err := e.NewSession(t.Context(), engine.SessionParams{Tag: "sid-stream"}, func(r engine.Result) { c <- r })
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range []engine.Status{engine.StatusBegin, engine.StatusContinue, engine.StatusEnd} {
		data := []string{"one", "two", "three"}[i]
		if err := s.Write(t.Context(), engine.Frame{SyncID: int32(i), Status: st, Inputs: in("text", data)}); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		r := c.next(t)
		if r.Err != nil || r.Status != st || len(r.Outputs) != 1 || string(r.Outputs[0].Data) != want(data) {
			t.Fatalf("result %d: %+v", i, r)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
}

func TestExampleStream(t *testing.T) {
	e := startEngine(t, repoPath(t, "examples/engines/python-echo"), 1, nil)
	streamThrough(t, e, func(s string) string { return s })
}

func TestCallbackModeWrapper(t *testing.T) {
	e := startEngine(t, "testdata/oldstyle", 1, nil)
	streamThrough(t, e, strings.ToUpper)
	resp, err := once(t, e, "text", "async", 10*time.Second)
	if err != nil || len(resp.Outputs) != 1 || string(resp.Outputs[0].Data) != "ASYNC" {
		t.Fatalf("async once: %+v %v", resp, err)
	}
}

func TestWrapperErrors(t *testing.T) {
	e := startEngine(t, "testdata/misbehave", 1, nil)
	_, err := once(t, e, "raise", "no good", 10*time.Second)
	if aserr.CodeOf(err) != 30003 || !strings.Contains(aserr.MessageOf(err), "ValueError: bad input: no good") {
		t.Fatalf("raising wrapper: %v (code %d)", err, aserr.CodeOf(err))
	}
	_, err = once(t, e, "code", "7", 10*time.Second)
	if aserr.CodeOf(err) != 7 || aserr.MessageOf(err) != "refused by config" {
		t.Fatalf("error_code response: %v", err)
	}
	if resp, err := once(t, e, "text", "fine", 10*time.Second); err != nil || string(resp.Outputs[0].Data) != "fine" {
		t.Fatalf("once after errors: %+v %v", resp, err)
	}
}

func TestWrapperExitRestarts(t *testing.T) {
	e := startEngine(t, "testdata/misbehave", 1, nil)
	before := e.PIDs()[0]
	if _, err := once(t, e, "exit", "", 10*time.Second); !errors.Is(err, aserr.ErrEngineCrashed) {
		t.Fatalf("os._exit: %v, want 10109", err)
	}
	testpoll.Until(t, 20*time.Second, "the worker restarted", func() bool { p := e.PIDs()[0]; return p != 0 && p != before })
	if resp, err := once(t, e, "text", "back", 10*time.Second); err != nil || string(resp.Outputs[0].Data) != "back" {
		t.Fatalf("once after restart: %+v %v", resp, err)
	}
}

func TestWrapperHangTimesOut(t *testing.T) {
	e := startEngine(t, "testdata/misbehave", 1, nil)
	before := e.PIDs()[0]
	if _, err := once(t, e, "hang", "", 300*time.Millisecond); !errors.Is(err, aserr.ErrOnceTimeout) {
		t.Fatalf("hanging wrapper: %v, want 10102", err)
	}
	testpoll.Until(t, 20*time.Second, "the hung worker replaced", func() bool { p := e.PIDs()[0]; return p != 0 && p != before })
	if resp, err := once(t, e, "text", "alive", 10*time.Second); err != nil || string(resp.Outputs[0].Data) != "alive" {
		t.Fatalf("once after replacement: %+v %v", resp, err)
	}
}

func TestInitErrors(t *testing.T) {
	needPython(t)
	cases := []struct {
		wrapper string
		cfg     map[string]string
		code    int
		msg     string
	}{
		{"testdata/broken", nil, 30001, "No module named 'no_such_module_for_the_test'"},
		{"testdata/misbehave", map[string]string{"raise": "no model"}, 30002, "init failed: no model"},
		{"testdata/misbehave", map[string]string{"refuse": "1"}, 7, "refused by config"},
		{"testdata/nowhere", nil, 10107, "wrapper"},
	}
	for _, c := range cases {
		e := New(Options{WrapperPath: c.wrapper, Workers: 1, Log: zerolog.New(zerolog.NewTestWriter(t))})
		err := e.Init(t.Context(), c.cfg)
		if aserr.CodeOf(err) != c.code || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s %v: init error %v, want code %d with %q", c.wrapper, c.cfg, err, c.code, c.msg)
		}
		_ = e.Fini(t.Context())
	}
}

func TestConfigFindsSDK(t *testing.T) {
	cfg, err := Config(Options{WrapperPath: "testdata/misbehave/wrapper.py"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Size != runtime.NumCPU() || cfg.Command[0] != DefaultPython || !strings.HasSuffix(cfg.Dir, "testdata/misbehave") {
		t.Fatalf("config: %+v", cfg)
	}
	t.Setenv(EnvSDK, t.TempDir())
	if _, err := Config(Options{WrapperPath: "testdata/misbehave"}); aserr.CodeOf(err) != 10107 {
		t.Fatalf("bad %s: %v", EnvSDK, err)
	}
}

// BenchmarkPythonOnce measures an identity once call: direct (the Go echo engine in
// process) and through the worker protocol to the Python identity wrapper and to a Go echo.
func BenchmarkPythonOnce(b *testing.B) {
	req := engine.Request{Tag: "bench", Inputs: in("text", strings.Repeat("x", 1280))}
	b.Run("direct-go-echo", func(b *testing.B) {
		e := engine.NewEcho()
		_ = e.Init(context.Background(), nil)
		ctx := context.Background()
		for b.Loop() {
			if _, err := e.Once(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("worker-python-identity", func(b *testing.B) {
		c := startCPU(b)
		e := startEngine(b, repoPath(b, "examples/engines/python-echo"), 1, nil)
		ctx := context.Background()
		for b.Loop() {
			if _, err := e.Once(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
		c.report(b, e)
	})
	// 64 callers over one worker per CPU, as the suite's c=64 Python identity run: ns/op is
	// the pool's time per call at that load (its inverse the calls per second).
	b.Run("worker-python-identity-c64", func(b *testing.B) {
		c := startCPU(b)
		e := startEngine(b, repoPath(b, "examples/engines/python-echo"), runtime.NumCPU(), nil)
		b.SetParallelism((64 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			for pb.Next() {
				if _, err := e.Once(ctx, req); err != nil {
					b.Error(err)
					return
				}
			}
		})
		c.report(b, e)
	})
}

// cpuUse is the CPU time of this process (the loader's side) and of its reaped children
// (the workers, once Fini has reaped them) at the start of a benchmark run.
type cpuUse struct{ self, children time.Duration }

func rusage(who int) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startCPU(b *testing.B) cpuUse {
	b.Helper()
	return cpuUse{self: rusage(syscall.RUSAGE_SELF), children: rusage(syscall.RUSAGE_CHILDREN)}
}

// report stops the workers (so that their CPU time is counted) and reports the CPU time
// per call of the loader's side (loader-cpu-ns/op, the benchmark's own goroutines
// included) and of the workers (worker-cpu-ns/op, their start-up included).
func (c cpuUse) report(b *testing.B, e engine.Engine) {
	b.Helper()
	b.StopTimer()
	self := rusage(syscall.RUSAGE_SELF) - c.self
	if err := e.Fini(context.Background()); err != nil {
		b.Fatal(err)
	}
	children := rusage(syscall.RUSAGE_CHILDREN) - c.children
	b.ReportMetric(float64(self.Nanoseconds())/float64(b.N), "loader-cpu-ns/op")
	b.ReportMetric(float64(children.Nanoseconds())/float64(b.N), "worker-cpu-ns/op")
}
