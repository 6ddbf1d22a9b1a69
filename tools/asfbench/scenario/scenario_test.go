package scenario

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/athenaserving/asf/tools/asfbench"
	"github.com/athenaserving/asf/tools/asfbench/baseline"
	"github.com/athenaserving/asf/tools/asfbench/report"
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
	p.SettleMax = 0 // the test shares the machine with the rest of make test
	env := &Env{Profile: p, SuiteUnavailable: "test without suite", BaselineHTTP: h.URL(), BaselineGRPC: g.Addr(),
		BaselinePIDs: []int{os.Getpid()}, AppID: "bench", OutDir: t.TempDir(),
		Only: map[string]bool{"once": true, "stream": true, "control": true, "mtls": true}}
	rep, err := Run(t.Context(), env)
	require.NoError(t, err)
	require.Len(t, rep.Scenarios, 4)
	once := rep.Scenarios[0]
	assert.Len(t, once.ByX("bare Go echo"), 2)
	assert.Len(t, once.ByX("bare Go OIP v2"), 1)
	var suiteOIP int
	for _, r := range once.Rows {
		if r.System == "suite OIP v2" {
			suiteOIP++
		}
	}
	assert.Equal(t, 1, suiteOIP, "one suite OIP v2 row per OIP concurrency")
	for _, r := range once.Rows {
		if r.System == "suite" || r.System == "suite OIP v2" {
			assert.Equal(t, "test without suite", r.NotAvailable)
			continue
		}
		if r.Result != nil {
			assert.Zero(t, r.Result.Summary.Errors)
			if r.Result.Summary.Throughput == 0 {
				continue // a loaded machine may finish no request in the tiny window: no CPU per request
			}
			assert.Contains(t, r.CPUPer1k, "baseline")
			assert.Greater(t, r.PeakRSS["baseline"], int64(0))
		}
	}
	require.NoError(t, rep.Write(env.OutDir))
	md, err := os.ReadFile(env.OutDir + "/report.md")
	require.NoError(t, err)
	assert.True(t, strings.Contains(string(md), "The suite was not measured: test without suite"))
	assert.Contains(t, string(md), "Load-change propagation not measured")
	// Every target is listed, with why it was not measured.
	assert.Contains(t, string(md), "## Targets")
	assert.Contains(t, string(md), "| webgate once p50, c=1 (full path, echo) | not measured: test without suite |")
	assert.Contains(t, string(md), "not measured: concurrency 64 is not in the quick profile")
	assert.Contains(t, string(md), "not measured: sessions 1000 is not in the quick profile")
	assert.Contains(t, string(md), "lbclient Pick throughput over gRPC, 1000 loaders / 50 services | not measured: lbbench binary not configured")
	assert.Contains(t, string(md), "| once CPU per request with internal mTLS / plaintext, c=64 (whole suite) | not measured: test without suite |")
	assert.Contains(t, string(md), "| webgate WebSocket sessions held at p99 ≤ 50ms, share of the bare WS echo's (of 4 sessions, then 2 halvings of the gap above each held count) | not measured: test without suite |")
	// The CPU charts show the baselines' bars even without the suite.
	assert.Equal(t, []string{"cpu-per-request.png", "cpu-per-frame.png"}, rep.Charts)
	assert.Contains(t, string(md), "![cpu-per-request.png](cpu-per-request.png)")
}

