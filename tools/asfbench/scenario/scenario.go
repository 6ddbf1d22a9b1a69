// Package scenario runs the bench scenarios — once over HTTP, WebSocket streams, the Python
// identity engine and the control plane — against the suite and its baselines in one run, and
// fills a report.Report.
package scenario

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/athenaserving/asf/libs/tlsx"
	"github.com/athenaserving/asf/tools/asfbench"
	"github.com/athenaserving/asf/tools/asfbench/baseline"
	"github.com/athenaserving/asf/tools/asfbench/procstat"
	"github.com/athenaserving/asf/tools/asfbench/report"
	"github.com/athenaserving/asf/tools/asfbench/targets"
	"google.golang.org/grpc"
)

// Suite is what the scenarios need from a running suite (tools/suite.Suite satisfies it).
type Suite interface {
	WebgateURL() string
	LBAddr() string
	PolarisAddr() string
	// DialOption is how the bench dials service peer of the suite directly: mutual TLS
	// with the suite's tool certificate, or plaintext for an insecure suite.
	DialOption(peer string) (grpc.DialOption, error)
	// TLS is the internal-TLS config of certificate name ("asfctl" is the tools' identity);
	// Insecure for a plaintext suite.
	TLS(name string) tlsx.Config
	// PKIDir holds the suite's CA (ca.crt, ca.key) and certificates.
	PKIDir() string
	// NATSSeedFile is the nkey seed file of service's NATS user.
	NATSSeedFile(service string) string
	// AdminToken is polaris's admin token of this start.
	AdminToken() string
	PIDs() map[string][]int
	Stop(ctx context.Context) error
}

// SuiteSpec says which suite to start: loaders hosting Engine, logs under LogDir, the
// internal plane in plaintext when Insecure (mutual TLS otherwise), and, when Tracing,
// its own Jaeger receiving every service's spans with webgate sampling at TraceSampleRate.
type SuiteSpec struct {
	Engine, LogDir  string
	Insecure        bool
	Tracing         bool
	TraceSampleRate float64
}

// StartSuite starts a suite as spec says.
type StartSuite func(ctx context.Context, spec SuiteSpec) (Suite, error)

// Profile is the size of a run.
type Profile struct {
	Name            string
	Plan            asfbench.Plan
	OnceConcurrency []int
	StreamSessions  []int
	// StreamRefine is how many more counts each system is measured at between the largest
	// it held and the next it missed (refineCount), after the StreamSessions ladder.
	StreamRefine            int
	StreamPace              time.Duration
	StreamFrameSize         int
	StreamFramesPerSession  int
	PythonConcurrency       []int
	PickConcurrency         []int
	PropagationSamples      int
	OncePayload             int
	OIPConcurrency          []int
	PythonWorkers           int
	PropagationPollInterval time.Duration
	// StreamHoldSessions is the session count whose run uses StreamHoldPlan (the held-load
	// target: 1000 sessions, p99 ≤ 50 ms, no errors); 0 = none.
	StreamHoldSessions int
	StreamHoldPlan     asfbench.Plan
	// LoaderBench* size the loader engine measurements (loaderbench).
	LoaderBenchWarmup, LoaderBenchDuration time.Duration
	LoaderBenchConcurrency                 int
	// LBBench* size the lbclient measurement (lbbench).
	LBBenchLoaders, LBBenchServices int
	LBBenchDuration                 time.Duration
	// MTLSConcurrency is the once load of the mTLS scenario, measured MTLSRounds times on
	// each suite (mutual TLS, plaintext), alternating; 0 rounds = not run.
	MTLSConcurrency, MTLSRounds int
	// TracingConcurrency is the once load of the tracing scenario, measured TracingRounds
	// times on each suite (tracing off, at 1 %, at 100 %), rotating; 0 rounds = not run.
	TracingConcurrency, TracingRounds int
	// SettleMax bounds the wait for a quiet machine before each measurement (see
	// Env.settle); 0 = no wait.
	SettleMax time.Duration
}

