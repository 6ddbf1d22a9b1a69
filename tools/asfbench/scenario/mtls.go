package scenario

import (
	"context"
	"fmt"

	"github.com/athenaserving/asf/tools/asfbench/report"
)

// mtlsCPURatio bounds the suite's CPU per once request with internal mutual TLS against
// the same load in plaintext. Internal connections are long-lived, so mTLS costs record
// encryption on every hop but never a handshake per request.
const mtlsCPURatio = 1.10

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
	on := &variant{name: "mTLS", spec: SuiteSpec{Engine: "echo"}}
	off := &variant{name: "plaintext", spec: SuiteSpec{Engine: "echo", Insecure: true}}
	vs := []*variant{on, off}
	defer stopVariants(vs)
	why, err := startVariants(ctx, env, sc.ID, vs)
	if err != nil || why != "" {
		sc.Targets = []report.Target{report.NotMeasured(metric, tgt, why)}
		return sc, err
	}
	if err := measureVariants(ctx, env, sc, vs, off, c, p.MTLSRounds); err != nil {
		return sc, err
	}
	sc.Tables, sc.Targets = mtlsFigures(on, off, metric, c)
	if f := variantRounds(on, off); f != "" {
		sc.Findings = []string{f}
	}
	return sc, nil
}

// mtlsFigures compares the two sides: a table of CPU per request per service and the
// target rows.
func mtlsFigures(on, off *variant, metric string, c int) ([]report.Table, []report.Target) {
	_, nOn, _ := on.cpuPerRequest()
	_, nOff, _ := off.cpuPerRequest()
	tbl := variantTable(fmt.Sprintf("CPU ms per once request at c=%d over all rounds (%d requests with mTLS, %d in plaintext):", c, nOn, nOff),
		[]*variant{on, off}, off)
	return []report.Table{tbl}, []report.Target{
		cpuRatioTarget(metric, on, off, mtlsCPURatio),
		throughputInfo(fmt.Sprintf("once throughput with internal mTLS / plaintext, c=%d", c), on, off),
	}
}