// TestMTLSFigures checks the mTLS comparison: CPU per request weighted by each round's
// requests, the suite's total without the load generator, and the ≤ 1.10× target.
func TestMTLSFigures(t *testing.T) {
	mk := func(ok uint64, cpu map[string]float64, errs uint64) *report.Row {
		return &report.Row{Result: &asfbench.Result{Windows: []asfbench.Window{{OK: ok}},
			Summary: asfbench.Summary{Throughput: float64(ok), Errors: errs}}, CPUPer1k: cpu}
	}
	on := &variant{name: "mTLS", rows: []*report.Row{
		mk(1000, map[string]float64{"webgate": 0.10, "atom": 0.10, "asfbench": 1}, 0),
		mk(3000, map[string]float64{"webgate": 0.14, "atom": 0.10, "asfbench": 1}, 0),
	}}
	off := &variant{name: "plaintext", spec: SuiteSpec{Insecure: true}, rows: []*report.Row{
		mk(2000, map[string]float64{"webgate": 0.10, "atom": 0.10, "asfbench": 1}, 0),
	}}
	cpu, n, tput := on.cpuPerRequest()
	assert.Equal(t, uint64(4000), n)
	assert.InDelta(t, 0.13, cpu["webgate"], 1e-9, "(0.10·1000 + 0.14·3000) / 4000")
	assert.InDelta(t, 2000.0, tput, 1e-9)
	assert.InDelta(t, 0.23, suiteTotal(cpu), 1e-9, "the load generator is not the suite")

	tables, ts := mtlsFigures(on, off, "m", 64)
	require.Len(t, tables, 1)
	require.Len(t, ts, 2)
	assert.Equal(t, report.StatusFail, ts[0].Status, "0.23 / 0.20 = 1.15 > 1.10")
	assert.Equal(t, "1.150×", ts[0].Ratio)
	assert.Equal(t, "≤ 1.10×", ts[0].Target)

	on.rows[1] = mk(3000, map[string]float64{"webgate": 0.11, "atom": 0.10}, 0)
	_, ts = mtlsFigures(on, off, "m", 64)
	assert.Equal(t, report.StatusPass, ts[0].Status, "0.2075 / 0.20 ≤ 1.10")
	on.rows[0].Result.Summary.Errors = 2
	_, ts = mtlsFigures(on, off, "m", 64)
	assert.Equal(t, report.StatusFail, ts[0].Status, "errors fail the row")
	assert.Equal(t, "suite mTLS r2", on.system(1))
	f := variantRounds(on, off)
	assert.Contains(t, f, "per round: r1 1.000×;", "only rounds measured on both sides")
}

// TestTracingFigures checks the tracing comparison: 1 % against off within 5 %, 100 % for
// information, Jaeger's CPU listed but left out of the suite's total.
func TestTracingFigures(t *testing.T) {
	mk := func(ok uint64, cpu map[string]float64) *report.Row {
		return &report.Row{Result: &asfbench.Result{Windows: []asfbench.Window{{OK: ok}},
			Summary: asfbench.Summary{Throughput: float64(ok)}}, CPUPer1k: cpu}
	}
	off := &variant{name: "off", rows: []*report.Row{mk(1000, map[string]float64{"webgate": 0.10, "atom": 0.10, "asfbench": 1})}}
	one := &variant{name: "1 %", rows: []*report.Row{mk(1000, map[string]float64{"webgate": 0.104, "atom": 0.10, "jaeger": 0.5, "asfbench": 1})}}
	all := &variant{name: "100 %", rows: []*report.Row{mk(900, map[string]float64{"webgate": 0.15, "atom": 0.13, "jaeger": 0.9, "asfbench": 1})}}
	tables, ts := tracingFigures(off, one, all, "m", 64)
	require.Len(t, tables, 1)
	require.Len(t, ts, 4)
	assert.Equal(t, report.StatusPass, ts[0].Status, "0.204 / 0.20 = 1.02 ≤ 1.05: Jaeger's CPU is not the suite's")
	assert.Equal(t, "1.020×", ts[0].Ratio)
	assert.Equal(t, report.StatusInfo, ts[1].Status)
	assert.Equal(t, "1.400×", ts[1].Ratio)
	assert.Equal(t, []string{"process group", "off", "1 %", "100 %", "1 % / off", "100 % / off"}, tables[0].Header)
	var jaeger []string
	for _, r := range tables[0].Rows {
		if strings.HasPrefix(r[0], "jaeger") {
			jaeger = r
		}
	}
	assert.Equal(t, []string{"jaeger (trace backend)", "0.0000", "0.5000", "0.9000", "–", "–"}, jaeger)

	one.rows[0] = mk(1000, map[string]float64{"webgate": 0.12, "atom": 0.10})
	_, ts = tracingFigures(off, one, all, "m", 64)
	assert.Equal(t, report.StatusFail, ts[0].Status, "0.22 / 0.20 = 1.10 > 1.05")
}

