package report

import (
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
	dir := t.TempDir()
	if d := os.Getenv("ASFBENCH_KEEP_REPORT"); d != "" {
		dir = d // keep the output to look at the charts
	}
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