// Full is `make bench`: a few minutes on two cores.
func Full() Profile {
	return Profile{
		Name: "full",
		Plan: asfbench.Plan{Warmup: 2 * time.Second, Window: 2 * time.Second, MinWindows: 3, MaxWindows: 5,
			Rule: asfbench.StabilityRule{Windows: 3, Tolerance: 0.10}},
		OnceConcurrency: []int{1, 16, 64, 256},
		StreamSessions:  []int{100, 250, 500, 1000, 2000}, StreamPace: 40 * time.Millisecond, StreamRefine: 2,
		StreamFrameSize: 1280, StreamFramesPerSession: 250,
		PythonConcurrency: []int{1, 16, 64, 256}, PickConcurrency: []int{1, 16, 64},
		OIPConcurrency: []int{16}, PropagationSamples: 30, OncePayload: 256,
		PythonWorkers: 2, PropagationPollInterval: 200 * time.Microsecond,
		// 1000 sessions held for 30 s: three 10 s windows after the warm-up.
		StreamHoldSessions: 1000,
		StreamHoldPlan: asfbench.Plan{Warmup: 3 * time.Second, Window: 10 * time.Second, MinWindows: 3, MaxWindows: 3,
			Rule: asfbench.StabilityRule{Windows: 3, Tolerance: 0.10}},
		LoaderBenchWarmup: time.Second, LoaderBenchDuration: 5 * time.Second, LoaderBenchConcurrency: 4,
		LBBenchLoaders: 1000, LBBenchServices: 50, LBBenchDuration: 10 * time.Second,
		MTLSConcurrency: 64, MTLSRounds: 4,
		TracingConcurrency: 64, TracingRounds: 3,
		SettleMax: 10 * time.Second,
	}
}

// Quick is `make bench-quick`: about one minute.
func Quick() Profile {
	p := Full()
	p.Name = "quick"
	p.Plan = asfbench.Plan{Warmup: 500 * time.Millisecond, Window: time.Second, MinWindows: 3, MaxWindows: 3,
		Rule: asfbench.StabilityRule{Windows: 3, Tolerance: 0.10}}
	// One point of every target: once at c=1 and c=64, the Python identity engine at c=64,
	// 1000 stream sessions held for 6 s, and below it the counts that bound the session
	// count held at p99 ≤ 50 ms.
	p.OnceConcurrency = []int{1, 64}
	p.StreamSessions = []int{100, 250, 500, 1000}
	p.StreamHoldPlan = asfbench.Plan{Warmup: time.Second, Window: 2 * time.Second, MinWindows: 3, MaxWindows: 3,
		Rule: asfbench.StabilityRule{Windows: 3, Tolerance: 0.10}}
	p.LoaderBenchWarmup, p.LoaderBenchDuration = 300*time.Millisecond, time.Second
	p.LBBenchDuration = 3 * time.Second
	p.PythonConcurrency = []int{64}
	p.PickConcurrency = []int{16}
	p.PropagationSamples = 10
	p.MTLSRounds = 2
	p.TracingRounds = 1
	return p
}

// Env is everything a run needs.
type Env struct {
	Profile Profile
	// LoaderEnv, when set, is loaderbench's environment: the loader's runtime settings as
	// tools/suite gives them to a loader of a Python engine (suite.WithRuntimeGODEBUG).
	LoaderEnv []string
	// StartSuite is nil when the suite cannot be started (then every suite row says why).
	StartSuite StartSuite
	// SuiteUnavailable says why StartSuite is nil.
	SuiteUnavailable string
	// PythonSuite tries the suite with the python-identity engine (off until loaders host Python).
	PythonSuite bool
	// BaselineHTTP is the bare Go echo's URL, BaselineGRPC the bare gRPC echo's address, and
	// BaselinePIDs the process serving them.
	BaselineHTTP, BaselineGRPC string
	BaselinePIDs               []int
	// Python is the interpreter for the FastAPI baseline.
	Python string
	// Creds sign every ASE request.
	Creds asfbench.Credentials
	AppID string
	// OutDir receives logs (and the report, written by the caller).
	OutDir string
	// Log receives progress lines.
	Log io.Writer
	// Only, when non-empty, selects scenarios by id (once, stream, python, loader, control, mtls, tracing).
	Only map[string]bool
	// LoaderBench is the loaderbench binary (tools/cmd/loaderbench) and LBBench the
	// lbbench binary (tools/cmd/lbbench); empty or missing: those
	// figures are reported as not measured.
	LoaderBench, LBBench string
	// RepoDir is the checkout (for examples/engines and sdk/python).
	RepoDir string
	// SuiteSetup says how the suite's processes run (their GOMAXPROCS), for the report's
	// notes; "" says nothing.
	SuiteSetup string
}