func row(system string, x float64, tput float64, p50, p99 time.Duration, errs uint64) *report.Row {
	return &report.Row{System: system, X: x, Result: &asfbench.Result{Summary: asfbench.Summary{
		Requests: 1000 + errs, Errors: errs, Throughput: tput, P50: p50, P99: p99}}}
}

// suiteCPU and bareCPU are CPU seconds per 1000 requests of each process group.
var (
	suiteCPU = map[string]float64{"webgate": 0.088, "atom": 0.077, "loader": 0.042, "lbclient": 0.015, "polaris": 0.003, "asfbench": 0.05}
	bareCPU  = map[string]float64{"baseline": 0.032, "asfbench": 0.03}
)

// cpuRow is row with the CPU of cpu.
func cpuRow(r *report.Row, cpu map[string]float64) *report.Row {
	r.CPUPer1k = cpu
	return r
}

func TestWebgateTargets(t *testing.T) {
	env := &Env{Profile: Full()}
	once := &report.Scenario{XLabel: "concurrency", Rows: []*report.Row{
		cpuRow(row("suite", 1, 3000, 400*time.Microsecond, time.Millisecond, 0), suiteCPU),
		cpuRow(row("bare Go echo", 1, 9000, 100*time.Microsecond, time.Millisecond, 0), bareCPU),
		cpuRow(row("suite", 64, 2000, 0, 0, 0), suiteCPU),
		cpuRow(row("bare Go echo", 64, 10000, 0, 0, 0), bareCPU),
	}}
	ts := onceTargets(once, env)
	require.Len(t, ts, 2)
	assert.Equal(t, report.StatusPass, ts[0].Status, "p50 0.4 ms ≤ 0.65 ms")
	assert.Equal(t, "4.000×", ts[0].Ratio)
	assert.Equal(t, "≤ 0.65 ms (goal 0.5 ms)", ts[0].Target)
	assert.Equal(t, report.StatusFail, ts[1].Status, "share 0.2 < 0.35")
	assert.Equal(t, "0.200×", ts[1].Ratio)
	assert.Equal(t, "≥ 0.35 × bare Go echo", ts[1].Target)
	for i, at := range []string{"c=1", "c=64"} {
		c := ts[i].CPU
		require.NotNil(t, c, "CPU per request beside %s", ts[i].Metric)
		assert.Equal(t, report.PerRequest, c.Unit)
		assert.Equal(t, at, c.At)
		assert.InDelta(t, 225.0, c.Sum, 1e-9, "µs per request over the five services")
		assert.InDelta(t, 50.0, c.Bench, 1e-9)
		assert.InDelta(t, 32.0, c.BaselineSum, 1e-9)
	}

	stream := &report.Scenario{XLabel: "sessions", Rows: []*report.Row{
		row("suite", 1000, 25000, 2*time.Millisecond, 30*time.Millisecond, 3),
		row("bare Go WS echo", 1000, 25000, time.Millisecond, 10*time.Millisecond, 0),
	}}
	ts = streamTargets(stream, env)
	require.Len(t, ts, 4)
	assert.Equal(t, report.StatusFail, ts[0].Status, "3 errors in 1003 frames (over 0.1 %): the suite held no count, the bare echo 1000")
	assert.Equal(t, report.StatusInfo, ts[1].Status)
	assert.Equal(t, report.StatusPass, ts[2].Status, "p99 30 ms ≤ 50 ms")
	assert.Contains(t, ts[2].Metric, "30s held")
	assert.Equal(t, report.StatusFail, ts[3].Status, "3 errors")
	assert.Equal(t, "3 of 1003 frames", ts[3].Measured)
}

