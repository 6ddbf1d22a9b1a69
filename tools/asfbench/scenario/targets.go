package scenario

import (
	"fmt"
	"time"

	"github.com/athenaserving/asf/tools/asfbench/report"
)

// The webgate targets, checked against the once and stream rows of the same run.
const (
	// onceP50C1 bounds the suite's once p50 at concurrency 1.
	onceP50C1 = 500 * time.Microsecond
	// onceRatioC64 is the least share of the bare echo's throughput the suite reaches at c=64.
	onceRatioC64 = 0.25
	// streamHeldP99 bounds the frame-to-result p99 of the held stream load.
	streamHeldP99 = heldP99
)

func (e *Env) notMeasuredWhy(sc *report.Scenario, x float64, inProfile []int) string {
	return e.notMeasuredWhyOf(sc, "suite", x, inProfile)
}

// notMeasuredWhyOf says why system has no measured row at x.
func (e *Env) notMeasuredWhyOf(sc *report.Scenario, system string, x float64, inProfile []int) string {
	found := false
	for _, v := range inProfile {
		found = found || float64(v) == x
	}
	if !found {
		return fmt.Sprintf("%s %.0f is not in the %s profile", sc.XLabel, x, e.Profile.Name)
	}
	for _, r := range sc.Rows {
		if r.System == system && r.X == x && r.NotAvailable != "" {
			return r.NotAvailable
		}
	}
	return e.suiteWhy()
}

// rowPair returns the measured rows of system and of baseline at x (nil when missing).
func rowPair(sc *report.Scenario, system, baseline string, x float64) (r, b *report.Row) {
	for _, row := range sc.Rows {
		if row.Result == nil || row.X != x {
			continue
		}
		switch row.System {
		case system:
			r = row
		case baseline:
			b = row
		}
	}
	return r, b
}

// onceTargets checks the suite's once rows: p50 at c=1 and the throughput share at c=64.
func onceTargets(sc *report.Scenario, env *Env) []report.Target {
	return onceTargetsOf(sc, env, "suite", "webgate once")
}

// onceTargetsOf checks the once rows of system (named name in the metrics) against the
// same targets and the same bare Go echo rows.
func onceTargetsOf(sc *report.Scenario, env *Env, system, name string) []report.Target {
	var out []report.Target
	m1 := name + " p50, c=1 (full path, echo)"
	if r, b := rowPair(sc, system, "bare Go echo", 1); r != nil {
		t := report.CheckMax(m1, msF(r.Result.Summary.P50), msF(onceP50C1), "%.3f ms")
		if r.Result.Summary.Errors > 0 {
			t.Status = report.StatusFail
			t.Measured += fmt.Sprintf(" (%d errors)", r.Result.Summary.Errors)
		}
		if b != nil {
			t = t.WithBaseline(fmt.Sprintf("bare Go echo %.3f ms", msF(b.Result.Summary.P50)), float64(r.Result.Summary.P50)/float64(b.Result.Summary.P50))
		}
		out = append(out, t)
	} else {
		out = append(out, report.NotMeasured(m1, fmt.Sprintf("≤ %.1f ms", msF(onceP50C1)), env.notMeasuredWhyOf(sc, system, 1, env.Profile.OnceConcurrency)))
	}
	m64 := name + " throughput, c=64, share of bare echo"
	r, b := rowPair(sc, system, "bare Go echo", 64)
	switch {
	case r != nil && b != nil && b.Result.Summary.Throughput > 0:
		share := r.Result.Summary.Throughput / b.Result.Summary.Throughput
		t := report.CheckMin(m64, share, onceRatioC64, "%.3f")
		t.Measured = fmt.Sprintf("%.0f req/s (share %.3f)", r.Result.Summary.Throughput, share)
		t.Target = fmt.Sprintf("≥ %.2f × bare echo", onceRatioC64)
		out = append(out, t.WithBaseline(fmt.Sprintf("bare Go echo %.0f req/s", b.Result.Summary.Throughput), share))
	case r != nil:
		out = append(out, report.NotMeasured(m64, fmt.Sprintf("≥ %.2f × bare echo", onceRatioC64), "the bare Go echo row is missing"))
	default:
		out = append(out, report.NotMeasured(m64, fmt.Sprintf("≥ %.2f × bare echo", onceRatioC64), env.notMeasuredWhyOf(sc, system, 64, env.Profile.OnceConcurrency)))
	}
	return out
}

// streamTargets checks the held stream load: frame-to-result p99 and errors.
func streamTargets(sc *report.Scenario, env *Env) []report.Target {
	n := float64(env.Profile.StreamHoldSessions)
	if n == 0 {
		return nil
	}
	plan := env.Profile.StreamHoldPlan
	held := time.Duration(plan.MaxWindows) * plan.Window
	mP99 := fmt.Sprintf("webgate WebSocket frame-to-result p99, %.0f sessions, %d B every %v, %v held", n,
		env.Profile.StreamFrameSize, env.Profile.StreamPace, held)
	mErr := fmt.Sprintf("webgate WebSocket errors, %.0f sessions", n)
	mP50 := fmt.Sprintf("webgate WebSocket frame-to-result p50, %.0f sessions", n)
	r, b := rowPair(sc, "suite", "bare Go WS echo", n)
	if r == nil {
		why := env.notMeasuredWhy(sc, n, env.Profile.StreamSessions)
		return []report.Target{
			report.NotMeasured(mP99, fmt.Sprintf("≤ %.0f ms", msF(streamHeldP99)), why),
			report.NotMeasured(mErr, "= 0", why),
		}
	}
	sum := r.Result.Summary
	p50 := report.Info(mP50, fmt.Sprintf("%.2f ms", msF(sum.P50)))
	p99 := report.CheckMax(mP99, msF(sum.P99), msF(streamHeldP99), "%.2f ms")
	errs := report.CheckMax(mErr, float64(sum.Errors), 0, "%.0f")
	errs.Target = "= 0"
	errs.Measured = fmt.Sprintf("%d of %d frames", sum.Errors, sum.Requests)
	if b != nil {
		bs := b.Result.Summary
		p50 = p50.WithBaseline(fmt.Sprintf("bare Go WS echo %.2f ms", msF(bs.P50)), float64(sum.P50)/float64(max(bs.P50, 1)))
		p99 = p99.WithBaseline(fmt.Sprintf("bare Go WS echo %.2f ms", msF(bs.P99)), float64(sum.P99)/float64(max(bs.P99, 1)))
		errs = errs.WithBaseline(fmt.Sprintf("bare Go WS echo %d", bs.Errors), 0)
		if bs.P99 > streamHeldP99 {
			// The floor misses the bound too: the machine (servers and load generator on the
			// same cores) cannot carry this load, so the suite's figure is not its own limit.
			p99.Measured += " (the bare Go WS echo misses the bound too: machine saturated)"
		}
	}
	return []report.Target{p50, p99, errs}
}

func msF(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
