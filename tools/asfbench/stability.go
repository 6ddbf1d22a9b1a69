package asfbench

// StabilityRule decides when a run has settled: the last Windows measurement windows must agree
// within Tolerance, for throughput and for median latency: (max−min)/max ≤ Tolerance.
type StabilityRule struct {
	// Windows is how many trailing windows are compared (at least 2 to mean anything).
	Windows int
	// Tolerance is the allowed relative spread, for example 0.10 for 10 %.
	Tolerance float64
}

// Stable reports whether the trailing windows of the given series satisfy the rule. Each series
// (for example throughputs, medians) is checked on its own; all must pass. Too few windows → false.
func (r StabilityRule) Stable(series ...[]float64) bool {
	k := max(r.Windows, 1)
	for _, s := range series {
		if len(s) < k {
			return false
		}
		if !withinSpread(s[len(s)-k:], r.Tolerance) {
			return false
		}
	}
	return true
}

// withinSpread reports whether (max−min)/max ≤ tol. An all-zero window set is stable.
func withinSpread(xs []float64, tol float64) bool {
	lo, hi := xs[0], xs[0]
	for _, x := range xs[1:] {
		lo = min(lo, x)
		hi = max(hi, x)
	}
	if hi <= 0 {
		return lo == hi
	}
	return (hi-lo)/hi <= tol
}