// TestOnceTargetBounds checks the once targets at their bounds: p50 ≤ 0.65 ms at c=1 and
// ≥ 0.35 × the bare echo's throughput at c=64, errors failing either.
func TestOnceTargetBounds(t *testing.T) {
	env := &Env{Profile: Full()}
	for _, tc := range []struct {
		p50    time.Duration
		tput   float64
		errs   uint64
		p50St  string
		tputSt string
	}{
		{650 * time.Microsecond, 3500, 0, report.StatusPass, report.StatusPass},
		{651 * time.Microsecond, 3499, 0, report.StatusFail, report.StatusFail},
		{500 * time.Microsecond, 5000, 1, report.StatusFail, report.StatusFail},
	} {
		sc := &report.Scenario{XLabel: "concurrency", Rows: []*report.Row{
			row("suite", 1, 1000, tc.p50, time.Millisecond, tc.errs),
			row("bare Go echo", 1, 9000, 100*time.Microsecond, time.Millisecond, 0),
			row("suite", 64, tc.tput, 0, 0, tc.errs),
			row("bare Go echo", 64, 10000, 0, 0, 0),
		}}
		ts := onceTargets(sc, env)
		assert.Equal(t, tc.p50St, ts[0].Status, "p50 %v", tc.p50)
		assert.Equal(t, tc.tputSt, ts[1].Status, "throughput %v, errors %d", tc.tput, tc.errs)
		if tc.errs > 0 {
			assert.Contains(t, ts[1].Measured, "(1 errors)")
		}
	}
}

// streamRows are suite and bare WS echo rows at 100, 250, 500 and 1000 sessions with the
// p99s of suite and bare at those counts.
func streamRows(suite, bare [4]time.Duration) *report.Scenario {
	sc := &report.Scenario{XLabel: "sessions"}
	for i, n := range []float64{100, 250, 500, 1000} {
		sc.Rows = append(sc.Rows,
			cpuRow(row("suite", n, 25*n, time.Millisecond, suite[i], 0), suiteCPU),
			cpuRow(row("bare Go WS echo", n, 25*n, time.Millisecond, bare[i], 0), bareCPU))
	}
	return sc
}

// TestRefineCount checks the counts measured between a system's held and missed counts:
// halfway, to a multiple of 10, until they are within an eighth (or 20 sessions).
func TestRefineCount(t *testing.T) {
	ok, slow := 10*time.Millisecond, 900*time.Millisecond
	sc := streamRows([4]time.Duration{ok, ok, slow, slow}, [4]time.Duration{ok, ok, ok, ok})
	n, more := refineCount(sc, "suite")
	assert.True(t, more)
	assert.Equal(t, 380, n, "between 250 held and 500 missed")
	_, more = refineCount(sc, "bare Go WS echo")
	assert.False(t, more, "held every count: nothing above to refine")

	sc.Rows = append(sc.Rows, row("suite", 380, 25*380, time.Millisecond, slow, 0))
	n, _ = refineCount(sc, "suite")
	assert.Equal(t, 320, n, "between 250 held and 380 missed")
	sc.Rows = append(sc.Rows, row("suite", 320, 25*320, time.Millisecond, ok, 0))
	n, _ = refineCount(sc, "suite")
	assert.Equal(t, 350, n, "between 320 held and 380 missed")
	sc.Rows = append(sc.Rows, row("suite", 350, 25*350, time.Millisecond, ok, 0))
	_, more = refineCount(sc, "suite")
	assert.False(t, more, "350 held, 380 missed: within an eighth")
	held, _ := heldCount(sc, "suite")
	assert.Equal(t, 350.0, held)

	none := streamRows([4]time.Duration{slow, slow, slow, slow}, [4]time.Duration{ok, ok, ok, ok})
	n, more = refineCount(none, "suite")
	assert.True(t, more)
	assert.Equal(t, 50, n, "none held: halfway to the smallest count")
}

