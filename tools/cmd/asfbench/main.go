// Command asfbench runs the Athena Serving benchmark: it starts the bare baselines (in a child
// process, so their CPU and memory are measured like the suite's), starts the suite from built
// binaries, runs the scenarios and writes bench/results/<timestamp>/report.md with PNG charts.
//
//	asfbench --profile quick --bin bin --out bench/results
//	asfbench serve-baseline   # internal: the baseline server process
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/athenaserving/asf/libs/buildinfo"
	"github.com/athenaserving/asf/tools/asfbench"
	"github.com/athenaserving/asf/tools/asfbench/baseline"
	"github.com/athenaserving/asf/tools/asfbench/scenario"
	"github.com/athenaserving/asf/tools/suite"
)

func main() {
	if buildinfo.PrintIfAsked(os.Stdout, "asfbench", os.Args[1:]) {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if len(os.Args) > 1 && os.Args[1] == "serve-baseline" {
		err = serveBaseline(ctx, os.Stdin, os.Stdout)
	} else {
		err = run(ctx, os.Args[1:], os.Stderr)
	}
	if errors.Is(err, flag.ErrHelp) {
		return // the flags were printed
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "asfbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, log io.Writer) error {
	fs := flag.NewFlagSet("asfbench", flag.ContinueOnError)
	profile := fs.String("profile", "quick", "quick (about a minute) or full (a few minutes)")
	bin := fs.String("bin", "bin", "directory of the built service binaries")
	out := fs.String("out", "bench/results", "results root; the report goes to <out>/<timestamp>/")
	python := fs.String("python", "/usr/bin/python3", "interpreter for the FastAPI + uvicorn baseline")
	only := fs.String("only", "", "comma-separated scenarios to run: once,stream,python,loader,control,mtls,tracing (default all)")
	loaderBench := fs.String("loaderbench", "", "loaderbench binary (tools/cmd/loaderbench; default <bin>/loaderbench)")
	lbBench := fs.String("lbbench", "", "lbbench binary (tools/cmd/lbbench; default <bin>/lbbench)")
	noSuite := fs.Bool("no-suite", false, "measure the baselines only")
	noSuiteReason := fs.String("no-suite-reason", "--no-suite was given", "why the suite is not measured (printed in the report)")
	pythonSuite := fs.Bool("python-suite", true, "also start the suite with the python-identity engine (examples/engines/python-echo)")
	loaders := fs.Int("loaders", 2, "loader processes in the suite")
	tcpOnly := fs.Bool("tcp-only", false, "keep the suite's internal hops on loopback TCP (default: Unix sockets between its co-located services)")
	procs := fs.Int("gomaxprocs", 0, "GOMAXPROCS of every suite process (0: half the machine's cores, at least 1; -1: every core)")
	licence := fs.Int("licence", 0, "licence per loader (0 = enough for the largest stream scenario)")
	apiKey := fs.String("api-key", "bench-key", "API key for HMAC signing")
	apiSecret := fs.String("api-secret", "bench-secret", "API secret for HMAC signing")
	appID := fs.String("app-id", "bench", "ASE header.app_id")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var p scenario.Profile
	switch *profile {
	case "quick":
		p = scenario.Quick()
	case "full":
		p = scenario.Full()
	default:
		return fmt.Errorf("unknown profile %q", *profile)
	}
	if *licence == 0 {
		// Every WebSocket session holds a licence slot: size the loaders for the largest count.
		most := 0
		for _, n := range p.StreamSessions {
			most = max(most, n)
		}
		*licence = most/max(*loaders, 1) + 64
	}
	dir := filepath.Join(*out, time.Now().UTC().Format("20060102-150405"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if *loaderBench == "" {
		*loaderBench = filepath.Join(*bin, "loaderbench")
	}
	if *lbBench == "" {
		*lbBench = filepath.Join(*bin, "lbbench")
	}
	repo, err := filepath.Abs(filepath.Dir(filepath.Clean(*bin)))
	if err != nil {
		return err
	}
	env := &scenario.Env{
		Profile: p, Python: *python, OutDir: dir, Log: log, PythonSuite: *pythonSuite,
		Creds: asfbench.Credentials{APIKey: *apiKey, APISecret: *apiSecret}, AppID: *appID,
		LoaderBench: absOr(*loaderBench), LBBench: absOr(*lbBench), RepoDir: repo,
		SuiteSetup: suiteSetup(*procs, *tcpOnly), LoaderEnv: suite.WithRuntimeGODEBUG(os.Environ()),
	}
	if *only != "" {
		env.Only = map[string]bool{}
		for _, s := range strings.Split(*only, ",") {
			env.Only[strings.TrimSpace(s)] = true
		}
	}
	switch {
	case *noSuite:
		env.SuiteUnavailable = *noSuiteReason
	default:
		if missing := missingBinaries(*bin); len(missing) > 0 {
			env.SuiteUnavailable = fmt.Sprintf("binaries missing in %s: %s (run make build)", *bin, strings.Join(missing, ", "))
		} else {
			env.StartSuite = func(ctx context.Context, spec scenario.SuiteSpec) (scenario.Suite, error) {
				sctx, cancel := context.WithTimeout(ctx, 90*time.Second)
				defer cancel()
				// Each suite gets its own data directory: the echo suite is still running when the
				// python-identity and mTLS suites start, and two polaris processes cannot share one store.
				engine := spec.Engine
				o := suite.Options{BinDir: *bin, Loaders: *loaders, Engine: engine, Licence: *licence, LogDir: spec.LogDir,
					DataDir: filepath.Join(spec.LogDir, "data"), Insecure: spec.Insecure, GoMaxProcs: *procs, TCPOnly: *tcpOnly,
					App: suite.App{AppID: *appID, APIKey: *apiKey, APISecret: *apiSecret}}
				if spec.Tracing { // its own Jaeger (bin/jaeger), every service exporting to it
					o.Jaeger, o.TraceSampleRate = true, strconv.FormatFloat(spec.TraceSampleRate, 'g', -1, 64)
				}
				if engine == "python-identity" { // the identity wrapper.py from examples, one worker per core
					o.Engine, o.Service = "python", engine
					o.LoaderArgs = []string{"--engine-path", filepath.Join(filepath.Dir(*bin), "examples", "engines", "python-echo", "wrapper.py")}
				}
				return suite.Start(sctx, o)
			}
		}
	}

	bl, err := startBaselineChild(ctx, filepath.Join(dir, "logs"))
	if err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	defer bl.stop()
	env.BaselineHTTP, env.BaselineGRPC, env.BaselinePIDs = bl.HTTP, bl.GRPC, []int{bl.cmd.Process.Pid}

	fmt.Fprintf(log, "asfbench: profile %s, results in %s\n", p.Name, dir)
	rep, runErr := scenario.Run(ctx, env)
	if rep != nil {
		if err := rep.Write(dir); err != nil {
			return errors.Join(runErr, fmt.Errorf("write report: %w", err))
		}
		fmt.Fprintf(log, "asfbench: report %s\n", filepath.Join(dir, "report.md"))
	}
	return runErr
}

// absOr returns p made absolute (p itself when that fails).
func absOr(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

func missingBinaries(dir string) []string {
	var out []string
	for _, b := range []string{"polaris", "lbclient", "atom", "loader", "webgate"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			out = append(out, b)
		}
	}
	return out
}

// baselineAddrs is the line the baseline child prints once it listens.
type baselineAddrs struct {
	HTTP string `json:"http"`
	GRPC string `json:"grpc"`
}

type baselineChild struct {
	baselineAddrs
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan error
}

// startBaselineChild re-executes this binary as `serve-baseline` and reads its addresses.
func startBaselineChild(ctx context.Context, logDir string) (*baselineChild, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(logDir, "baseline.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(self, "serve-baseline")
	cmd.Stderr = logf
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	b := &baselineChild{cmd: cmd, stdin: stdin, done: make(chan error, 1)}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() { b.done <- cmd.Wait() }()
	select {
	case line, ok := <-lines:
		if !ok {
			b.stop()
			return nil, errors.New("baseline child exited before listening")
		}
		if err := json.Unmarshal([]byte(line), &b.baselineAddrs); err != nil {
			b.stop()
			return nil, fmt.Errorf("baseline child said %q: %w", line, err)
		}
		return b, nil
	case <-time.After(10 * time.Second):
		b.stop()
		return nil, errors.New("baseline child did not start within 10 s")
	case <-ctx.Done():
		b.stop()
		return nil, ctx.Err()
	}
}

// stop closes the child's stdin (its signal to stop) and waits, killing it after 10 s.
func (b *baselineChild) stop() {
	_ = b.stdin.Close()
	select {
	case <-b.done:
	case <-time.After(10 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.done
	}
}

// serveBaseline runs the bare HTTP and gRPC echo servers on loopback until stdin closes or a
// signal arrives.
func serveBaseline(ctx context.Context, stdin io.Reader, stdout io.Writer) error {
	h, err := baseline.NewHTTPEcho("127.0.0.1:0")
	if err != nil {
		return err
	}
	g, err := baseline.NewGRPCEcho("127.0.0.1:0")
	if err != nil {
		return err
	}
	errc := make(chan error, 2)
	go func() { errc <- h.Run() }()
	go func() { errc <- g.Run() }()
	b, _ := json.Marshal(baselineAddrs{HTTP: h.URL(), GRPC: g.Addr()})
	fmt.Fprintln(stdout, string(b))
	eof := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, stdin)
		close(eof)
	}()
	var runErr error
	select {
	case <-ctx.Done():
	case <-eof:
	case runErr = <-errc:
	}
	// Shutdown: (1) HTTP echo (closes WebSockets), (2) gRPC echo.
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = h.Shutdown(sctx)
	g.Stop()
	return errors.Join(runErr, err)
}

// suiteSetup is the report's note on the suite processes' GOMAXPROCS (suite.Options.GoMaxProcs)
// and on what carries their internal hops (suite.Options.TCPOnly).
func suiteSetup(procs int, tcpOnly bool) string {
	hops := " Its internal hops go over Unix sockets between the co-located services (--tcp-only: loopback TCP)."
	if tcpOnly {
		hops = " Its internal hops go over loopback TCP (--tcp-only)."
	}
	n, ok := suite.GoMaxProcsFor(procs)
	switch {
	case ok:
		return fmt.Sprintf("Every suite process runs with GOMAXPROCS=%d of %d cores (--gomaxprocs; the suite's default is half the cores: docs/operations.md, \"Co-located services\").",
			n, runtime.NumCPU()) + hops
	case os.Getenv("GOMAXPROCS") != "":
		return fmt.Sprintf("Every suite process runs with GOMAXPROCS=%s, as this process's environment sets it.", os.Getenv("GOMAXPROCS")) + hops
	}
	return "Every suite process runs with a P per core (--gomaxprocs -1)." + hops
}
