// Package report writes a bench run as Markdown tables and PNG charts (gonum plot), plus the
// raw numbers as JSON.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/athenaserving/asf/tools/asfbench"
)

// Report is one bench run.
type Report struct {
	Mode      string
	Started   time.Time
	Duration  time.Duration
	Machine   Machine
	Scenarios []*Scenario
	// Notes are printed under the title (what was not measured, and why).
	Notes []string
	// CPUCharts are drawn by Write and shown under the targets.
	CPUCharts []CPUChart
	// Charts are the PNG file names of CPUCharts that Write drew, relative to the report.
	Charts []string
}

// Machine describes where the run happened.
type Machine struct {
	CPU, Kernel, GoVersion string
	Cores                  int
	MemoryGiB              float64
}

// Scenario is one table (and its charts).
type Scenario struct {
	ID, Title, Description string
	// XLabel names the load axis (concurrency, sessions).
	XLabel string
	// Baseline names the main baseline, for the table header; rows name theirs in Row.VS.
	Baseline string
	Rows     []*Row
	// Findings are short result lines (for example the largest session count held).
	Findings []string
	Notes    []string
	// Charts are PNG file names relative to the report, filled by Write.
	Charts []string
	// Tables are extra tables printed after the rows (figures measured by helper programs).
	Tables []Table
	// Targets are the scenario's figures checked against their targets; the report also
	// gathers every scenario's targets into one summary table at the top.
	Targets []Target
}

// Table is a free-form Markdown table.
type Table struct {
	Title  string
	Header []string
	Rows   [][]string
}

// Status values of a Target.
const (
	StatusPass        = "pass"
	StatusFail        = "FAIL"
	StatusInfo        = "info"
	StatusNotMeasured = "not measured"
)

// Target is one figure next to its baseline and its target.
type Target struct {
	// Metric names the figure (for example "webgate once p50, c=1").
	Metric string
	// Measured, Baseline and Ratio are formatted values ("–" when there is none).
	Measured, Baseline, Ratio string
	// Target states the bound ("≤ 0.5 ms"); empty for figures reported without one.
	Target string
	// Status is pass, FAIL, info (no target) or not measured.
	Status string
	// CPU is the CPU per request (or per frame) of each process group behind the figure;
	// nil for figures measured by a helper program in its own process.
	CPU *CPU `json:",omitempty"`
}

// CheckMax makes a Target that passes when measured ≤ limit.
func CheckMax(metric string, measured, limit float64, format string) Target {
	return check(metric, measured, format, "≤ "+fmt.Sprintf(format, limit), measured <= limit)
}

// CheckMin makes a Target that passes when measured ≥ limit.
func CheckMin(metric string, measured, limit float64, format string) Target {
	return check(metric, measured, format, "≥ "+fmt.Sprintf(format, limit), measured >= limit)
}

func check(metric string, measured float64, format, target string, ok bool) Target {
	st := StatusFail
	if ok {
		st = StatusPass
	}
	return Target{Metric: metric, Measured: fmt.Sprintf(format, measured), Baseline: "–", Ratio: "–", Target: target, Status: st}
}

// Info makes a Target without a bound.
func Info(metric, measured string) Target {
	return Target{Metric: metric, Measured: measured, Baseline: "–", Ratio: "–", Target: "–", Status: StatusInfo}
}

// NotMeasured makes a Target that could not be measured, saying why.
func NotMeasured(metric, target, why string) Target {
	return Target{Metric: metric, Measured: "not measured: " + why, Baseline: "–", Ratio: "–", Target: target, Status: StatusNotMeasured}
}

// WithBaseline sets the baseline and the measured/baseline ratio (ratio "–" when baseline is 0).
func (t Target) WithBaseline(baseline string, ratio float64) Target {
	t.Baseline = baseline
	t.Ratio = "–"
	if ratio != 0 && !math.IsNaN(ratio) && !math.IsInf(ratio, 0) {
		t.Ratio = fmt.Sprintf("%.3f×", ratio)
	}
	return t
}

// WithCPU sets the CPU behind the figure.
func (t Target) WithCPU(c *CPU) Target {
	t.CPU = c
	return t
}

