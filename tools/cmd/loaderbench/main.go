// Command loaderbench measures the loader's engine paths and prints one JSON object:
//
//   - python: an identity wrapperOnceExec (examples/engines/python-echo) through the
//     loader's gRPC Once (Python worker pool, one worker, one caller) against the same
//     call made in a Python process (direct_once.py), as p50/p99 latency and the
//     latency the loader adds;
//   - c: the example C engine (examples/engines/c-echo, built with gcc) in the loader
//     process against the same engine behind isolation process, as throughput and
//     latency, both called directly (engine.Once) and through the loader's gRPC Once.
//
// -via says how the gRPC once requests travel: stream (default), on Loader.OnceStream
// through libs/callmux with two raw streams (libs/rawstream), as atom sends them
// (loader-streams, loader-raw-streams); grpc-stream, the same on two gRPC streams; or
// unary, one Loader.Once call each. It runs the loaders in this process on 127.0.0.1:0 without
// polaris.
//
//	loaderbench -mode python,c -duration 3s -wrapper examples/engines/python-echo/wrapper.py -sdk sdk/python
//	loaderbench engine-worker ...   (internal) one isolation worker process
package main

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/athenaserving/asf/libs/buildinfo"
	"github.com/athenaserving/asf/libs/callmux"
	"github.com/athenaserving/asf/libs/callmux/muxwire"
	"github.com/athenaserving/asf/libs/grpcx"
	loaderpb "github.com/athenaserving/asf/libs/proto/loader/v1"
	"github.com/athenaserving/asf/libs/rawstream"
	"github.com/athenaserving/asf/services/loader"
	"github.com/athenaserving/asf/services/loader/engine"
	"github.com/athenaserving/asf/services/loader/engine/cabi/cabitest"
	"github.com/athenaserving/asf/tools/asfbench"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

//go:embed direct_once.py
var directOncePy []byte

// TargetPythonAddedP50Us is the most latency (µs, p50) the loader may add to a Python
// identity once call.
const TargetPythonAddedP50Us = 150

// Dist is a latency distribution and the throughput of one measurement.
type Dist struct {
	Calls     int     `json:"calls"`
	Errors    int     `json:"errors"`
	P50Us     float64 `json:"p50_us"`
	P99Us     float64 `json:"p99_us"`
	MeanUs    float64 `json:"mean_us"`
	PerSecond float64 `json:"calls_per_s"`
}

// PythonResult compares the loader's Python engine path with an in-process Python call.
type PythonResult struct {
	PayloadBytes int `json:"payload_bytes"`
	// Via is how the gRPC once requests travelled: stream or unary (-via).
	Via       string `json:"via"`
	Loader    Dist   `json:"loader_grpc"`
	InProcess Dist   `json:"python_in_process"`
	// Echo is the loader's gRPC Once to its Go echo engine (in process): the gRPC floor
	// of loader_grpc.
	Echo Dist `json:"loader_grpc_go_echo"`
	// Worker is engine.Once on the Python worker pool without gRPC: the worker protocol
	// and the worker alone.
	Worker Dist `json:"worker_direct"`
	// WorkerHopP50Us is loader_grpc's p50 minus loader_grpc_go_echo's: what the Python
	// worker adds to a gRPC Once.
	WorkerHopP50Us float64 `json:"worker_hop_p50_us"`
	AddedP50Us     float64 `json:"added_p50_us"`
	AddedP99Us     float64 `json:"added_p99_us"`
	TargetP50Us    float64 `json:"target_added_p50_us"`
	Pass           bool    `json:"pass"`
	Error          string  `json:"error,omitempty"`
}

// CResult compares the C engine in the loader process with isolation process.
type CResult struct {
	Concurrency int `json:"concurrency"`
	// Via is how the gRPC once requests travelled: stream or unary (-via).
	Via           string  `json:"via"`
	PayloadBytes  int     `json:"payload_bytes"`
	InProcess     Dist    `json:"engine_in_process"`
	Isolated      Dist    `json:"engine_isolated"`
	GRPCInProcess Dist    `json:"grpc_in_process"`
	GRPCIsolated  Dist    `json:"grpc_isolated"`
	Ratio         float64 `json:"isolated_over_in_process"`
	GRPCRatio     float64 `json:"grpc_isolated_over_in_process"`
	Error         string  `json:"error,omitempty"`
}

