package baseline

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/athenaserving/asf/tools/asfbench"
	"github.com/athenaserving/asf/tools/asfbench/targets"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quickPlan = asfbench.Plan{
	Warmup: 50 * time.Millisecond, Window: 100 * time.Millisecond, MinWindows: 2, MaxWindows: 2,
	Rule: asfbench.StabilityRule{Windows: 2, Tolerance: 1},
}

func startHTTP(t *testing.T) *HTTPEcho {
	t.Helper()
	e, err := NewHTTPEcho("127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- e.Run() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, e.Shutdown(ctx))
		require.NoError(t, <-done)
	})
	return e
}

func run(t *testing.T, tg asfbench.Target, l asfbench.Load) asfbench.Summary {
	t.Helper()
	res, err := (&asfbench.Runner{}).Run(t.Context(), tg, l, quickPlan)
	require.NoError(t, err)
	return res.Summary
}

func TestOnceAgainstHTTPEcho(t *testing.T) {
	e := startHTTP(t)
	tg := targets.NewASEOnce(targets.ASEOnceConfig{BaseURL: e.URL(), Service: "echo", AppID: "bench",
		Creds: asfbench.Credentials{APIKey: "k", APISecret: "s"}, PayloadSize: 256, MaxConns: 4})
	defer tg.Close()
	s := run(t, tg, asfbench.Load{Concurrency: 4})
	assert.Zero(t, s.Errors, s.TopErrors(3))
	assert.Greater(t, s.Requests, uint64(20))
	assert.Greater(t, s.P99, time.Duration(0))
	assert.False(t, s.HasTiming)
}

func TestStreamAgainstHTTPEcho(t *testing.T) {
	e := startHTTP(t)
	tg := targets.NewASEStream(targets.ASEStreamConfig{BaseURL: e.URL(), Service: "echo", AppID: "bench",
		Creds: asfbench.Credentials{APIKey: "k", APISecret: "s"}, FrameSize: 1280, FramesPerSession: 4})
	s := run(t, tg, asfbench.Load{Concurrency: 8, Pace: 5 * time.Millisecond})
	assert.Zero(t, s.Errors, s.TopErrors(3))
	// 8 sessions × 200 frames/s, several sessions ended and reopened in 200 ms.
	assert.Greater(t, s.Requests, uint64(50), "p50 %v p99 %v", s.P50, s.P99)
}

func TestOIPAgainstHTTPEcho(t *testing.T) {
	e := startHTTP(t)
	tg := targets.NewOIPInfer(targets.OIPConfig{BaseURL: e.URL(), Model: "identity", Elements: 64, MaxConns: 2})
	defer tg.Close()
	s := run(t, tg, asfbench.Load{Concurrency: 2})
	assert.Zero(t, s.Errors, s.TopErrors(3))
	assert.Greater(t, s.Requests, uint64(10))
}

func TestOIPBytesSignedAgainstHTTPEcho(t *testing.T) {
	e := startHTTP(t)
	tg := targets.NewOIPInfer(targets.OIPConfig{BaseURL: e.URL(), Model: "echo", Bytes: 256, MaxConns: 2,
		Creds: &asfbench.Credentials{APIKey: "k", APISecret: "s"}})
	defer tg.Close()
	s := run(t, tg, asfbench.Load{Concurrency: 2})
	assert.Zero(t, s.Errors, s.TopErrors(3))
	assert.Greater(t, s.Requests, uint64(10))
}

func TestGRPCRawAgainstGRPCEcho(t *testing.T) {
	g, err := NewGRPCEcho("127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- g.Run() }()
	defer func() { g.Stop(); require.NoError(t, <-done) }()
	req := []byte("\x0a\x04echo")
	tg, err := targets.NewGRPCRaw(targets.GRPCConfig{Addr: g.Addr(), Method: EchoMethod, Request: req,
		Check: func(resp []byte) error {
			if string(resp) != string(req) {
				return assert.AnError
			}
			return nil
		}})
	require.NoError(t, err)
	defer tg.Close()
	s := run(t, tg, asfbench.Load{Concurrency: 4})
	assert.Zero(t, s.Errors, s.TopErrors(3))
	assert.Greater(t, s.Requests, uint64(20))
}

func TestFastAPIIdentity(t *testing.T) {
	if testing.Short() {
		t.Skip("starts python")
	}
	if err := CheckFastAPI(t.Context(), ""); err != nil {
		t.Skip(err)
	}
	f, err := StartFastAPI(t.Context(), FastAPIOptions{Workers: 1, Dir: t.TempDir()})
	require.NoError(t, err)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, f.Stop(ctx))
	}()
	assert.NotEmpty(t, f.PIDs())
	tg := targets.NewASEOnce(targets.ASEOnceConfig{BaseURL: f.URL(), Service: "python-identity", AppID: "bench",
		Creds: asfbench.Credentials{APIKey: "k", APISecret: "s"}, PayloadSize: 128, MaxConns: 2})
	defer tg.Close()
	s := run(t, tg, asfbench.Load{Concurrency: 2})
	assert.Zero(t, s.Errors, s.TopErrors(3))
	assert.Greater(t, s.Requests, uint64(5))
}