// Row is one system at one load.
type Row struct {
	System string
	X      float64
	Load   string
	// NotAvailable, when set, says why the system was not measured; Result is then nil.
	NotAvailable string
	Result       *asfbench.Result
	// CPUPer1k is CPU seconds per 1000 successful requests, per service (process group).
	CPUPer1k map[string]float64
	// PeakRSS is the largest VmHWM in bytes per service during the row.
	PeakRSS map[string]int64
	// VS names the system this row is compared with at the same X (empty: no ratio).
	VS string
}

// ByX returns the rows of system in load order.
func (s *Scenario) ByX(system string) []*Row {
	var out []*Row
	for _, r := range s.Rows {
		if r.System == system && r.Result != nil {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].X < out[j].X })
	return out
}

// Systems lists the systems in first-appearance order.
func (s *Scenario) Systems() []string {
	var out []string
	seen := map[string]bool{}
	for _, r := range s.Rows {
		if !seen[r.System] {
			seen[r.System] = true
			out = append(out, r.System)
		}
	}
	return out
}

func (s *Scenario) baselineRow(system string, x float64) *Row {
	for _, r := range s.Rows {
		if r.System == system && r.X == x && r.Result != nil {
			return r
		}
	}
	return nil
}

// Write writes report.md, report.json and the charts into dir.
func (r *Report) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, s := range r.Scenarios {
		charts, err := drawCharts(dir, s)
		if err != nil {
			return fmt.Errorf("charts for %s: %w", s.ID, err)
		}
		s.Charts = charts
	}
	r.Charts = nil
	for _, c := range r.CPUCharts {
		ok, err := drawCPUChart(dir, c)
		if err != nil {
			return fmt.Errorf("chart %s: %w", c.File, err)
		}
		if ok {
			r.Charts = append(r.Charts, c.File)
		}
	}
	f, err := os.Create(filepath.Join(dir, "report.md"))
	if err != nil {
		return err
	}
	r.Markdown(f)
	if err := f.Close(); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "report.json"), b, 0o644)
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond))
}

