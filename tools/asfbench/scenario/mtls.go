package scenario

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/athenaserving/asf/tools/asfbench"
	"github.com/athenaserving/asf/tools/asfbench/report"
)

// mtlsCPURatio bounds the suite's CPU per once request with internal mutual TLS against
// the same load in plaintext. Internal connections are long-lived, so mTLS costs record
// encryption on every hop but never a handshake per request.
const mtlsCPURatio = 1.10

// mtlsServices are the suite's process groups in the order the mTLS table lists them.
var mtlsServices = []string{"webgate", "atom", "loader", "lbclient", "polaris"}

// mtlsSide is one of the two suites of the mTLS scenario and its measured rows.
type mtlsSide struct {
	name     string // "mTLS" or "plaintext"
	insecure bool
	suite    Suite
	rows     []*report.Row
}

func (m *mtlsSide) system(round int) string { return fmt.Sprintf("suite %s r%d", m.name, round+1) }

// cpuPerRequest is each process group's CPU in ms per successful request over every row
// of the side, weighted by the rows' requests, the requests counted, and the throughput
// averaged over the rows.
func (m *mtlsSide) cpuPerRequest() (cpu map[string]float64, requests uint64, throughput float64) {
	cpu = map[string]float64{}
	for _, r := range m.rows {
		var ok uint64
		for _, w := range r.Result.Windows {
			ok += w.OK
		}
		requests += ok
		throughput += r.Result.Summary.Throughput
		for k, v := range r.CPUPer1k { // CPU seconds per 1000 requests = ms per request
			cpu[k] += v * float64(ok)
		}
	}
	for k := range cpu {
		cpu[k] /= float64(max(requests, 1))
	}
	return cpu, requests, throughput / float64(max(len(m.rows), 1))
}

// suiteTotal sums the CPU of the suite's process groups (not the load generator).
func suiteTotal(cpu map[string]float64) float64 {
	t := 0.0
	for k, v := range cpu {
		if k != "asfbench" {
			t += v
		}
	}
	return t
}

// runMTLS is scenario 6: the once path with internal mutual TLS on and off. Two suites
// run side by side — one with mutual TLS on every gRPC hop, one started insecure — and
// the same once load is measured on each, alternating (ABBA) so that the machine's drift
// falls on both; the figure is the suite's CPU per request with mTLS over plaintext.
func runMTLS(ctx context.Context, env *Env, _ Suite) (*report.Scenario, error) {
	p := env.Profile
	c := p.MTLSConcurrency
	metric := fmt.Sprintf("once CPU per request with internal mTLS / plaintext, c=%d (whole suite)", c)
	tgt := fmt.Sprintf("≤ %.2f×", mtlsCPURatio)
	sc := &report.Scenario{ID: "mtls", Title: "6. Internal mTLS, once path", XLabel: "concurrency", Baseline: "suite plaintext",
		Description: fmt.Sprintf("Two suites side by side: one with mutual TLS on every gRPC hop (webgate → atom → lbclient, loader; "+
			"everything → polaris), one started `insecure` (plaintext gRPC). The same closed-loop once load as scenario 1 (signed ASE "+
			"once, %d-byte text, c=%d) runs %d times on each, alternating (mTLS, plaintext, plaintext, mTLS, …); CPU per request is "+
			"counted per process group after each warm-up. Internal connections are long-lived: the handshakes happen during the "+
			"warm-up, so the difference is the record encryption of every hop.", p.OncePayload, c, p.MTLSRounds)}
	if env.StartSuite == nil {
		sc.Targets = []report.Target{report.NotMeasured(metric, tgt, env.suiteWhy())}
		return sc, nil
	}
	if c <= 0 || p.MTLSRounds <= 0 {
		sc.Targets = []report.Target{report.NotMeasured(metric, tgt, fmt.Sprintf("not in the %s profile", p.Name))}
		return sc, nil
	}
	sides := []*mtlsSide{{name: "mTLS"}, {name: "plaintext", insecure: true}}
	defer func() {
		for _, sd := range sides {
			if sd.suite != nil {
				sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				_ = sd.suite.Stop(sctx)
				cancel()
			}
		}
	}()
	for _, sd := range sides {
		env.logf("mtls: starting the suite (%s)", sd.name)
		s, err := env.StartSuite(ctx, SuiteSpec{Engine: "echo", Insecure: sd.insecure,
			LogDir: filepath.Join(env.OutDir, "logs", "suite-"+sd.name)})
		if err != nil {
			if ctx.Err() != nil {
				return sc, ctx.Err()
			}
			why := fmt.Sprintf("the %s suite did not start: %v", sd.name, err)
			sc.Targets = []report.Target{report.NotMeasured(metric, tgt, why)}
			return sc, nil
		}
		sd.suite = s
	}
	load, x := asfbench.Load{Concurrency: c}, float64(c)
	for round := range p.MTLSRounds {
		order := []*mtlsSide{sides[0], sides[1]}
		if round%2 == 1 {
			slices.Reverse(order)
		}
		for _, sd := range order {
			s := sd.suite
			vs := ""
			if !sd.insecure {
				vs = sides[1].system(round)
			}
			if err := env.measureSide(ctx, sc, p.Plan, x, load, side{system: sd.system(round), vs: vs, groups: suiteGroups(s),
				target: func() asfbench.Target { return env.onceTarget(s.WebgateURL(), "echo", c) }}); err != nil {
				return sc, err
			}
			sd.rows = append(sd.rows, sc.Rows[len(sc.Rows)-1])
		}
	}
	sc.Tables, sc.Targets = mtlsFigures(sides[0], sides[1], metric, c)
	sc.Findings = mtlsRounds(sides[0], sides[1])
	return sc, nil
}

