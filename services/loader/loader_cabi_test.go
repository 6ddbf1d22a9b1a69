package loader_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/grpcx"
	loaderpb "github.com/athenaserving/asf/libs/proto/loader/v1"
	"github.com/athenaserving/asf/services/loader"
	"github.com/athenaserving/asf/services/loader/engine"
	"github.com/athenaserving/asf/services/loader/engine/cabi/cabitest"
	"github.com/athenaserving/asf/services/loader/worker"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// TestEngineWorkerHelper is the engine-worker subcommand when this test binary is started
// by a worker pool (isolation process); otherwise it does nothing.
func TestEngineWorkerHelper(t *testing.T) {
	if !worker.IsChild() {
		t.Skip("runs only as an isolation worker process")
	}
	i := slices.Index(os.Args, "--")
	os.Exit(loader.EngineWorkerMain(context.Background(), os.Args[i+1:], os.Getenv))
}

// workerCommand starts this test binary as an engine worker.
func workerCommand() []string {
	return []string{os.Args[0], "-test.run=^TestEngineWorkerHelper$", "--"}
}

func cConfig(t testing.TB, licence int, async bool) loader.Config {
	cfg := testConfig(licence)
	cfg.Engine, cfg.EnginePath, cfg.Async = loader.EngineC, cabitest.BuildEcho(t), async
	cfg.WorkerCommand = workerCommand()
	return cfg
}

func onceIn(data string, params map[string]string) *loaderpb.LoaderInput {
	in := input(0, loaderpb.Status_STATUS_ONCE, data)
	in.Params = params
	return in
}

func TestCEngineThroughLoader(t *testing.T) {
	for _, mode := range []struct {
		name      string
		async     bool
		isolation string
	}{{"sync", false, ""}, {"async", true, ""}, {"sync-isolated", false, loader.IsolationProcess}, {"async-isolated", true, loader.IsolationProcess}} {
		t.Run(mode.name, func(t *testing.T) {
			cfg := cConfig(t, 2, mode.async)
			cfg.Isolation = mode.isolation
			_, c := start(t, cfg)
			out, err := c.Once(t.Context(), onceIn("hello", map[string]string{"prefix": "c:"}))
			if err != nil {
				t.Fatal(err)
			}
			if pl := out.GetPl(); len(pl) != 1 || string(pl[0].GetData()) != "c:hello" || pl[0].GetMeta().GetAttribute()["encoding"] != "utf8" {
				t.Fatalf("once output %v", out)
			}
			outs, err := session(t.Context(), c, "s-"+mode.name)
			if err != nil {
				t.Fatal(err)
			}
			if len(outs) != 3 || outs[2].GetStatus() != loaderpb.Status_STATUS_END || string(outs[1].GetPl()[0].GetData()) != "b" {
				t.Fatalf("session outputs %v", outs)
			}
			_, err = c.Once(t.Context(), onceIn("x", map[string]string{"fail": "1"}))
			err = grpcx.FromStatus(err)
			if aserr.CodeOf(err) != 20001 || !strings.Contains(aserr.MessageOf(err), "failure requested by parameter fail") {
				t.Fatalf("engine error = %v (code %d)", err, aserr.CodeOf(err))
			}
		})
	}
}