func (e *Env) logf(format string, a ...any) {
	if e.Log != nil {
		fmt.Fprintf(e.Log, format+"\n", a...)
	}
}

func (e *Env) want(id string) bool { return len(e.Only) == 0 || e.Only[id] }

// NotAvailablePython is the reason the suite side of the Python scenario is skipped.
const NotAvailablePython = "Python engines not yet supported by the loader"

// Run runs every selected scenario and returns the report (not yet written).
func Run(ctx context.Context, env *Env) (*report.Report, error) {
	rep := &report.Report{Mode: env.Profile.Name, Started: time.Now(), Machine: DescribeMachine()}
	if env.StartSuite == nil {
		rep.Notes = append(rep.Notes, "The suite was not measured: "+env.SuiteUnavailable+". Only the baselines ran.")
	} else if env.SuiteSetup != "" {
		rep.Notes = append(rep.Notes, env.SuiteSetup)
	}
	var suite Suite
	if env.StartSuite != nil && (env.want("once") || env.want("stream") || env.want("control")) {
		env.logf("starting the suite (echo engine)")
		s, err := env.StartSuite(ctx, SuiteSpec{Engine: "echo", LogDir: filepath.Join(env.OutDir, "logs", "suite-echo")})
		if err != nil {
			rep.Notes = append(rep.Notes, fmt.Sprintf("The suite did not start (%v); suite rows are missing.", err))
			env.logf("suite start: %v", err)
		} else {
			suite = s
			defer func() {
				sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				_ = s.Stop(sctx)
			}()
		}
	}
	steps := []struct {
		id  string
		run func(context.Context, *Env, Suite) (*report.Scenario, error)
	}{
		{"once", runOnce}, {"stream", runStream}, {"python", runPython}, {"loader", runLoader}, {"control", runControl},
		{"mtls", runMTLS}, {"tracing", runTracing},
	}
	var errs []error
	for _, st := range steps {
		if !env.want(st.id) {
			continue
		}
		sc, err := st.run(ctx, env, suite)
		if sc != nil {
			rep.Scenarios = append(rep.Scenarios, sc)
		}
		if err != nil {
			if ctx.Err() != nil {
				return rep, ctx.Err()
			}
			errs = append(errs, fmt.Errorf("%s: %w", st.id, err))
			env.logf("scenario %s: %v", st.id, err)
		}
	}
	rep.CPUCharts = cpuCharts(rep)
	rep.Duration = time.Since(rep.Started)
	return rep, errors.Join(errs...)
}

// groups names the process groups of one system under test, plus the load generator.
type groups map[string]procstat.Group

// suiteGroups are the suite's services, each with the processes it started (the loader's
// engine workers count as the loader's), and the load generator.
func suiteGroups(s Suite) groups {
	g := groups{"asfbench": {PIDs: []int{os.Getpid()}}}
	if s == nil {
		return g
	}
	for name, pids := range s.PIDs() {
		all := slices.Clone(pids)
		for _, p := range pids {
			all = append(all, procstat.Descendants(p)...)
		}
		g[name] = procstat.Group{PIDs: all}
	}
	return g
}

func pidGroups(name string, pids []int) groups {
	return groups{"asfbench": {PIDs: []int{os.Getpid()}}, name: {PIDs: pids}}
}