// Result is the JSON output.
type Result struct {
	Python *PythonResult `json:"python,omitempty"`
	C      *CResult      `json:"c,omitempty"`
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == loader.EngineWorkerCommand {
		signal.Ignore(os.Interrupt)
		os.Exit(loader.EngineWorkerMain(context.Background(), os.Args[2:], os.Getenv))
	}
	if buildinfo.PrintIfAsked(os.Stdout, "loaderbench", os.Args[1:]) {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return // the flags were printed
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loaderbench:", err)
		os.Exit(1)
	}
}

type options struct {
	modes             []string
	warmup, duration  time.Duration
	concurrency, size int
	python, wrapper   string
	sdk, cEngine      string
	via               string
	log               io.Writer
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("loaderbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	mode := fs.String("mode", "python,c", "comma-separated measurements: python, c")
	o := options{log: stderr}
	fs.DurationVar(&o.warmup, "warmup", time.Second, "warm-up before each measurement")
	fs.DurationVar(&o.duration, "duration", 3*time.Second, "length of each measurement")
	fs.IntVar(&o.concurrency, "concurrency", 4, "c: concurrent callers for the throughput comparison")
	fs.IntVar(&o.size, "size", 1280, "payload bytes per call")
	fs.StringVar(&o.python, "python", "/usr/bin/python3", "python: interpreter for the in-process timing")
	fs.StringVar(&o.wrapper, "wrapper", "", "python: wrapper.py (default: examples/engines/python-echo/wrapper.py above the working directory)")
	fs.StringVar(&o.sdk, "sdk", "", "python: aiges SDK directory (default: sdk/python above the working directory)")
	fs.StringVar(&o.cEngine, "c-engine", "", "c: libwrapper.so of the example engine (default: build examples/engines/c-echo with gcc)")
	fs.StringVar(&o.via, "via", viaStream, "how the once requests travel: stream (Loader.OnceStream, two raw streams, as atom sends them), grpc-stream (two gRPC streams) or unary (one Loader.Once call each)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.via != viaStream && o.via != viaGRPCStream && o.via != viaUnary {
		return fmt.Errorf("-via %q: want %s, %s or %s", o.via, viaStream, viaGRPCStream, viaUnary)
	}
	o.modes = strings.Split(*mode, ",")
	var res Result
	if slices.Contains(o.modes, "python") {
		res.Python = benchPython(ctx, o)
	}
	if slices.Contains(o.modes, "c") {
		res.C = benchC(ctx, o)
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

// findUp returns rel under the first directory, from the working directory upwards, that has it.
func findUp(rel string) string {
	dir, _ := os.Getwd()
	for {
		p := filepath.Join(dir, rel)
		if _, err := os.Stat(p); err == nil {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return rel
		}
		dir = parent
	}
}

func (o options) logf(format string, a ...any) { fmt.Fprintf(o.log, "loaderbench: "+format+"\n", a...) }

func benchPython(ctx context.Context, o options) *PythonResult {
	r := &PythonResult{PayloadBytes: o.size, Via: o.via, TargetP50Us: TargetPythonAddedP50Us}
	if err := benchPythonInto(ctx, o, r); err != nil {
		r.Error = err.Error()
	}
	return r
}

func benchPythonInto(ctx context.Context, o options, r *PythonResult) error {
	if o.wrapper == "" {
		o.wrapper = findUp("examples/engines/python-echo/wrapper.py")
	}
	if o.sdk == "" {
		o.sdk = findUp("sdk/python")
	}
	wrapper, err := filepath.Abs(o.wrapper)
	if err != nil {
		return err
	}
	sdk, err := filepath.Abs(o.sdk)
	if err != nil {
		return err
	}
	if err := os.Setenv("ASF_AIGES_SDK", sdk); err != nil {
		return err
	}
	cfg := baseConfig()
	cfg.Service, cfg.Engine, cfg.EnginePath, cfg.Workers = "python-identity", loader.EnginePython, wrapper, 1
	o.logf("python: loader gRPC Once (%s), 1 caller, %v", o.via, o.duration)
	in := onceInput(cfg.Service, o.size)
	err = withLoader(ctx, cfg, o.via, func(once onceFunc) error {
		d, err := measure(ctx, 1, o.warmup, o.duration, func(ctx context.Context) error {
			_, err := once(ctx, in)
			return err
		})
		r.Loader = d
		return err
	})
	if err != nil {
		return fmt.Errorf("loader: %w", err)
	}
	ecfg := baseConfig()
	ecfg.Service, ecfg.Engine = "python-identity", loader.EngineEcho
	o.logf("python: loader gRPC Once (%s) to the Go echo engine, 1 caller, %v", o.via, o.duration)
	err = withLoader(ctx, ecfg, o.via, func(once onceFunc) error {
		d, err := measure(ctx, 1, o.warmup, o.duration, func(ctx context.Context) error {
			_, err := once(ctx, in)
			return err
		})
		r.Echo = d
		return err
	})
	if err != nil {
		return fmt.Errorf("loader, echo engine: %w", err)
	}
	r.WorkerHopP50Us = r.Loader.P50Us - r.Echo.P50Us
	o.logf("python: engine.Once on the worker pool, 1 caller, %v", o.duration)
	if r.Worker, err = pythonWorker(ctx, o, wrapper); err != nil {
		return fmt.Errorf("worker pool: %w", err)
	}
	o.logf("python: in-process wrapperOnceExec, %v", o.duration)
	r.InProcess, err = pythonDirect(ctx, o, wrapper, sdk)
	if err != nil {
		return fmt.Errorf("in-process python: %w", err)
	}
	r.AddedP50Us = r.Loader.P50Us - r.InProcess.P50Us
	r.AddedP99Us = r.Loader.P99Us - r.InProcess.P99Us
	r.Pass = r.Loader.Errors == 0 && r.AddedP50Us <= r.TargetP50Us
	return nil
}

// pythonWorker measures engine.Once on a one-worker Python pool, without the loader's gRPC.
func pythonWorker(ctx context.Context, o options, wrapper string) (Dist, error) {
	cfg := baseConfig()
	cfg.Service, cfg.Engine, cfg.EnginePath, cfg.Workers = "python-identity", loader.EnginePython, wrapper, 1
	eng, err := loader.NewEngine(cfg, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		return Dist{}, err
	}
	if err := eng.Init(ctx, nil); err != nil {
		return Dist{}, fmt.Errorf("init: %w", err)
	}
	req := engine.Request{Tag: "bench", Inputs: []engine.Payload{{Meta: engine.Meta{Name: "text", Attrs: map[string]string{"encoding": "utf8"}}, Data: bytes.Repeat([]byte("x"), o.size)}}}
	d, err := measure(ctx, 1, o.warmup, o.duration, func(ctx context.Context) error {
		_, err := eng.Once(ctx, req)
		return err
	})
	if ferr := eng.Fini(ctx); err == nil {
		err = ferr
	}
	return d, err
}

// pythonDirect runs direct_once.py and reads its JSON line.
func pythonDirect(ctx context.Context, o options, wrapper, sdk string) (Dist, error) {
	f, err := os.CreateTemp("", "loaderbench-*.py")
	if err != nil {
		return Dist{}, err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(directOncePy); err != nil {
		f.Close()
		return Dist{}, err
	}
	if err := f.Close(); err != nil {
		return Dist{}, err
	}
	cmd := exec.CommandContext(ctx, o.python, f.Name(), "--wrapper", wrapper, "--sdk", sdk,
		"--warmup", fmt.Sprint(o.warmup.Seconds()), "--duration", fmt.Sprint(o.duration.Seconds()), "--size", fmt.Sprint(o.size))
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return Dist{}, fmt.Errorf("%v: %s", err, strings.TrimSpace(errb.String()))
	}
	var d Dist
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &d); err != nil {
		return Dist{}, fmt.Errorf("output %q: %w", out.String(), err)
	}
	return d, nil
}

func benchC(ctx context.Context, o options) *CResult {
	r := &CResult{Concurrency: o.concurrency, Via: o.via, PayloadBytes: o.size}
	if err := benchCInto(ctx, o, r); err != nil {
		r.Error = err.Error()
	}
	return r
}

func benchCInto(ctx context.Context, o options, r *CResult) error {
	so := o.cEngine
	if so == "" {
		dir, err := os.MkdirTemp("", "loaderbench-c-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		if so, err = cabitest.BuildEchoTo(dir); err != nil {
			return err
		}
	}
	req := engine.Request{Tag: "bench", Inputs: []engine.Payload{{Meta: engine.Meta{Name: "text"}, Data: bytes.Repeat([]byte("x"), o.size)}}}
	in := onceInput("echo", o.size)
	for _, iso := range []string{loader.IsolationNone, loader.IsolationProcess} {
		cfg := baseConfig()
		cfg.Engine, cfg.EnginePath, cfg.Isolation, cfg.Licence = loader.EngineC, so, iso, max(o.concurrency, 1)*2
		eng, err := loader.NewEngine(cfg, zerolog.Nop(), prometheus.NewRegistry())
		if err != nil {
			return err
		}
		if err := eng.Init(ctx, nil); err != nil {
			return fmt.Errorf("%s: init: %w", iso, err)
		}
		o.logf("c: engine.Once, isolation %s, c=%d, %v", iso, o.concurrency, o.duration)
		d, err := measure(ctx, o.concurrency, o.warmup, o.duration, func(ctx context.Context) error {
			_, err := eng.Once(ctx, req)
			return err
		})
		if ferr := eng.Fini(ctx); err == nil {
			err = ferr
		}
		if err != nil {
			return fmt.Errorf("%s: %w", iso, err)
		}
		o.logf("c: loader gRPC Once (%s), isolation %s, c=%d, %v", o.via, iso, o.concurrency, o.duration)
		var g Dist
		err = withLoader(ctx, cfg, o.via, func(once onceFunc) error {
			g, err = measure(ctx, o.concurrency, o.warmup, o.duration, func(ctx context.Context) error {
				_, err := once(ctx, in)
				return err
			})
			return err
		})
		if err != nil {
			return fmt.Errorf("%s via gRPC: %w", iso, err)
		}
		if iso == loader.IsolationNone {
			r.InProcess, r.GRPCInProcess = d, g
		} else {
			r.Isolated, r.GRPCIsolated = d, g
		}
	}
	if r.InProcess.PerSecond > 0 {
		r.Ratio = r.Isolated.PerSecond / r.InProcess.PerSecond
	}
	if r.GRPCInProcess.PerSecond > 0 {
		r.GRPCRatio = r.GRPCIsolated.PerSecond / r.GRPCInProcess.PerSecond
	}
	return nil
}

func baseConfig() loader.Config {
	cfg := loader.DefaultConfig()
	cfg.GRPCListen, cfg.AdminListen, cfg.PolarisAddr = "127.0.0.1:0", "127.0.0.1:0", ""
	cfg.Licence, cfg.WarmUp, cfg.DrainTimeout, cfg.LogLevel = 16, 0, 5*time.Second, "warn"
	return cfg
}

func onceInput(service string, size int) *loaderpb.LoaderInput {
	return &loaderpb.LoaderInput{
		ServiceId: service, Headers: map[string]string{"sid": "loaderbench"}, Status: loaderpb.Status_STATUS_ONCE,
		Pl: []*loaderpb.Payload{{Meta: &loaderpb.MetaDesc{Name: "text", Attribute: map[string]string{"encoding": "utf8"}},
			Data: bytes.Repeat([]byte("x"), size)}},
	}
}

// The ways -via sends the gRPC once requests.
const (
	viaStream     = "stream"
	viaGRPCStream = "grpc-stream"
	viaUnary      = "unary"
)

// onceFunc sends one once request to the loader.
type onceFunc func(context.Context, *loaderpb.LoaderInput) (*loaderpb.LoaderOutput, error)

// withLoader starts a loader with cfg on loopback, calls fn with the way to send it once
// requests (via) and shuts it down.
func withLoader(ctx context.Context, cfg loader.Config, via string, fn func(onceFunc) error) error {
	s, err := loader.New(cfg, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	err = s.Start(sctx)
	cancel()
	// Shutdown: the client connection first, then the loader (drains, stops its engine).
	defer func() { _ = s.Shutdown(context.Background()) }()
	if err != nil {
		return err
	}
	cc, err := grpcx.Dial(s.GRPCAddr())
	if err != nil {
		return err
	}
	defer cc.Close()
	lc := loaderpb.NewLoaderClient(cc)
	if via == viaUnary {
		return fn(func(ctx context.Context, in *loaderpb.LoaderInput) (*loaderpb.LoaderOutput, error) {
			return lc.Once(ctx, in)
		})
	}
	opts := callmux.Options{Streams: 2} // atom's default loader-streams
	if via == viaStream {
		opts.Direct = &rawstream.Dialer{Target: s.GRPCAddr()} // and loader-raw-streams
	}
	mux := muxwire.NewLoaderClient(lc, opts)
	defer mux.Close()
	for wait := time.Now().Add(5 * time.Second); mux.Open() < 2 && time.Now().Before(wait); {
		time.Sleep(time.Millisecond) // until they are open: set-up, before any measurement
	}
	if mux.Open() < 2 {
		return errors.New("the loader's once streams did not open within 5 s")
	}
	return fn(mux.Call)
}

// measure runs call from c goroutines in a closed loop: warmup, then duration, recording
// each successful call's latency. It fails when no call succeeded.
func measure(ctx context.Context, c int, warmup, duration time.Duration, call func(context.Context) error) (Dist, error) {
	c = max(c, 1)
	workers := make([]latencies, c)
	errs := make([]int, c)
	var firstErr error
	var once sync.Once
	start := time.Now()
	measureFrom, end := start.Add(warmup), start.Add(warmup+duration)
	var wg sync.WaitGroup
	for w := range c {
		wg.Go(func() {
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				err := call(ctx)
				if t0.Before(measureFrom) {
					continue
				}
				if err != nil {
					errs[w]++
					once.Do(func() { firstErr = err })
					continue
				}
				workers[w].record(time.Since(t0))
			}
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return Dist{}, ctx.Err()
	}
	var all latencies
	for i := range workers {
		all.merge(&workers[i])
	}
	d := all.dist(duration)
	for _, e := range errs {
		d.Errors += e
	}
	if d.Calls == 0 {
		return d, errors.Join(errors.New("no call succeeded"), firstErr)
	}
	return d, nil
}

// latencies are the latencies of one worker: quantiles from the benchmark histogram
// (asfbench.Histogram, within 0.8 %), the mean from the exact sum.
type latencies struct {
	h   asfbench.Histogram
	sum time.Duration
}

func (l *latencies) record(d time.Duration) { l.h.Record(d); l.sum += d }

func (l *latencies) merge(o *latencies) { l.h.Merge(&o.h); l.sum += o.sum }

// dist turns latencies measured over elapsed into a Dist.
func (l *latencies) dist(elapsed time.Duration) Dist {
	n := int(l.h.Count())
	d := Dist{Calls: n}
	if n == 0 {
		return d
	}
	d.P50Us, d.P99Us = us(l.h.Quantile(0.50)), us(l.h.Quantile(0.99))
	d.MeanUs = us(l.sum) / float64(n)
	if elapsed > 0 {
		d.PerSecond = float64(n) / elapsed.Seconds()
	}
	return d
}

// summarise turns latencies measured over elapsed into a Dist.
func summarise(all []time.Duration, elapsed time.Duration) Dist {
	var l latencies
	for _, d := range all {
		l.record(d)
	}
	return l.dist(elapsed)
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
