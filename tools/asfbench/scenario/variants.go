package scenario

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/athenaserving/asf/tools/asfbench"
	"github.com/athenaserving/asf/tools/asfbench/report"
)

// variant is one of the suites a comparison scenario runs side by side (internal mTLS on
// and off; tracing off, at 1 % and at 100 %) and the rows measured on it.
type variant struct {
	name  string
	spec  SuiteSpec
	suite Suite
	rows  []*report.Row
}

func (v *variant) system(round int) string { return fmt.Sprintf("suite %s r%d", v.name, round+1) }

// cpuPerRequest is each process group's CPU in ms per successful request over every row
// of the variant, weighted by the rows' requests, the requests counted, and the
// throughput averaged over the rows.
func (v *variant) cpuPerRequest() (cpu map[string]float64, requests uint64, throughput float64) {
	cpu = map[string]float64{}
	for _, r := range v.rows {
		var ok uint64
		for _, w := range r.Result.Windows {
			ok += w.OK
		}
		requests += ok
		throughput += r.Result.Summary.Throughput
		for k, val := range r.CPUPer1k { // CPU seconds per 1000 requests = ms per request
			cpu[k] += val * float64(ok)
		}
	}
	for k := range cpu {
		cpu[k] /= float64(max(requests, 1))
	}
	return cpu, requests, throughput / float64(max(len(v.rows), 1))
}

// errors is the failed requests over every row of the variant.
func (v *variant) errors() uint64 {
	var n uint64
	for _, r := range v.rows {
		n += r.Result.Summary.Errors
	}
	return n
}

// notSuite are the process groups a variant's CPU total leaves out: the load generator
// and the trace backend (its cost is the backend's, not the suite's; it is listed apart).
var notSuite = map[string]bool{"asfbench": true, "jaeger": true}

// suiteTotal sums the CPU of the suite's own process groups.
func suiteTotal(cpu map[string]float64) float64 {
	t := 0.0
	for k, val := range cpu {
		if !notSuite[k] {
			t += val
		}
	}
	return t
}

// startVariants starts the suite of every variant; on failure it says why ("" when all
// started). stopVariants stops the ones that started.
func startVariants(ctx context.Context, env *Env, scenarioID string, vs []*variant) (why string, err error) {
	for _, v := range vs {
		env.logf("%s: starting the suite (%s)", scenarioID, v.name)
		spec := v.spec
		spec.LogDir = filepath.Join(env.OutDir, "logs", "suite-"+scenarioID+"-"+strings.ReplaceAll(v.name, " ", "-"))
		s, err := env.StartSuite(ctx, spec)
		if err != nil {
			if ctx.Err() != nil {
				return "", ctx.Err()
			}
			return fmt.Sprintf("the %s suite did not start: %v", v.name, err), nil
		}
		v.suite = s
	}
	return "", nil
}

func stopVariants(vs []*variant) {
	for _, v := range vs {
		if v.suite != nil {
			sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			_ = v.suite.Stop(sctx)
			cancel()
		}
	}
}

// measureVariants runs the once load at concurrency c on every variant, rounds times,
// rotating the order each round (AB BA … for two, ABC BCA CAB … for three) so that the
// machine's drift falls on all of them. Rows of variants other than ref name ref's row of
// the same round as their baseline.
func measureVariants(ctx context.Context, env *Env, sc *report.Scenario, vs []*variant, ref *variant, c, rounds int) error {
	load, x := asfbench.Load{Concurrency: c}, float64(c)
	for round := range rounds {
		for i := range vs {
			v := vs[(i+round)%len(vs)]
			s, vsName := v.suite, ""
			if v != ref {
				vsName = ref.system(round)
			}
			if err := env.measureSide(ctx, sc, env.Profile.Plan, x, load, side{system: v.system(round), vs: vsName, groups: suiteGroups(s),
				target: func() asfbench.Target { return env.onceTarget(s.WebgateURL(), "echo", c) }}); err != nil {
				return err
			}
			v.rows = append(v.rows, sc.Rows[len(sc.Rows)-1])
		}
	}
	return nil
}

// variantRounds states the suite's CPU ratio of each round of v over ref, next to the load
// generator's: its work per request is the same on both, so its ratio shows how far the
// machine alone moves the figure between two measurements.
func variantRounds(v, ref *variant) string {
	var suite, gen []string
	for i := range min(len(v.rows), len(ref.rows)) {
		a, b := v.rows[i].CPUPer1k, ref.rows[i].CPUPer1k
		if t := suiteTotal(b); t > 0 {
			suite = append(suite, fmt.Sprintf("r%d %.3f×", i+1, suiteTotal(a)/t))
		}
		if b["asfbench"] > 0 {
			gen = append(gen, fmt.Sprintf("r%d %.3f×", i+1, a["asfbench"]/b["asfbench"]))
		}
	}
	if len(suite) == 0 {
		return ""
	}
	return fmt.Sprintf("Suite CPU per request, %s / %s, per round: %s; the load generator's own CPU per request "+
		"(the same work on both sides, so the machine's noise): %s.", v.name, ref.name, strings.Join(suite, ", "), strings.Join(gen, ", "))
}