func ratio(a, b float64) string {
	if b == 0 || math.IsNaN(a/b) {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func mib(b int64) string { return fmt.Sprintf("%.0f", float64(b)/(1<<20)) }

// Markdown writes the report body.
func (r *Report) Markdown(w io.Writer) {
	fmt.Fprintf(w, "# Athena Serving bench report (%s)\n\n", r.Mode)
	fmt.Fprintf(w, "Started %s, took %s.  \n", r.Started.UTC().Format(time.RFC3339), r.Duration.Round(time.Second))
	m := r.Machine
	fmt.Fprintf(w, "Machine: %s, %d cores, %.0f GiB, Linux %s, %s. The load generator shares the machine with the servers.\n\n",
		m.CPU, m.Cores, m.MemoryGiB, m.Kernel, m.GoVersion)
	for _, n := range r.Notes {
		fmt.Fprintf(w, "- %s\n", n)
	}
	if len(r.Notes) > 0 {
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "Latency in milliseconds, from the intended send time. Throughput counts successful requests per second. "+
		"CPU is CPU-seconds per 1000 successful requests (frames on WebSocket rows) of each process group (asfbench = the load generator; "+
		"loader includes its engine worker processes). "+
		"Peak RSS is VmHWM in MiB (largest process of the group). Ratios compare each system with the scenario's baseline at the same load: "+
		"throughput ratio (higher is better) and p99 ratio (lower is better). `stable` means the last windows agreed within the stability rule.")
	fmt.Fprintln(w)
	r.targetsMarkdown(w)
	for _, s := range r.Scenarios {
		s.markdown(w)
	}
}

// Targets gathers every scenario's targets in scenario order.
func (r *Report) Targets() []Target {
	var out []Target
	for _, s := range r.Scenarios {
		out = append(out, s.Targets...)
	}
	return out
}

func (r *Report) targetsMarkdown(w io.Writer) {
	ts := r.Targets()
	if len(ts) == 0 {
		return
	}
	n := map[string]int{}
	for _, t := range ts {
		n[t.Status]++
	}
	fmt.Fprintf(w, "## Targets\n\nEvery figure below was measured in this run. %d pass, %d fail, %d not measured, %d reported without a target.\n\n",
		n[StatusPass], n[StatusFail], n[StatusNotMeasured], n[StatusInfo])
	writeTargets(w, ts)
	writeImages(w, r.Charts)
}

func writeTargets(w io.Writer, ts []Target) {
	fmt.Fprintln(w, "| figure | measured | baseline | ratio | target | status |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, t := range ts {
		tg := t.Target
		if tg == "" {
			tg = "–"
		}
		st := t.Status
		if st == StatusPass || st == StatusFail {
			st = "**" + st + "**"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", t.Metric, t.Measured, t.Baseline, t.Ratio, tg, st)
	}
	fmt.Fprintln(w)
	writeCPU(w, ts)
}

// writeImages shows the PNG files.
func writeImages(w io.Writer, files []string) {
	for _, c := range files {
		fmt.Fprintf(w, "![%s](%s)\n", c, c)
	}
	if len(files) > 0 {
		fmt.Fprintln(w)
	}
}

func writeTable(w io.Writer, t Table) {
	if t.Title != "" {
		fmt.Fprintf(w, "%s\n\n", t.Title)
	}
	fmt.Fprintf(w, "| %s |\n", strings.Join(t.Header, " | "))
	fmt.Fprintf(w, "|%s\n", strings.Repeat("---|", len(t.Header)))
	for _, r := range t.Rows {
		fmt.Fprintf(w, "| %s |\n", strings.Join(r, " | "))
	}
	fmt.Fprintln(w)
}

func (s *Scenario) markdown(w io.Writer) {
	fmt.Fprintf(w, "## %s\n\n%s\n\n", s.Title, s.Description)
	if len(s.Rows) > 0 {
		s.rowsMarkdown(w)
	}
	for _, t := range s.Tables {
		writeTable(w, t)
	}
	if len(s.Targets) > 0 {
		writeTargets(w, s.Targets)
	}
	for _, f := range s.Findings {
		fmt.Fprintf(w, "- %s\n", f)
	}
	for _, n := range s.Notes {
		fmt.Fprintf(w, "- %s\n", n)
	}
	if len(s.Findings)+len(s.Notes) > 0 {
		fmt.Fprintln(w)
	}
	writeImages(w, s.Charts)
}

func (s *Scenario) rowsMarkdown(w io.Writer) {
	fmt.Fprintf(w, "| system | %s | req/s | p50 | p90 | p99 | max | errors | stable | CPU s/1k | peak RSS MiB | timing µs (webgate/atom/loader/engine) | vs baseline: req/s | vs baseline: p99 |\n",
		s.XLabel)
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range s.Rows {
		if r.Result == nil {
			fmt.Fprintf(w, "| %s | %s | not available: %s | | | | | | | | | | | |\n", r.System, r.Load, r.NotAvailable)
			continue
		}
		sum := r.Result.Summary
		errs := fmt.Sprintf("%d", sum.Errors)
		if sum.Errors > 0 {
			errs = fmt.Sprintf("%d (%.2f%%: %s)", sum.Errors, 100*float64(sum.Errors)/float64(max(sum.Requests, 1)), strings.Join(sum.TopErrors(2), ", "))
		}
		timing := "–"
		if sum.HasTiming {
			t := sum.Timing
			timing = fmt.Sprintf("%d/%d/%d/%d", t.Webgate.Microseconds(), t.Atom.Microseconds(), t.Loader.Microseconds(), t.Engine.Microseconds())
		}
		vsT, vsP := "–", "–"
		if b := s.baselineRow(r.VS, r.X); b != nil && r.VS != "" {
			vsT = ratio(sum.Throughput, b.Result.Summary.Throughput)
			vsP = ratio(float64(sum.P99), float64(b.Result.Summary.P99))
		}
		stable := "no"
		if r.Result.Stable {
			stable = "yes"
		}
		fmt.Fprintf(w, "| %s | %s | %.0f | %s | %s | %s | %s | %s | %s (%d w) | %s | %s | %s | %s | %s |\n",
			r.System, r.Load, sum.Throughput, ms(sum.P50), ms(sum.P90), ms(sum.P99), ms(sum.Max), errs,
			stable, len(r.Result.Windows), kvFloat(r.CPUPer1k), kvMiB(r.PeakRSS), timing, vsT, vsP)
	}
	fmt.Fprintln(w)
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func kvFloat(m map[string]float64) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s %.3f", k, m[k]))
	}
	if len(parts) == 0 {
		return "–"
	}
	return strings.Join(parts, ", ")
}

func kvMiB(m map[string]int64) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, k+" "+mib(m[k]))
	}
	if len(parts) == 0 {
		return "–"
	}
	return strings.Join(parts, ", ")
}
