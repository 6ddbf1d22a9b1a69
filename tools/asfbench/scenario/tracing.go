package scenario

import (
	"context"
	"fmt"

	"github.com/athenaserving/asf/tools/asfbench/report"
)

// tracingCPURatio bounds the suite's CPU per once request with tracing at 1 % sampling
// against the same load with tracing off.
const tracingCPURatio = 1.05

// runTracing is scenario 7: the once path with tracing off, at 1 % and at 100 % sampling.
// Three suites run side by side — one without a trace endpoint, two exporting to their own
// Jaeger with webgate's trace-sample-rate at 0.01 and 1 — and the same once load is
// measured on each, rotating the order every round; the figures are the suite's CPU per
// request traced over untraced.
func runTracing(ctx context.Context, env *Env, _ Suite) (*report.Scenario, error) {
	p := env.Profile
	c := p.TracingConcurrency
	metric := fmt.Sprintf("once CPU per request with tracing at 1 %% / off, c=%d (whole suite)", c)
	tgt := fmt.Sprintf("≤ %.2f×", tracingCPURatio)
	sc := &report.Scenario{ID: "tracing", Title: "7. Tracing, once path", XLabel: "concurrency", Baseline: "suite tracing off",
		Description: fmt.Sprintf("Three suites side by side: tracing off (no trace endpoint), and tracing on with webgate's "+
			"`trace-sample-rate` at 0.01 and at 1, each exporting OTLP to its own Jaeger (memory storage). The same closed-loop once load "+
			"as scenario 1 (signed ASE once, %d-byte text, c=%d) runs %d times on each, rotating the order every round; CPU per request "+
			"is counted per process group after each warm-up. Jaeger's CPU is listed apart and left out of the suite's total.",
			p.OncePayload, c, p.TracingRounds)}
	if env.StartSuite == nil {
		sc.Targets = []report.Target{report.NotMeasured(metric, tgt, env.suiteWhy())}
		return sc, nil
	}
	if c <= 0 || p.TracingRounds <= 0 {
		sc.Targets = []report.Target{report.NotMeasured(metric, tgt, fmt.Sprintf("not in the %s profile", p.Name))}
		return sc, nil
	}
	off := &variant{name: "off", spec: SuiteSpec{Engine: "echo"}}
	one := &variant{name: "1 %", spec: SuiteSpec{Engine: "echo", Tracing: true, TraceSampleRate: 0.01}}
	all := &variant{name: "100 %", spec: SuiteSpec{Engine: "echo", Tracing: true, TraceSampleRate: 1}}
	vs := []*variant{off, one, all}
	defer stopVariants(vs)
	why, err := startVariants(ctx, env, sc.ID, vs)
	if err != nil || why != "" {
		sc.Targets = []report.Target{report.NotMeasured(metric, tgt, why)}
		return sc, err
	}
	if err := measureVariants(ctx, env, sc, vs, off, c, p.TracingRounds); err != nil {
		return sc, err
	}
	sc.Tables, sc.Targets = tracingFigures(off, one, all, metric, c)
	for _, v := range []*variant{one, all} {
		if f := variantRounds(v, off); f != "" {
			sc.Findings = append(sc.Findings, f)
		}
	}
	return sc, nil
}

// tracingFigures compares the three suites: a table of CPU per request per service and
// the target rows (1 % against off; 100 % for information).
func tracingFigures(off, one, all *variant, metric string, c int) ([]report.Table, []report.Target) {
	var n []any
	for _, v := range []*variant{off, one, all} {
		_, req, _ := v.cpuPerRequest()
		n = append(n, req)
	}
	tbl := variantTable(fmt.Sprintf("CPU ms per once request at c=%d over all rounds (%d requests untraced, %d at 1 %%, %d at 100 %%):",
		append([]any{c}, n...)...), []*variant{off, one, all}, off)
	allCPU := cpuRatioTarget(fmt.Sprintf("once CPU per request with tracing at 100 %% / off, c=%d (whole suite)", c), all, off, 0)
	allCPU.Status, allCPU.Target = report.StatusInfo, "–"
	return []report.Table{tbl}, []report.Target{
		cpuRatioTarget(metric, one, off, tracingCPURatio),
		allCPU,
		throughputInfo(fmt.Sprintf("once throughput with tracing at 1 %% / off, c=%d", c), one, off),
		throughputInfo(fmt.Sprintf("once throughput with tracing at 100 %% / off, c=%d", c), all, off),
	}
}
