package report

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/athenaserving/asf/tools/asfbench"
)

func result(tput float64, p50 time.Duration) *asfbench.Result {
	var h asfbench.Histogram
	for i := 0; i < 100; i++ {
		h.Record(p50 * time.Duration(i+1) / 50)
	}
	return &asfbench.Result{Stable: true, Windows: []asfbench.Window{{Duration: time.Second, OK: uint64(tput), Hist: &h}},
		Summary: asfbench.Summary{Requests: uint64(tput), Throughput: tput, P50: h.Quantile(.5), P90: h.Quantile(.9), P99: h.Quantile(.99), Max: h.Max()}}
}

// outDir is a temporary directory, or $ASFBENCH_KEEP_REPORT to keep the output and look
// at the charts.
func outDir(t *testing.T) string {
	if d := os.Getenv("ASFBENCH_KEEP_REPORT"); d != "" {
		return d
	}
	return t.TempDir()
}

func TestWriteTablesRatiosAndCharts(t *testing.T) {
	sc := &Scenario{ID: "once", Title: "1. Once", XLabel: "concurrency", Baseline: "bare"}
	for _, c := range []float64{1, 16, 64} {
		sc.Rows = append(sc.Rows,
			&Row{System: "suite", X: c, Load: "c", Result: result(1000*c, time.Duration(c)*time.Millisecond), VS: "bare",
				CPUPer1k: map[string]float64{"webgate": 0.1}, PeakRSS: map[string]int64{"webgate": 30 << 20}},
			&Row{System: "bare", X: c, Load: "c", Result: result(2000*c, time.Duration(c)*time.Millisecond/2)})
	}
	sc.Rows = append(sc.Rows, &Row{System: "python", X: 1, Load: "1", NotAvailable: "not yet"})
	r := &Report{Mode: "test", Started: time.Unix(0, 0), Scenarios: []*Scenario{sc}, Notes: []string{"a note"}}
	dir := outDir(t)
	require.NoError(t, r.Write(dir))
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	require.NoError(t, err)
	s := string(md)
	assert.Contains(t, s, "| suite | c | 16000 |")
	assert.Contains(t, s, "0.50×") // throughput half the baseline's
	assert.Contains(t, s, "2.00×") // p99 double
	assert.Contains(t, s, "not available: not yet")
	assert.Contains(t, s, "webgate 30")
	assert.Contains(t, s, "![once-latency.png](once-latency.png)")
	for _, f := range []string{"once-latency.png", "once-throughput.png", "report.json"} {
		st, err := os.Stat(filepath.Join(dir, f))
		require.NoError(t, err)
		assert.Greater(t, st.Size(), int64(1000), f)
	}
	png, _ := os.ReadFile(filepath.Join(dir, "once-latency.png"))
	assert.True(t, strings.HasPrefix(string(png), "\x89PNG"))
}

func TestTargetsSummary(t *testing.T) {
	a := &Scenario{ID: "a", Title: "A", Targets: []Target{
		CheckMax("latency", 0.4, 0.5, "%.2f ms").WithBaseline("bare 0.10 ms", 4),
		CheckMin("share", 0.2, 0.25, "%.2f"),
	}}
	b := &Scenario{ID: "b", Title: "B", Targets: []Target{Info("p99", "3 ms"), NotMeasured("picks", "≥ 50000", "no binary")},
		Tables: []Table{{Title: "extra", Header: []string{"x", "y"}, Rows: [][]string{{"1", "2"}}}}}
	r := &Report{Mode: "test", Started: time.Unix(0, 0), Scenarios: []*Scenario{a, b}}
	var sb strings.Builder
	r.Markdown(&sb)
	s := sb.String()
	assert.Contains(t, s, "1 pass, 1 fail, 1 not measured, 1 reported without a target")
	assert.Contains(t, s, "| latency | 0.40 ms | bare 0.10 ms | 4.000× | ≤ 0.50 ms | **pass** |")
	assert.Contains(t, s, "| share | 0.20 | – | – | ≥ 0.25 | **FAIL** |")
	assert.Contains(t, s, "| picks | not measured: no binary | – | – | ≥ 50000 | not measured |")
	assert.Contains(t, s, "| x | y |\n|---|---|\n| 1 | 2 |")
	assert.NotContains(t, s, "| system |", "scenarios without rows print no rows table")
}

// cpuRow is a measured row whose process groups used cpu seconds per 1000 requests.
func cpuRow(system string, x float64, cpu map[string]float64) *Row {
	return &Row{System: system, X: x, Load: "c", Result: result(1000, time.Millisecond), CPUPer1k: cpu}
}

func TestNewCPU(t *testing.T) {
	suite := cpuRow("suite", 64, map[string]float64{"webgate": 0.088, "atom": 0.077, "loader": 0.042, "lbclient": 0.015, "polaris": 0.003, "asfbench": 0.05})
	bare := cpuRow("bare Go echo", 64, map[string]float64{"baseline": 0.032, "asfbench": 0.03})
	c := NewCPU(PerRequest, "c=64", suite, bare)
	require.NotNil(t, c)
	assert.InDelta(t, 88.0, c.Services["webgate"], 1e-9, "s per 1000 requests → µs per request")
	assert.NotContains(t, c.Services, "asfbench", "the load generator is not the measured system")
	assert.InDelta(t, 225.0, c.Sum, 1e-9)
	assert.InDelta(t, 50.0, c.Bench, 1e-9)
	assert.Equal(t, "bare Go echo", c.Baseline)
	assert.InDelta(t, 32.0, c.BaselineSum, 1e-9, "the baseline's server only")

	only := NewCPU(PerFrame, "100 sessions", nil, bare)
	require.NotNil(t, only, "a baseline alone still has a bar")
	assert.Empty(t, only.Services)
	assert.Nil(t, NewCPU(PerRequest, "c=1", nil, nil))
	assert.Nil(t, NewCPU(PerRequest, "c=1", &Row{System: "suite", NotAvailable: "no suite"}, nil))
}