func TestCEngineLicenceFull(t *testing.T) {
	_, c := start(t, cConfig(t, 1, true))
	st, err := c.Session(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(input(0, loaderpb.Status_STATUS_BEGIN, "x")); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Once(t.Context(), onceIn("y", nil)); aserr.CodeOf(grpcx.FromStatus(err)) != 10110 {
		t.Fatalf("once with the licence full: %v, want 10110", err)
	}
	if _, err := session(t.Context(), c, "other"); aserr.CodeOf(err) != 10110 {
		t.Fatalf("session with the licence full: %v, want 10110", err)
	}
	_ = st.CloseSend()
}

func TestCEngineOutOfOrderFrames(t *testing.T) {
	for _, async := range []bool{false, true} {
		t.Run(fmt.Sprint("async=", async), func(t *testing.T) {
			_, c := start(t, cConfig(t, 1, async))
			st, err := c.Session(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range []struct {
				id int32
				s  loaderpb.Status
				d  string
			}{{0, loaderpb.Status_STATUS_BEGIN, "a"}, {3, loaderpb.Status_STATUS_END, "d"}, {2, loaderpb.Status_STATUS_CONTINUE, "c"}, {1, loaderpb.Status_STATUS_CONTINUE, "b"}} {
				if err := st.Send(input(f.id, f.s, f.d)); err != nil {
					t.Fatal(err)
				}
			}
			_ = st.CloseSend()
			var got string
			for {
				out, err := st.Recv()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got += string(out.GetPl()[0].GetData())
			}
			if got != "abcd" {
				t.Fatalf("outputs %q, want abcd", got)
			}
		})
	}
}

func TestCEngineCrashIsolated(t *testing.T) {
	cfg := cConfig(t, 4, false)
	cfg.Isolation = loader.IsolationProcess
	s, c := start(t, cfg)
	// A session open on the worker that will crash fails with 10109 too.
	st, err := c.Session(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(input(0, loaderpb.Status_STATUS_BEGIN, "x")); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); err != nil {
		t.Fatal(err)
	}
	_, err = c.Once(t.Context(), onceIn("boom", map[string]string{"crash": "segv"}))
	if code := aserr.CodeOf(grpcx.FromStatus(err)); code != aserr.ErrEngineCrashed.Code {
		t.Fatalf("crashing request: %v (code %d), want 10109", err, code)
	}
	if _, err := st.Recv(); aserr.CodeOf(grpcx.FromStatus(err)) != aserr.ErrEngineCrashed.Code {
		t.Fatalf("session on the crashed worker: %v, want 10109", err)
	}
	if !s.Ready() {
		t.Fatal("loader not ready after a worker crash")
	}
	out, err := c.Once(t.Context(), onceIn("after", nil)) // waits for the restarted worker
	if err != nil || string(out.GetPl()[0].GetData()) != "after" {
		t.Fatalf("request after the crash: %v, %v", out, err)
	}
	if _, err := session(t.Context(), c, "after-crash"); err != nil {
		t.Fatalf("session after the crash: %v", err)
	}
}

func TestNewRejectsBadEngineConfig(t *testing.T) {
	for _, mut := range []func(*loader.Config){
		func(c *loader.Config) { c.Engine = "cobol" },
		func(c *loader.Config) { c.Engine = loader.EngineC },
		func(c *loader.Config) { c.Engine, c.EnginePath = loader.EngineC, "/nonexistent/libwrapper.so" },
		func(c *loader.Config) { c.Isolation = "vm" },
	} {
		cfg := testConfig(1)
		mut(&cfg)
		if s, err := loader.New(cfg, zerolog.Nop(), prometheus.NewRegistry()); err == nil {
			_ = s.Shutdown(context.Background())
			t.Fatalf("New(%+v) succeeded", cfg)
		}
	}
}

func TestCEngineMissingSymbolFailsNew(t *testing.T) {
	cfg := testConfig(1)
	cfg.Engine, cfg.EnginePath = loader.EngineC, cabitest.BuildEcho(t, "-DCECHO_OMIT_WRITE")
	_, err := loader.New(cfg, zerolog.Nop(), prometheus.NewRegistry())
	if err == nil || !strings.Contains(err.Error(), "wrapperWrite") {
		t.Fatalf("New: %v, want an error naming wrapperWrite", err)
	}
}

// BenchmarkCEngineOnce compares once requests on the C engine in the loader process with
// the same engine behind isolation process (one worker), called directly (no gRPC).
func BenchmarkCEngineOnce(b *testing.B) {
	for _, iso := range []string{loader.IsolationNone, loader.IsolationProcess} {
		b.Run(iso, func(b *testing.B) {
			cfg := cConfig(b, 1, false)
			cfg.Isolation = iso
			eng, err := loader.NewEngine(cfg, zerolog.Nop(), prometheus.NewRegistry())
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			if err := eng.Init(ctx, nil); err != nil {
				b.Fatal(err)
			}
			defer func() { _ = eng.Fini(ctx) }()
			req := engine.Request{Tag: "bench", Inputs: []engine.Payload{{Meta: engine.Meta{Name: "text"}, Data: make([]byte, 1024)}}}
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := eng.Once(ctx, req); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
	}
}
