package scenario

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/athenaserving/asf/tools/asfbench/report"
)

// Targets of the figures measured by the helper programs.
const (
	targetPythonAddedP50Us = 150.0
	targetPicksPerSec      = 50000.0
	targetPropagationP99Ms = 100.0
)

// loaderDist is a latency distribution as loaderbench prints it.
type loaderDist struct {
	Calls     int     `json:"calls"`
	Errors    int     `json:"errors"`
	P50Us     float64 `json:"p50_us"`
	P99Us     float64 `json:"p99_us"`
	MeanUs    float64 `json:"mean_us"`
	PerSecond float64 `json:"calls_per_s"`
}

// loaderBenchResult is loaderbench's JSON output.
type loaderBenchResult struct {
	Python *struct {
		PayloadBytes int        `json:"payload_bytes"`
		Loader       loaderDist `json:"loader_grpc"`
		InProcess    loaderDist `json:"python_in_process"`
		AddedP50Us   float64    `json:"added_p50_us"`
		AddedP99Us   float64    `json:"added_p99_us"`
		Error        string     `json:"error"`
	} `json:"python"`
	C *struct {
		Concurrency   int        `json:"concurrency"`
		PayloadBytes  int        `json:"payload_bytes"`
		InProcess     loaderDist `json:"engine_in_process"`
		Isolated      loaderDist `json:"engine_isolated"`
		GRPCInProcess loaderDist `json:"grpc_in_process"`
		GRPCIsolated  loaderDist `json:"grpc_isolated"`
		Ratio         float64    `json:"isolated_over_in_process"`
		GRPCRatio     float64    `json:"grpc_isolated_over_in_process"`
		Error         string     `json:"error"`
	} `json:"c"`
}

// lbBenchResult is lbbench's -json output.
type lbBenchResult struct {
	Loaders     int     `json:"loaders"`
	Services    int     `json:"services"`
	Workers     int     `json:"workers"`
	DurationSec float64 `json:"duration_s"`
	Picks       int64   `json:"picks"`
	Errors      int64   `json:"errors"`
	PicksPerSec float64 `json:"picks_per_s"`
	PickP50Us   float64 `json:"pick_p50_us"`
	PickP99Us   float64 `json:"pick_p99_us"`
	PropSamples int     `json:"propagation_samples"`
	PropP50Ms   float64 `json:"propagation_p50_ms"`
	PropP99Ms   float64 `json:"propagation_p99_ms"`
	Streams     int     `json:"streams"`
}