// mtlsRounds states the suite's CPU ratio of each round, next to the load generator's:
// its work per request is the same on both sides, so its ratio shows how far the machine
// alone moves the figure between two measurements.
func mtlsRounds(on, off *mtlsSide) []string {
	var suite, gen []string
	for i := range min(len(on.rows), len(off.rows)) {
		a, b := on.rows[i].CPUPer1k, off.rows[i].CPUPer1k
		if t := suiteTotal(b); t > 0 {
			suite = append(suite, fmt.Sprintf("r%d %.3f×", i+1, suiteTotal(a)/t))
		}
		if b["asfbench"] > 0 {
			gen = append(gen, fmt.Sprintf("r%d %.3f×", i+1, a["asfbench"]/b["asfbench"]))
		}
	}
	if len(suite) == 0 {
		return nil
	}
	return []string{fmt.Sprintf("Suite CPU per request, mTLS / plaintext, per round: %s; the load generator's own CPU per request "+
		"(the same work on both sides, so the machine's noise): %s.", strings.Join(suite, ", "), strings.Join(gen, ", "))}
}

// mtlsFigures compares the two sides: a table of CPU per request per service and the
// target row.
func mtlsFigures(on, off *mtlsSide, metric string, c int) ([]report.Table, []report.Target) {
	cpuOn, nOn, tputOn := on.cpuPerRequest()
	cpuOff, nOff, tputOff := off.cpuPerRequest()
	tbl := report.Table{
		Title:  fmt.Sprintf("CPU ms per once request at c=%d over all rounds (%d requests with mTLS, %d in plaintext):", c, nOn, nOff),
		Header: []string{"process group", "mTLS", "plaintext", "mTLS / plaintext"},
	}
	ratioCell := func(a, b float64) string {
		if b <= 0 {
			return "–"
		}
		return fmt.Sprintf("%.3f×", a/b)
	}
	for _, k := range mtlsServices {
		if _, ok := cpuOn[k]; !ok {
			continue
		}
		tbl.Rows = append(tbl.Rows, []string{k, fmt.Sprintf("%.4f", cpuOn[k]), fmt.Sprintf("%.4f", cpuOff[k]), ratioCell(cpuOn[k], cpuOff[k])})
	}
	totOn, totOff := suiteTotal(cpuOn), suiteTotal(cpuOff)
	tbl.Rows = append(tbl.Rows,
		[]string{"**suite**", fmt.Sprintf("**%.4f**", totOn), fmt.Sprintf("**%.4f**", totOff), "**" + ratioCell(totOn, totOff) + "**"},
		[]string{"asfbench (load generator)", fmt.Sprintf("%.4f", cpuOn["asfbench"]), fmt.Sprintf("%.4f", cpuOff["asfbench"]), ratioCell(cpuOn["asfbench"], cpuOff["asfbench"])},
		[]string{"req/s (mean of rounds)", fmt.Sprintf("%.0f", tputOn), fmt.Sprintf("%.0f", tputOff), ratioCell(tputOn, tputOff)})
	tgt := fmt.Sprintf("≤ %.2f×", mtlsCPURatio)
	if totOff <= 0 || nOn == 0 || nOff == 0 {
		return []report.Table{tbl}, []report.Target{report.NotMeasured(metric, tgt, "no CPU counted")}
	}
	ratio := totOn / totOff
	t := report.CheckMax(metric, ratio, mtlsCPURatio, "%.3f×")
	t.Target = tgt
	t.Measured = fmt.Sprintf("%.3f ms with mTLS", totOn)
	var errs uint64
	for _, sd := range []*mtlsSide{on, off} {
		for _, r := range sd.rows {
			errs += r.Result.Summary.Errors
		}
	}
	if errs > 0 {
		t.Status = report.StatusFail
		t.Measured += fmt.Sprintf(" (%d errors)", errs)
	}
	t = t.WithBaseline(fmt.Sprintf("plaintext %.3f ms", totOff), ratio)
	thr := report.Info(fmt.Sprintf("once throughput with internal mTLS / plaintext, c=%d", c), fmt.Sprintf("%.0f req/s", tputOn)).
		WithBaseline(fmt.Sprintf("plaintext %.0f req/s", tputOff), tputOn/max(tputOff, 1))
	return []report.Table{tbl}, []report.Target{t, thr}
}