// TestStreamHeldTarget checks the held session count against the bare WebSocket echo's:
// ≥ 0.5 of it passes, with the CPU per frame of both at the suite's held count.
func TestStreamHeldTarget(t *testing.T) {
	env := &Env{Profile: Quick()}
	ok, slow := 10*time.Millisecond, 900*time.Millisecond
	ts := streamTargets(streamRows([4]time.Duration{ok, ok, slow, slow}, [4]time.Duration{ok, ok, ok, slow}), env)
	held := ts[0]
	assert.Equal(t, report.StatusPass, held.Status, "250 of 500 = 0.5")
	assert.Equal(t, "250 sessions (share 0.500)", held.Measured)
	assert.Equal(t, "bare Go WS echo 500 sessions", held.Baseline)
	assert.Equal(t, "≥ 0.50 × bare Go WS echo", held.Target)
	assert.Contains(t, held.Metric, "of 100/250/500/1000 sessions")
	require.NotNil(t, held.CPU)
	assert.Equal(t, report.PerFrame, held.CPU.Unit)
	assert.Equal(t, "250 sessions", held.CPU.At)
	assert.InDelta(t, 225.0, held.CPU.Sum, 1e-9)
	require.NotNil(t, ts[2].CPU, "the p99 row carries the CPU per frame at the held load")
	assert.Equal(t, "1000 sessions", ts[2].CPU.At)

	held = streamTargets(streamRows([4]time.Duration{ok, slow, slow, slow}, [4]time.Duration{ok, ok, ok, slow}), env)[0]
	assert.Equal(t, report.StatusFail, held.Status, "100 of 500 = 0.2")
	assert.Equal(t, "0.200×", held.Ratio)

	held = streamTargets(streamRows([4]time.Duration{slow, slow, slow, slow}, [4]time.Duration{ok, ok, ok, ok}), env)[0]
	assert.Equal(t, report.StatusFail, held.Status)
	assert.Equal(t, "none held (share 0.000)", held.Measured)
	assert.Contains(t, held.Baseline, "the largest measured: a lower bound")
	assert.Equal(t, "100 sessions", held.CPU.At, "none held: the CPU at the smallest count")

	held = streamTargets(streamRows([4]time.Duration{slow, slow, slow, slow}, [4]time.Duration{slow, slow, slow, slow}), env)[0]
	assert.Equal(t, report.StatusNotMeasured, held.Status)
	assert.Contains(t, held.Measured, "the machine cannot carry the smallest load")

	sc := streamRows([4]time.Duration{ok, ok, ok, ok}, [4]time.Duration{ok, ok, ok, ok})
	sc.Rows[0].Result.Summary.Errors = 2 // 2 of 1002 frames: over 0.1 %
	held = streamTargets(sc, env)[0]
	assert.Equal(t, "1000 sessions (share 1.000)", held.Measured, "errors at one count do not lower a larger count held")
}

// TestPythonTarget checks the Python identity target: ≥ 0.6 × FastAPI + uvicorn at c=64.
func TestPythonTarget(t *testing.T) {
	env := &Env{Profile: Quick()}
	mk := func(tput float64) *report.Scenario {
		return &report.Scenario{XLabel: "concurrency", Rows: []*report.Row{
			cpuRow(row("suite", 64, tput, 0, 0, 0), suiteCPU),
			cpuRow(row("FastAPI+uvicorn", 64, 10000, 0, 0, 0), map[string]float64{"uvicorn": 0.1, "asfbench": 0.03}),
		}}
	}
	ts := pythonTargets(mk(6000), env)
	require.Len(t, ts, 1)
	assert.Equal(t, report.StatusPass, ts[0].Status, "0.6")
	assert.Equal(t, "≥ 0.60 × FastAPI+uvicorn", ts[0].Target)
	require.NotNil(t, ts[0].CPU)
	assert.InDelta(t, 100.0, ts[0].CPU.BaselineSum, 1e-9)
	assert.Equal(t, "FastAPI+uvicorn", ts[0].CPU.Baseline)
	assert.Equal(t, report.StatusFail, pythonTargets(mk(5999), env)[0].Status)

	missing := &report.Scenario{XLabel: "concurrency", Rows: []*report.Row{na("suite", 64, NotAvailablePython),
		row("FastAPI+uvicorn", 64, 10000, 0, 0, 0)}}
	ts = pythonTargets(missing, env)
	assert.Equal(t, report.StatusNotMeasured, ts[0].Status)
	assert.Contains(t, ts[0].Measured, NotAvailablePython)
	env.Profile.PythonConcurrency = []int{16}
	ts = pythonTargets(&report.Scenario{XLabel: "concurrency"}, env)
	assert.Contains(t, ts[0].Measured, "concurrency 64 is not in the quick profile")
}

