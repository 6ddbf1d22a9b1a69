package scenario

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/athenaserving/asf/tools/asfbench"
	"github.com/athenaserving/asf/tools/asfbench/baseline"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestRunBaselinesOnly runs the once, stream and control scenarios with a tiny profile against
// in-process baselines and no suite: every suite row must say why it is missing.
func TestRunBaselinesOnly(t *testing.T) {
	h, err := baseline.NewHTTPEcho("127.0.0.1:0")
	require.NoError(t, err)
	g, err := baseline.NewGRPCEcho("127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 2)
	go func() { done <- h.Run() }()
	go func() { done <- g.Run() }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, h.Shutdown(ctx))
		g.Stop()
		require.NoError(t, <-done)
		require.NoError(t, <-done)
	}()

	p := Quick()
	p.Plan = asfbench.Plan{Warmup: 20 * time.Millisecond, Window: 100 * time.Millisecond, MinWindows: 1, MaxWindows: 1,
		Rule: asfbench.StabilityRule{Windows: 1, Tolerance: 1}}
	p.OnceConcurrency = []int{1, 4}
	p.StreamSessions = []int{4}
	p.StreamPace = 5 * time.Millisecond
	p.PickConcurrency = []int{2}
	p.OIPConcurrency = []int{2}
	env := &Env{Profile: p, SuiteUnavailable: "test without suite", BaselineHTTP: h.URL(), BaselineGRPC: g.Addr(),
		BaselinePIDs: []int{os.Getpid()}, AppID: "bench", OutDir: t.TempDir(),
		Only: map[string]bool{"once": true, "stream": true, "control": true}}
	rep, err := Run(t.Context(), env)
	require.NoError(t, err)
	require.Len(t, rep.Scenarios, 3)
	once := rep.Scenarios[0]
	assert.Len(t, once.ByX("bare Go echo"), 2)
	assert.Len(t, once.ByX("bare Go OIP v2"), 1)
	for _, r := range once.Rows {
		if r.System == "suite" {
			assert.Equal(t, "test without suite", r.NotAvailable)
			continue
		}
		if r.Result != nil {
			assert.Zero(t, r.Result.Summary.Errors)
			assert.Contains(t, r.CPUPer1k, "baseline")
			assert.Greater(t, r.PeakRSS["baseline"], int64(0))
		}
	}
	require.NoError(t, rep.Write(env.OutDir))
	md, err := os.ReadFile(env.OutDir + "/report.md")
	require.NoError(t, err)
	assert.True(t, strings.Contains(string(md), "The suite was not measured: test without suite"))
	assert.Contains(t, string(md), "Load-change propagation not measured")
}