// variantTable is the CPU per request of each process group on every variant and its
// ratio to ref's, with the suite's total, the load generator, the trace backend when one
// ran, and the throughput.
func variantTable(title string, vs []*variant, ref *variant) report.Table {
	cpus := make([]map[string]float64, len(vs))
	tputs := make([]float64, len(vs))
	header := []string{"process group"}
	var refCPU map[string]float64
	var refTput float64
	for i, v := range vs {
		cpus[i], _, tputs[i] = v.cpuPerRequest()
		header = append(header, v.name)
		if v == ref {
			refCPU, refTput = cpus[i], tputs[i]
		}
	}
	for _, v := range vs {
		if v != ref {
			header = append(header, v.name+" / "+ref.name)
		}
	}
	ratioCell := func(a, b float64) string {
		if b <= 0 {
			return "–"
		}
		return fmt.Sprintf("%.3f×", a/b)
	}
	line := func(label string, val func(map[string]float64, float64) float64, format string) []string {
		r := []string{label}
		for i := range vs {
			r = append(r, fmt.Sprintf(format, val(cpus[i], tputs[i])))
		}
		for i, v := range vs {
			if v != ref {
				r = append(r, ratioCell(val(cpus[i], tputs[i]), val(refCPU, refTput)))
			}
		}
		return r
	}
	tbl := report.Table{Title: title, Header: header}
	for _, k := range report.SuiteServices {
		if _, ok := refCPU[k]; !ok {
			continue
		}
		tbl.Rows = append(tbl.Rows, line(k, func(c map[string]float64, _ float64) float64 { return c[k] }, "%.4f"))
	}
	total := line("**suite**", func(c map[string]float64, _ float64) float64 { return suiteTotal(c) }, "%.4f")
	for i := range total {
		total[i] = "**" + strings.Trim(total[i], "*") + "**"
	}
	tbl.Rows = append(tbl.Rows, total)
	for _, k := range []string{"jaeger", "asfbench"} {
		present := false
		for _, c := range cpus {
			_, ok := c[k]
			present = present || ok
		}
		if present {
			label := map[string]string{"jaeger": "jaeger (trace backend)", "asfbench": "asfbench (load generator)"}[k]
			tbl.Rows = append(tbl.Rows, line(label, func(c map[string]float64, _ float64) float64 { return c[k] }, "%.4f"))
		}
	}
	tbl.Rows = append(tbl.Rows, line("req/s (mean of rounds)", func(_ map[string]float64, t float64) float64 { return t }, "%.0f"))
	return tbl
}

// cpuRatioTarget is the target row "v's suite CPU per request / ref's ≤ bound" (errors on
// either side fail it).
func cpuRatioTarget(metric string, v, ref *variant, bound float64) report.Target {
	tgt := fmt.Sprintf("≤ %.2f×", bound)
	cpuV, nV, _ := v.cpuPerRequest()
	cpuRef, nRef, _ := ref.cpuPerRequest()
	totV, totRef := suiteTotal(cpuV), suiteTotal(cpuRef)
	if totRef <= 0 || nV == 0 || nRef == 0 {
		return report.NotMeasured(metric, tgt, "no CPU counted")
	}
	ratio := totV / totRef
	t := report.CheckMax(metric, ratio, bound, "%.3f×")
	t.Target = tgt
	t.Measured = fmt.Sprintf("%.3f ms %s", totV, v.name)
	if errs := v.errors() + ref.errors(); errs > 0 {
		t.Status = report.StatusFail
		t.Measured += fmt.Sprintf(" (%d errors)", errs)
	}
	return t.WithBaseline(fmt.Sprintf("%s %.3f ms", ref.name, totRef), ratio)
}

// throughputInfo is the information row "v's throughput / ref's".
func throughputInfo(metric string, v, ref *variant) report.Target {
	_, _, tV := v.cpuPerRequest()
	_, _, tRef := ref.cpuPerRequest()
	return report.Info(metric, fmt.Sprintf("%.0f req/s", tV)).WithBaseline(fmt.Sprintf("%s %.0f req/s", ref.name, tRef), tV/max(tRef, 1))
}