// cpuReport is a synthetic report with targets that carry CPU and the two CPU charts.
func cpuReport() *Report {
	suite := map[string]float64{"webgate": 0.088, "atom": 0.077, "loader": 0.042, "lbclient": 0.015, "polaris": 0.003, "asfbench": 0.05}
	bare := map[string]float64{"baseline": 0.032, "asfbench": 0.03}
	c64 := NewCPU(PerRequest, "c=64", cpuRow("suite", 64, suite), cpuRow("bare Go echo", 64, bare))
	c1 := NewCPU(PerRequest, "c=1", cpuRow("suite", 1, suite), cpuRow("bare Go echo", 1, bare))
	py := NewCPU(PerRequest, "c=64", cpuRow("suite", 64, suite), cpuRow("FastAPI+uvicorn", 64, map[string]float64{"uvicorn": 0.1}))
	frame := NewCPU(PerFrame, "1000 sessions", cpuRow("suite", 1000, suite), cpuRow("bare Go WS echo", 1000, bare))
	sc := &Scenario{ID: "once", Title: "1. Once", Targets: []Target{
		CheckMin("share, c=64", 0.36, 0.35, "%.3f").WithCPU(c64),
		Info("no CPU", "1 µs"),
	}}
	return &Report{Mode: "test", Started: time.Unix(0, 0), Scenarios: []*Scenario{sc}, CPUCharts: []CPUChart{
		{File: "cpu-per-request.png", Title: "CPU per request", Unit: PerRequest,
			Bars: []CPUBar{{Label: "once c=1", CPU: *c1}, {Label: "once c=64", CPU: *c64}, {Label: "python c=64", CPU: *py}}},
		{File: "cpu-per-frame.png", Title: "CPU per frame", Unit: PerFrame, Bars: []CPUBar{{Label: "1000 sessions", CPU: *frame}}},
		{File: "empty.png", Title: "no bars", Unit: PerFrame},
	}}
}

func TestCPUColumnsAndCharts(t *testing.T) {
	r := cpuReport()
	dir := outDir(t)
	require.NoError(t, r.Write(dir))
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	require.NoError(t, err)
	s := string(md)
	head := "| figure | per | load | webgate | atom | loader | lbclient | polaris | sum | asfbench | baseline | sum / baseline |"
	assert.Contains(t, s, head)
	assert.Contains(t, s, "| share, c=64 | request | c=64 | 88.0 | 77.0 | 42.0 | 15.0 | 3.0 | **225.0** | 50.0 | bare Go echo 32.0 | 7.03× |")
	assert.NotContains(t, s, "| no CPU | request", "figures without CPU have no CPU row")
	targets := s[strings.Index(s, "## Targets"):strings.Index(s, "## 1. Once")]
	assert.Contains(t, targets, head, "the CPU table sits under the targets table")
	assert.Contains(t, targets, "![cpu-per-request.png](cpu-per-request.png)")
	assert.Contains(t, targets, "![cpu-per-frame.png](cpu-per-frame.png)")
	assert.NotContains(t, s, "empty.png", "a chart without bars is not drawn")
	assert.Equal(t, []string{"cpu-per-request.png", "cpu-per-frame.png"}, r.Charts)
	for _, f := range r.Charts {
		png, err := os.ReadFile(filepath.Join(dir, f))
		require.NoError(t, err)
		assert.True(t, strings.HasPrefix(string(png), "\x89PNG"), f)
		assert.Greater(t, len(png), 1000, f)
	}
	_, err = os.Stat(filepath.Join(dir, "empty.png"))
	assert.True(t, os.IsNotExist(err))
}

func TestJSONCarriesCPU(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, cpuReport().Write(dir))
	b, err := os.ReadFile(filepath.Join(dir, "report.json"))
	require.NoError(t, err)
	var got struct {
		Charts    []string
		CPUCharts []struct {
			File string
			Unit string
			Bars []struct {
				Label string
				CPU   CPU
			}
		}
		Scenarios []struct {
			Targets []map[string]any
		}
	}
	require.NoError(t, json.Unmarshal(b, &got))
	assert.Equal(t, []string{"cpu-per-request.png", "cpu-per-frame.png"}, got.Charts)
	require.Len(t, got.CPUCharts, 3)
	assert.Equal(t, "python c=64", got.CPUCharts[0].Bars[2].Label)
	assert.InDelta(t, 100.0, got.CPUCharts[0].Bars[2].CPU.BaselineSum, 1e-9)
	assert.Equal(t, PerFrame, got.CPUCharts[1].Bars[0].CPU.Unit)
	ts := got.Scenarios[0].Targets
	require.Len(t, ts, 2)
	cpu, ok := ts[0]["CPU"].(map[string]any)
	require.True(t, ok, "the target carries its CPU: %v", ts[0])
	assert.InDelta(t, 88.0, cpu["Services"].(map[string]any)["webgate"], 1e-9)
	for _, k := range []string{"Unit", "At", "System", "Sum", "Bench", "Baseline", "BaselineSum"} {
		assert.Contains(t, cpu, k)
	}
	assert.NotContains(t, ts[1], "CPU", "no CPU, no field")
}