// measure runs target under load with the profile's plan and fills a report row with
// latency, CPU and peak RSS.
func measure(ctx context.Context, env *Env, system string, x float64, target asfbench.Target, load asfbench.Load, g groups) (*report.Row, error) {
	return measurePlan(ctx, env, env.Profile.Plan, system, x, target, load, g)
}

// measurePlan is measure with an explicit plan.
// Settling before a measurement: at most Profile.SettleMax until the machine was under
// settleBusy busy (all cores together) for a whole settleWindow.
const (
	settleBusy   = 0.15
	settleWindow = 250 * time.Millisecond
)

// settle waits until the machine is quiet before a measurement, so that what the one
// before left running (a trace backend still taking the last round's spans, the exit of a
// stopped system, garbage collection) is not counted against the next: CPU per request is
// read per process, but a busy neighbour still slows every process on a 2-core machine.
// It gives up after Profile.SettleMax and says so in the log.
func (e *Env) settle(ctx context.Context, system string, x float64) {
	limit := e.Profile.SettleMax
	if limit <= 0 {
		return
	}
	start := time.Now()
	prev, err := procstat.ReadMachine()
	if err != nil {
		return // not Linux: nothing to wait on
	}
	t := time.NewTicker(settleWindow)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now, err := procstat.ReadMachine()
		if err != nil {
			return
		}
		busy := procstat.BusyShare(prev, now)
		prev = now
		if busy < settleBusy {
			if waited := time.Since(start); waited > 2*settleWindow {
				e.logf("  %-22s %-6v settled after %v", system, x, waited.Round(time.Millisecond))
			}
			return
		}
		if time.Since(start) >= limit {
			e.logf("  %-22s %-6v machine still %.0f %% busy after %v: measuring anyway", system, x, 100*busy, limit)
			return
		}
	}
}