// runHelper runs a helper program, logs its stderr under logs/<name>.log and decodes its
// stdout (one JSON object) into dst.
func (e *Env) runHelper(ctx context.Context, name, bin string, args []string, dst any) error {
	if bin == "" {
		return fmt.Errorf("%s binary not configured", name)
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("%s binary missing (%v)", name, err)
	}
	logDir := filepath.Join(e.OutDir, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(logDir, name+".log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = e.RepoDir
	cmd.WaitDelay = 10 * time.Second
	if name == "loaderbench" && e.LoaderEnv != nil {
		cmd.Env = e.LoaderEnv
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, logf
	e.logf("%s: %s %s", name, bin, strings.Join(args, " "))
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w (see logs/%s.log)", name, err, name)
	}
	if err := json.Unmarshal(out.Bytes(), dst); err != nil {
		return fmt.Errorf("%s output: %w", name, err)
	}
	return nil
}

func us(v float64) string { return fmt.Sprintf("%.1f µs", v) }

func distRow(name string, d loaderDist) []string {
	return []string{name, fmt.Sprint(d.Calls), fmt.Sprint(d.Errors), fmt.Sprintf("%.0f", d.PerSecond),
		fmt.Sprintf("%.1f", d.P50Us), fmt.Sprintf("%.1f", d.P99Us), fmt.Sprintf("%.1f", d.MeanUs)}
}

var distHeader = []string{"path", "calls", "errors", "calls/s", "p50 µs", "p99 µs", "mean µs"}

// runLoader is scenario 5: the loader's engine paths, measured by loaderbench — the Python
// engine's added latency and the C engine in process against isolation process.
func runLoader(ctx context.Context, env *Env, _ Suite) (*report.Scenario, error) {
	p := env.Profile
	sc := &report.Scenario{ID: "loader", Title: "5. Loader engine paths", XLabel: "path",
		Description: fmt.Sprintf("Measured by `loaderbench` (tools/cmd/loaderbench) with loaders in its own process on loopback, "+
			"%v warm-up and %v per path. Python: the identity `wrapperOnceExec` of examples/engines/python-echo through the loader's gRPC Once "+
			"(one Python worker, one caller) against the same call made in a Python process (the floor); the difference is the latency the loader adds. "+
			"C: the example C engine (examples/engines/c-echo, gcc) in the loader process against the same engine behind isolation process "+
			"(one worker process), %d callers, called directly (engine.Once) and through the loader's gRPC Once. "+
			"A gRPC Once travels as atom sends it: on a Loader.OnceStream (loaderbench -via stream). loaderbench runs with the runtime settings "+
			"tools/suite gives a loader of a Python engine (GODEBUG=schedtrace=…, docs/operations.md, \"Go runtime monitor\").",
			p.LoaderBenchWarmup, p.LoaderBenchDuration, p.LoaderBenchConcurrency)}
	const (
		mPy50  = "loader Python once added latency p50 (gRPC Once − in-process Python)"
		mPy99  = "loader Python once added latency p99"
		mC     = "loader C engine throughput, isolation process / in process (engine.Once)"
		mCGRPC = "loader C engine throughput, isolation process / in process (gRPC Once)"
	)
	var res loaderBenchResult
	wrapper := filepath.Join(env.RepoDir, "examples", "engines", "python-echo", "wrapper.py")
	err := env.runHelper(ctx, "loaderbench", env.LoaderBench, []string{
		"-mode", "python,c", "-warmup", p.LoaderBenchWarmup.String(), "-duration", p.LoaderBenchDuration.String(),
		"-concurrency", fmt.Sprint(p.LoaderBenchConcurrency), "-python", env.Python,
		"-wrapper", wrapper, "-sdk", filepath.Join(env.RepoDir, "sdk", "python"),
	}, &res)
	if err != nil {
		why := err.Error()
		sc.Targets = []report.Target{
			report.NotMeasured(mPy50, fmt.Sprintf("≤ %.0f µs", targetPythonAddedP50Us), why),
			report.NotMeasured(mPy99, "", why),
			report.NotMeasured(mC, "", why),
		}
		return sc, nil
	}
	switch py := res.Python; {
	case py == nil || py.Error != "":
		why := "no result"
		if py != nil {
			why = py.Error
		}
		sc.Targets = append(sc.Targets, report.NotMeasured(mPy50, fmt.Sprintf("≤ %.0f µs", targetPythonAddedP50Us), why),
			report.NotMeasured(mPy99, "", why))
	default:
		sc.Tables = append(sc.Tables, report.Table{
			Title:  fmt.Sprintf("Python identity once, %d-byte text, one caller:", py.PayloadBytes),
			Header: distHeader,
			Rows:   [][]string{distRow("loader gRPC Once → Python worker", py.Loader), distRow("in-process Python wrapperOnceExec", py.InProcess)},
		})
		t := report.CheckMax(mPy50, py.AddedP50Us, targetPythonAddedP50Us, "%.1f µs")
		if py.Loader.Errors > 0 {
			t.Status = report.StatusFail
			t.Measured += fmt.Sprintf(" (%d errors)", py.Loader.Errors)
		}
		t.Measured += fmt.Sprintf(" (loader p50 %s)", us(py.Loader.P50Us))
		sc.Targets = append(sc.Targets,
			t.WithBaseline("in-process "+us(py.InProcess.P50Us), py.Loader.P50Us/py.InProcess.P50Us),
			report.Info(mPy99, fmt.Sprintf("%.1f µs (loader p99 %s)", py.AddedP99Us, us(py.Loader.P99Us))).
				WithBaseline("in-process "+us(py.InProcess.P99Us), py.Loader.P99Us/py.InProcess.P99Us))
	}
	switch c := res.C; {
	case c == nil || c.Error != "":
		why := "no result"
		if c != nil {
			why = c.Error
		}
		sc.Targets = append(sc.Targets, report.NotMeasured(mC, "", why))
	default:
		sc.Tables = append(sc.Tables, report.Table{
			Title:  fmt.Sprintf("C echo engine once, %d-byte text, %d callers:", c.PayloadBytes, c.Concurrency),
			Header: distHeader,
			Rows: [][]string{
				distRow("engine.Once, in process", c.InProcess), distRow("engine.Once, isolation process", c.Isolated),
				distRow("loader gRPC Once, in process", c.GRPCInProcess), distRow("loader gRPC Once, isolation process", c.GRPCIsolated),
			},
		})
		sc.Targets = append(sc.Targets,
			report.Info(mC, fmt.Sprintf("%.0f calls/s", c.Isolated.PerSecond)).
				WithBaseline(fmt.Sprintf("in process %.0f calls/s", c.InProcess.PerSecond), c.Ratio),
			report.Info(mCGRPC, fmt.Sprintf("%.0f calls/s", c.GRPCIsolated.PerSecond)).
				WithBaseline(fmt.Sprintf("in process %.0f calls/s", c.GRPCInProcess.PerSecond), c.GRPCRatio))
	}
	return sc, nil
}

// lbBench runs lbbench (1000 synthetic loaders over 50 services by default) and returns its
// table and targets.
func lbBench(ctx context.Context, env *Env) ([]report.Table, []report.Target) {
	p := env.Profile
	mPicks := fmt.Sprintf("lbclient Pick throughput over gRPC, %d loaders / %d services", p.LBBenchLoaders, p.LBBenchServices)
	mP99 := "lbclient Pick latency p99 over gRPC"
	mProp := "lbclient load-change propagation p99 (heartbeat → lbclient view)"
	mProp50 := "lbclient load-change propagation p50"
	args := []string{"-loaders", fmt.Sprint(p.LBBenchLoaders), "-services", fmt.Sprint(p.LBBenchServices),
		"-duration", p.LBBenchDuration.String(), "-json"}
	// The figure is the path atom uses (picks over Lb.PickStream, lbbench's default); the
	// baseline is one unary Lb.Pick call per pick, same callers, same run.
	var r, unary lbBenchResult
	err := env.runHelper(ctx, "lbbench", env.LBBench, args, &r)
	if err == nil {
		if uerr := env.runHelper(ctx, "lbbench-unary", env.LBBench, append(args, "-streams", "0"), &unary); uerr != nil {
			env.logf("control: lbbench -streams 0: %v", uerr)
		}
	}
	if err != nil {
		why := err.Error()
		return nil, []report.Target{
			report.NotMeasured(mPicks, fmt.Sprintf("≥ %.0f picks/s", targetPicksPerSec), why),
			report.NotMeasured(mProp, fmt.Sprintf("≤ %.0f ms", targetPropagationP99Ms), why),
		}
	}
	tbl := report.Table{
		Title: fmt.Sprintf("`lbbench`: in-process polaris and lbclient, %d synthetic loaders over %d services heartbeating every second, "+
			"%d Pick callers for %.0f s; propagation probed during the load:", r.Loaders, r.Services, r.Workers, r.DurationSec),
		Header: []string{"path", "picks", "errors", "picks/s", "Pick p50 µs", "Pick p99 µs", "propagation samples", "propagation p50 ms", "propagation p99 ms"},
	}
	for _, x := range []lbBenchResult{r, unary} {
		if x.Picks == 0 {
			continue
		}
		path := "unary Lb.Pick"
		if x.Streams > 0 {
			path = fmt.Sprintf("Lb.PickStream (%d per connection)", x.Streams)
		}
		tbl.Rows = append(tbl.Rows, []string{path, fmt.Sprint(x.Picks), fmt.Sprint(x.Errors), fmt.Sprintf("%.0f", x.PicksPerSec), fmt.Sprintf("%.1f", x.PickP50Us),
			fmt.Sprintf("%.1f", x.PickP99Us), fmt.Sprint(x.PropSamples), fmt.Sprintf("%.2f", x.PropP50Ms), fmt.Sprintf("%.2f", x.PropP99Ms)})
	}
	picks := report.CheckMin(mPicks, r.PicksPerSec, targetPicksPerSec, "%.0f picks/s")
	if r.Errors > 0 {
		picks.Status = report.StatusFail
		picks.Measured += fmt.Sprintf(" (%d errors)", r.Errors)
	}
	if unary.PicksPerSec > 0 {
		picks.Measured += fmt.Sprintf(" over PickStream (unary Pick %.0f picks/s, %.2f× as fast)", unary.PicksPerSec, r.PicksPerSec/unary.PicksPerSec)
	}
	picks = picks.WithBaseline("ratio to target", r.PicksPerSec/targetPicksPerSec)
	prop := report.CheckMax(mProp, r.PropP99Ms, targetPropagationP99Ms, "%.2f ms")
	if r.PropSamples == 0 {
		prop = report.NotMeasured(mProp, prop.Target, "no propagation sample")
	}
	return []report.Table{tbl}, []report.Target{
		picks,
		report.Info(mP99, fmt.Sprintf("%.1f µs (p50 %.1f µs)", r.PickP99Us, r.PickP50Us)),
		report.Info(mProp50, fmt.Sprintf("%.2f ms", r.PropP50Ms)),
		prop.WithBaseline("ratio to target", r.PropP99Ms/targetPropagationP99Ms),
	}
}
