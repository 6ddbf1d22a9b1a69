// Package asfbench is the load-generation core of the Athena Serving benchmark harness: latency
// histograms, measurement windows with a stability rule, closed-loop and open-loop drivers with
// coordinated-omission-correct latency, ASE HMAC URL signing and X-Asf-Timing parsing. It
// imports no transport; the protocol clients live in package targets and the baseline servers
// in package baseline.
//
// Usage:
//
//	r := asfbench.Runner{Clock: asfbench.SystemClock{}}
//	res, err := r.Run(ctx, target, asfbench.Load{Concurrency: 16}, asfbench.Plan{
//		Warmup: 2 * time.Second, Window: 2 * time.Second, MinWindows: 3, MaxWindows: 6,
//		Rule: asfbench.StabilityRule{Windows: 3, Tolerance: 0.10},
//	})
//	fmt.Println(res.Summary.Throughput, res.Summary.P99)
package asfbench