func measurePlan(ctx context.Context, env *Env, plan asfbench.Plan, system string, x float64, target asfbench.Target, load asfbench.Load, g groups) (*report.Row, error) {
	row := &report.Row{System: system, X: x, Load: fmt.Sprint(x)}
	env.settle(ctx, system, x)
	for _, gr := range g {
		gr.ResetPeak()
	}
	var cpu0 map[string]time.Duration
	r := asfbench.Runner{}
	// CPU counts from the end of the warm-up, like the windows' requests.
	r.OnMeasure = func() {
		cpu0 = map[string]time.Duration{}
		for k, gr := range g {
			cpu0[k] = gr.Read().CPU
		}
	}
	r.OnWindow = func(i int, w *asfbench.Window) {
		env.logf("  %-22s %-6v window %d: %7.0f req/s p50 %6.2f ms p99 %7.2f ms errors %d",
			system, x, i, w.Throughput(), ms(w.Hist.Quantile(0.5)), ms(w.Hist.Quantile(0.99)), w.Errors)
	}
	res, err := r.Run(ctx, target, load, plan)
	if err != nil {
		return nil, fmt.Errorf("%s at %v: %w", system, x, err)
	}
	row.Result = &res
	var ok uint64
	for _, w := range res.Windows {
		ok += w.OK
	}
	row.CPUPer1k = map[string]float64{}
	row.PeakRSS = map[string]int64{}
	for k, gr := range g {
		u := gr.Read()
		if ok > 0 && cpu0 != nil {
			row.CPUPer1k[k] = (u.CPU - cpu0[k]).Seconds() / (float64(ok) / 1000)
		}
		if k != "asfbench" || len(g) == 1 {
			row.PeakRSS[k] = u.PeakRSS
		}
	}
	return row, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func na(system string, x float64, why string) *report.Row {
	return &report.Row{System: system, X: x, Load: fmt.Sprint(x), NotAvailable: why}
}

func (e *Env) onceTarget(base, service string, c int) *targets.ASEOnce {
	return targets.NewASEOnce(targets.ASEOnceConfig{BaseURL: base, Service: service, AppID: e.AppID,
		Creds: e.Creds, PayloadSize: e.Profile.OncePayload, MaxConns: c})
}

// oipTarget posts signed OIP v2 infer requests to model echo: one BYTES tensor "input"
// of the once payload size.
func (e *Env) oipTarget(base string, c int) *targets.OIPInfer {
	creds := e.Creds
	return targets.NewOIPInfer(targets.OIPConfig{BaseURL: base, Model: "echo", Input: "input", Bytes: e.Profile.OncePayload,
		Creds: &creds, MaxConns: c})
}

// runOnce is scenario 1: ASE once requests to the echo engine, suite vs bare Go echo.
func runOnce(ctx context.Context, env *Env, s Suite) (*report.Scenario, error) {
	sc := &report.Scenario{ID: "once", Title: "1. Once, echo engine, HTTP", XLabel: "concurrency", Baseline: bareEcho,
		Description: fmt.Sprintf("Closed loop. Signed ASE once requests (POST /v1/private/echo, %d-byte text) through webgate → atom → loader(echo), "+
			"against a bare Go net/http JSON echo (the floor for the HTTP path). OIP v2 rows: signed POST /v2/models/echo/infer with one "+
			"%d-byte BYTES tensor `input`, through the suite and against the bare echo's OIP route. WebAPI 2.0 rows: the same text in "+
			"iFLYTEK's WebAPI 2.0 envelope (POST /v2/echo, data.text; an echo schema with only a `webapi` block is pushed before them), "+
			"through the same pipeline, against the same bare Go echo rows and targets.", env.Profile.OncePayload, env.Profile.OncePayload)}
	for _, c := range env.Profile.OnceConcurrency {
		load, x := asfbench.Load{Concurrency: c}, float64(c)
		if err := env.measureSide(ctx, sc, env.Profile.Plan, x, load, env.suiteSide(s, suiteSystem, bareEcho,
			func() asfbench.Target { return env.onceTarget(s.WebgateURL(), "echo", c) })); err != nil {
			return sc, err
		}
		if err := env.measureSide(ctx, sc, env.Profile.Plan, x, load, side{system: bareEcho, groups: pidGroups("baseline", env.BaselinePIDs),
			target: func() asfbench.Target { return env.onceTarget(env.BaselineHTTP, "echo", c) }}); err != nil {
			return sc, err
		}
	}
	sc.Targets = onceTargets(sc, env)
	if err := runWebAPIOnce(ctx, env, s, sc); err != nil {
		return sc, err
	}
	// OIP v2: signed infer requests with one BYTES tensor "input" to model echo, through
	// the suite and against the bare Go OIP echo.
	for _, c := range env.Profile.OIPConcurrency {
		load, x := asfbench.Load{Concurrency: c}, float64(c)
		if err := env.measureSide(ctx, sc, env.Profile.Plan, x, load, env.suiteSide(s, "suite OIP v2", "bare Go OIP v2",
			func() asfbench.Target { return env.oipTarget(s.WebgateURL(), c) })); err != nil {
			return sc, err
		}
		if err := env.measureSide(ctx, sc, env.Profile.Plan, x, load, side{system: "bare Go OIP v2", groups: pidGroups("baseline", env.BaselinePIDs),
			target: func() asfbench.Target { return env.oipTarget(env.BaselineHTTP, c) }}); err != nil {
			return sc, err
		}
	}
	return sc, nil
}

// side is one system measured at one load point: what to drive, which processes to
// account, the baseline it is compared with ("" for a baseline), or why it is not measured.
type side struct {
	system, vs, why string
	target          func() asfbench.Target
	groups          groups
}

// suiteSide is the suite's side of a comparison: measured through target when the suite
// runs (s non-nil), else a row saying why not.
func (e *Env) suiteSide(s Suite, system, vs string, target func() asfbench.Target) side {
	if s == nil {
		return side{system: system, vs: vs, why: e.suiteWhy()}
	}
	return side{system: system, vs: vs, target: target, groups: suiteGroups(s)}
}

// measureSide measures one side at x under load with plan and appends its row to sc (a
// "not available" row when sd.why is set). Targets with a Close method are closed after.
func (e *Env) measureSide(ctx context.Context, sc *report.Scenario, plan asfbench.Plan, x float64, load asfbench.Load, sd side) error {
	if sd.why != "" {
		sc.Rows = append(sc.Rows, na(sd.system, x, sd.why))
		return nil
	}
	e.logf("%s: %s %s=%v", sc.ID, sd.system, sc.XLabel, x)
	t := sd.target()
	if c, ok := t.(interface{ Close() }); ok {
		defer c.Close()
	}
	row, err := measurePlan(ctx, e, plan, sd.system, x, t, load, sd.groups)
	if err != nil {
		return err
	}
	row.VS = sd.vs
	sc.Rows = append(sc.Rows, row)
	return nil
}

func (e *Env) suiteWhy() string {
	if e.SuiteUnavailable != "" {
		return e.SuiteUnavailable
	}
	return "the suite did not start"
}

// heldP99 is the frame-to-result p99 bound of scenario 2.
const heldP99 = 50 * time.Millisecond

// runStream is scenario 2: WebSocket sessions of 1280-byte frames every 40 ms.
func runStream(ctx context.Context, env *Env, s Suite) (*report.Scenario, error) {
	p := env.Profile
	sc := &report.Scenario{ID: "stream", Title: "2. Stream, echo engine, WebSocket", XLabel: "sessions", Baseline: bareWSEcho,
		Description: fmt.Sprintf("Each session sends a %d-byte audio frame every %v (status 0, 1, …, 2; %d frames, then a new session) "+
			"and waits for its result; latency is frame-to-result from the frame's scheduled send time.",
			p.StreamFrameSize, p.StreamPace, p.StreamFramesPerSession)}
	mk := func(base string) *targets.ASEStream {
		return targets.NewASEStream(targets.ASEStreamConfig{BaseURL: base, Service: "echo", AppID: env.AppID, Creds: env.Creds,
			FrameSize: p.StreamFrameSize, FramesPerSession: p.StreamFramesPerSession})
	}
	sides := []side{
		env.suiteSide(s, suiteSystem, bareWSEcho, func() asfbench.Target { return mk(s.WebgateURL()) }),
		{system: bareWSEcho, groups: pidGroups("baseline", env.BaselinePIDs), target: func() asfbench.Target { return mk(env.BaselineHTTP) }},
	}
	measure := func(sd side, n int) error {
		plan := p.Plan
		if n == p.StreamHoldSessions && p.StreamHoldPlan.Window > 0 {
			plan = p.StreamHoldPlan
		}
		return env.measureSide(ctx, sc, plan, float64(n), asfbench.Load{Concurrency: n, Pace: p.StreamPace}, sd)
	}
	for _, n := range p.StreamSessions {
		for _, sd := range sides {
			if err := measure(sd, n); err != nil {
				return sc, err
			}
		}
	}
	// The ladder's steps are 2–2.5× apart: each system is measured again between the
	// largest count it held and the next it missed, halving that gap StreamRefine times,
	// so the held counts (and their ratio) are known to within ~15 %, not a factor of 2.
	for _, sd := range sides {
		for range p.StreamRefine {
			n, ok := refineCount(sc, sd.system)
			if !ok {
				break
			}
			if err := measure(sd, n); err != nil {
				return sc, err
			}
		}
	}
	slices.SortStableFunc(sc.Rows, func(a, b *report.Row) int { return cmp.Compare(a.X, b.X) }) // the table by count
	for _, sys := range sc.Systems() {
		sc.Findings = append(sc.Findings, heldFinding(sc, sys))
	}
	sc.Targets = streamTargets(sc, env)
	return sc, nil
}

// heldCount is the largest session count at which sys held p99 ≤ heldP99 with under 0.1 %
// errors (-1 when it held none) and whether sys has any measured row.
func heldCount(sc *report.Scenario, sys string) (n float64, measured bool) {
	n = -1
	rows := sc.ByX(sys)
	for _, r := range rows {
		sum := r.Result.Summary
		if sum.P99 <= heldP99 && float64(sum.Errors) <= 0.001*float64(max(sum.Requests, 1)) && sum.Requests > 0 {
			n = max(n, r.X)
		}
	}
	return n, len(rows) > 0
}

// refineCount is the session count halfway (to a multiple of 10) between the largest count
// sys held and the smallest above it that it missed, and false when there is no such pair
// or they are already within an eighth of each other (or 20 sessions).
func refineCount(sc *report.Scenario, sys string) (int, bool) {
	held, _ := heldCount(sc, sys)
	lo := max(int(held), 0)
	hi := -1
	for _, r := range sc.ByX(sys) {
		if x := int(r.X); x > lo && (hi < 0 || x < hi) {
			hi = x
		}
	}
	if hi < 0 || hi-lo <= max(20, lo/8) {
		return 0, false
	}
	m := (lo + hi + 10) / 20 * 10
	if m <= lo || m >= hi {
		return 0, false
	}
	return m, true
}

// heldFinding states the largest session count a system held with p99 ≤ 50 ms and under
// 0.1 % errors.
func heldFinding(sc *report.Scenario, sys string) string {
	best, measured := heldCount(sc, sys)
	switch {
	case !measured:
		return fmt.Sprintf("%s: not measured.", sys)
	case best < 0:
		return fmt.Sprintf("%s: no measured session count held p99 ≤ %v with < 0.1 %% errors.", sys, heldP99)
	}
	return fmt.Sprintf("%s: largest session count held with p99 ≤ %v and < 0.1 %% errors: **%.0f**.", sys, heldP99, best)
}

// runPython is scenario 3: the Python identity engine, suite vs FastAPI + uvicorn.
func runPython(ctx context.Context, env *Env, _ Suite) (*report.Scenario, error) {
	p := env.Profile
	sc := &report.Scenario{ID: "python", Title: "3. Python identity engine", XLabel: "concurrency", Baseline: fastAPI,
		Description: fmt.Sprintf("Closed loop. Signed ASE once requests to the `python-identity` engine, against the same Python function "+
			"served by FastAPI + uvicorn (Debian packages, /usr/bin/python3, %d workers: one per core).", p.PythonWorkers)}
	var suite Suite
	suiteWhy := NotAvailablePython
	if env.PythonSuite && env.StartSuite != nil {
		s, err := env.StartSuite(ctx, SuiteSpec{Engine: "python-identity", LogDir: filepath.Join(env.OutDir, "logs", "suite-python")})
		if err != nil {
			suiteWhy = fmt.Sprintf("the suite did not start with python-identity: %v", err)
		} else {
			suite = s
			defer func() {
				sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				_ = s.Stop(sctx)
			}()
		}
	}
	env.logf("python: starting FastAPI + uvicorn")
	fa, faErr := baseline.StartFastAPI(ctx, baseline.FastAPIOptions{Python: env.Python, Workers: p.PythonWorkers,
		Dir: filepath.Join(env.OutDir, "logs", "fastapi")})
	if faErr != nil {
		sc.Notes = append(sc.Notes, fmt.Sprintf("FastAPI + uvicorn not measured: %v", faErr))
	} else {
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = fa.Stop(sctx)
		}()
	}
	for _, c := range p.PythonConcurrency {
		load, x := asfbench.Load{Concurrency: c}, float64(c)
		suiteSd := side{system: suiteSystem, vs: fastAPI, why: suiteWhy}
		if suite != nil {
			suiteSd = side{system: suiteSystem, vs: fastAPI, groups: suiteGroups(suite),
				target: func() asfbench.Target { return env.onceTarget(suite.WebgateURL(), "python-identity", c) }}
		}
		if err := env.measureSide(ctx, sc, p.Plan, x, load, suiteSd); err != nil {
			return sc, err
		}
		if fa != nil {
			if err := env.measureSide(ctx, sc, p.Plan, x, load, side{system: fastAPI, groups: pidGroups("uvicorn", fa.PIDs()),
				target: func() asfbench.Target { return env.onceTarget(fa.URL(), "python-identity", c) }}); err != nil {
				return sc, err
			}
		}
	}
	sc.Targets = pythonTargets(sc, env)
	return sc, nil
}