// TestCPUCharts checks the charts' bars: once and Python rows per request, stream rows per
// frame, each load with the suite and its baseline.
func TestCPUCharts(t *testing.T) {
	once := &report.Scenario{ID: "once", XLabel: "concurrency", Rows: []*report.Row{
		cpuRow(row("suite", 64, 2000, 0, 0, 0), suiteCPU), cpuRow(row("bare Go echo", 64, 10000, 0, 0, 0), bareCPU),
		cpuRow(row("suite", 1, 2000, 0, 0, 0), suiteCPU), cpuRow(row("bare Go echo", 1, 10000, 0, 0, 0), bareCPU),
		cpuRow(row("suite WebAPI 2.0", 1, 2000, 0, 0, 0), suiteCPU),
	}}
	py := &report.Scenario{ID: "python", XLabel: "concurrency", Rows: []*report.Row{na("suite", 64, NotAvailablePython),
		cpuRow(row("FastAPI+uvicorn", 64, 10000, 0, 0, 0), map[string]float64{"uvicorn": 0.1})}}
	stream := streamRows([4]time.Duration{}, [4]time.Duration{})
	stream.ID = "stream"
	charts := cpuCharts(&report.Report{Scenarios: []*report.Scenario{once, stream, py}})
	require.Len(t, charts, 2)
	req, frame := charts[0], charts[1]
	assert.Equal(t, "cpu-per-request.png", req.File)
	var labels []string
	for _, b := range req.Bars {
		labels = append(labels, b.Label)
	}
	assert.Equal(t, []string{"once c=1", "once c=64", "python c=64"}, labels, "load order; the ASE once rows only")
	assert.InDelta(t, 225.0, req.Bars[0].CPU.Sum, 1e-9)
	assert.Empty(t, req.Bars[2].CPU.Services, "the suite's Python rows were not measured")
	assert.InDelta(t, 100.0, req.Bars[2].CPU.BaselineSum, 1e-9)
	assert.Equal(t, "cpu-per-frame.png", frame.File)
	require.Len(t, frame.Bars, 4)
	assert.Equal(t, "1000 sessions", frame.Bars[3].Label)
	assert.Equal(t, report.PerFrame, frame.Bars[3].CPU.Unit)
}

// TestHelperOutputs feeds the helper programs' JSON through a fake binary.
func TestHelperOutputs(t *testing.T) {
	dir := t.TempDir()
	fake := func(name, out string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\ncat <<'EOF'\n"+out+"\nEOF\n"), 0o755))
		return p
	}
	env := &Env{Profile: Quick(), OutDir: dir, RepoDir: dir,
		LoaderBench: fake("loaderbench", `{"python":{"payload_bytes":1280,"loader_grpc":{"calls":10,"p50_us":120,"p99_us":400},
			"python_in_process":{"calls":10,"p50_us":1,"p99_us":2},"added_p50_us":119,"added_p99_us":398},
			"c":{"concurrency":4,"engine_in_process":{"calls":10,"calls_per_s":1000},"engine_isolated":{"calls":10,"calls_per_s":250},
			"grpc_in_process":{"calls_per_s":100},"grpc_isolated":{"calls_per_s":50},"isolated_over_in_process":0.25,"grpc_isolated_over_in_process":0.5}}`),
		LBBench: fake("lbbench", `{"loaders":1000,"services":50,"workers":64,"duration_s":3,"picks":1,"picks_per_s":60000,
			"pick_p50_us":500,"pick_p99_us":2000,"propagation_samples":5,"propagation_p50_ms":20,"propagation_p99_ms":150}`)}
	sc, err := runLoader(t.Context(), env, nil)
	require.NoError(t, err)
	require.Len(t, sc.Targets, 4)
	assert.Equal(t, report.StatusPass, sc.Targets[0].Status)
	assert.Equal(t, "0.250×", sc.Targets[2].Ratio)
	assert.Len(t, sc.Tables, 2)
	tables, ts := lbBench(t.Context(), env)
	require.Len(t, tables, 1)
	require.Len(t, ts, 4)
	assert.Equal(t, report.StatusPass, ts[0].Status)
	assert.Equal(t, report.StatusFail, ts[3].Status, "propagation p99 150 ms > 100 ms")

	env.LoaderBench = filepath.Join(dir, "missing")
	sc, err = runLoader(t.Context(), env, nil)
	require.NoError(t, err)
	assert.Equal(t, report.StatusNotMeasured, sc.Targets[0].Status)
}
