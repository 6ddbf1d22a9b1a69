// Package python hosts AIGES Python engines (a wrapper.py built on the aiges SDK) in a
// supervised pool of Python worker processes: each runs `python3 -m aiges.runtime
// --wrapper <path>` and speaks the loader's worker protocol (package worker).
//
//	eng := python.New(python.Options{WrapperPath: "examples/engines/python-echo", Workers: 2, Log: log})
//	if err := eng.Init(ctx, cfg); err != nil { ... } // imports wrapper.py, calls wrapperInit in every worker
//	resp, err := eng.Once(ctx, req)                   // wrapperOnceExec in the least busy worker
//	defer eng.Fini(ctx)
package python

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/services/loader/engine"
	"github.com/athenaserving/asf/services/loader/worker"
	"github.com/rs/zerolog"
)

// EnvSDK names the environment variable that points at the aiges SDK directory (the
// directory holding the aiges package).
const EnvSDK = "ASF_AIGES_SDK"

// InlineHandoff is how long a call may run on a Python worker's reading thread before
// the reading goes to another thread (the runtime's INLINE_HANDOFF): the pool nudges a
// worker when one of its calls has been running that long (worker.Config.Handoff).
const InlineHandoff = time.Millisecond

// DefaultPython is the interpreter used when Options.Python is empty.
const DefaultPython = "/usr/bin/python3"

// Options configures a Python engine.
type Options struct {
	// Name is the engine's name (default "python").
	Name string
	// WrapperPath is wrapper.py or the directory holding it; workers run in its directory.
	WrapperPath string
	// Workers is the number of worker processes (default runtime.NumCPU()).
	Workers int
	// Threads is the number of calls one worker serves at once (default 8).
	Threads int
	// Python is the interpreter (default /usr/bin/python3): a path to any python — a
	// virtualenv's bin/python (used as is, not resolved through its symlink, so the venv's
	// site-packages apply), a conda environment's bin/python — or a bare name looked up in
	// PATH. Init fails with 10107 when it cannot be run.
	Python string
	// PluginCmd is a full command that starts the interpreter, split on white space, such as
	// "conda run --no-capture-output -n asr python" or "/opt/venv/bin/python -X utf8"
	// (AIGES [aiges] pythonPluginCmd). The worker's own arguments follow it. It takes
	// precedence over Python.
	PluginCmd string
	// Async is AIGES asyncMode: session results come only through the wrapper's callback,
	// wrapperRead is never called.
	Async bool
	// ResultsAtEnd is AIGES realTimeRlt=false: in sync mode wrapperRead is called only after
	// the last input frame of a session, not after every write.
	ResultsAtEnd bool
	// SDKPath is the directory holding the aiges package (default: $ASF_AIGES_SDK, else
	// sdk/python found next to or above the loader binary or the working directory).
	SDKPath string
	// Env is added to every worker's environment (KEY=value).
	Env []string
	// InitTimeout, HangGrace, RestartMin and RestartMax tune the pool (worker.Config);
	// zero values take its defaults.
	InitTimeout, HangGrace, RestartMin, RestartMax time.Duration
	// Log receives the pool's events and the workers' output.
	Log zerolog.Logger
}

// New returns a Python engine built on worker.NewEngine. A configuration problem (no
// wrapper, no SDK) is reported by Init.
func New(opts Options) engine.Engine {
	cfg, err := Config(opts)
	if err != nil {
		return failed{name: cfg.Name, err: err}
	}
	return worker.NewEngine(cfg)
}

// Config resolves opts into the worker pool configuration New uses.
func Config(opts Options) (worker.Config, error) {
	if opts.Name == "" {
		opts.Name = "python"
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.NumCPU()
	}
	if opts.Threads <= 0 {
		opts.Threads = 8
	}
	if opts.Python == "" {
		opts.Python = DefaultPython
	}
	interp := []string{opts.Python}
	if f := strings.Fields(opts.PluginCmd); len(f) > 0 {
		interp = f
	}
	cfg := worker.Config{
		Name: opts.Name, Size: opts.Workers, Log: opts.Log, Handoff: InlineHandoff,
		InitTimeout: opts.InitTimeout, HangGrace: opts.HangGrace, RestartMin: opts.RestartMin, RestartMax: opts.RestartMax,
	}
	if opts.WrapperPath == "" {
		return cfg, fmt.Errorf("python engine %s: no wrapper path: %w", opts.Name, aserr.ErrInvalidParam)
	}
	wrapper, err := filepath.Abs(opts.WrapperPath)
	if err != nil {
		return cfg, fmt.Errorf("python engine %s: wrapper %s: %v: %w", opts.Name, opts.WrapperPath, err, aserr.ErrInvalidParam)
	}
	dir := wrapper
	if st, err := os.Stat(wrapper); err != nil {
		return cfg, fmt.Errorf("python engine %s: wrapper: %v: %w", opts.Name, err, aserr.ErrInvalidParam)
	} else if !st.IsDir() {
		dir = filepath.Dir(wrapper)
	} else if _, err := os.Stat(filepath.Join(wrapper, "wrapper.py")); err != nil {
		return cfg, fmt.Errorf("python engine %s: no wrapper.py in %s: %w", opts.Name, wrapper, aserr.ErrInvalidParam)
	}
	sdk, err := findSDK(opts.SDKPath)
	if err != nil {
		return cfg, fmt.Errorf("python engine %s: %w", opts.Name, err)
	}
	pythonPath := sdk
	if old := os.Getenv("PYTHONPATH"); old != "" {
		pythonPath += string(os.PathListSeparator) + old
	}
	exe, err := interpreter(interp[0])
	if err != nil {
		return cfg, fmt.Errorf("python engine %s: %w", opts.Name, err)
	}
	cfg.Command = append(append([]string{exe}, interp[1:]...), "-u", "-m", "aiges.runtime", "--wrapper", wrapper)
	cfg.Dir = dir
	cfg.Env = append([]string{
		"PYTHONPATH=" + pythonPath,
		"PYTHONDONTWRITEBYTECODE=1",
		"ASF_WORKER_THREADS=" + strconv.Itoa(opts.Threads),
		EnvAsync + "=" + boolEnv(opts.Async),
		EnvResultsAtEnd + "=" + boolEnv(opts.ResultsAtEnd),
	}, opts.Env...)
	return cfg, nil
}

// Worker environment variables that carry the AIGES session modes to aiges.runtime.
const (
	// EnvAsync is "1" for AIGES asyncMode (Options.Async).
	EnvAsync = "ASF_WORKER_ASYNC"
	// EnvResultsAtEnd is "1" for AIGES realTimeRlt=false (Options.ResultsAtEnd).
	EnvResultsAtEnd = "ASF_WORKER_RESULTS_AT_END"
)

func boolEnv(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// interpreter returns the program that runs Python: a path containing a separator is made
// absolute (workers run in the wrapper's directory) but not resolved through symlinks — a
// virtualenv's python is a symlink whose location selects the venv — and a bare name is
// looked up in PATH.
func interpreter(name string) (string, error) {
	var p string
	if strings.ContainsRune(name, filepath.Separator) {
		abs, err := filepath.Abs(name)
		if err != nil {
			return "", fmt.Errorf("python interpreter %s: %v: %w", name, err, aserr.ErrInvalidParam)
		}
		p = abs
	} else {
		lp, err := exec.LookPath(name)
		if err != nil {
			return "", fmt.Errorf("python interpreter %s: %v: %w", name, err, aserr.ErrInvalidParam)
		}
		p = lp
	}
	st, err := os.Stat(p)
	if err != nil {
		return "", fmt.Errorf("python interpreter: %v: %w", err, aserr.ErrInvalidParam)
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("python interpreter %s is not an executable file: %w", p, aserr.ErrInvalidParam)
	}
	return p, nil
}

func isSDK(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "aiges", "runtime", "__main__.py"))
	return err == nil
}

// findSDK returns the aiges SDK directory: explicit, else $ASF_AIGES_SDK, else sdk/python
// in the binary's directory or one of its parents, else in the working directory or one
// of its parents.
func findSDK(explicit string) (string, error) {
	for _, c := range []string{explicit, os.Getenv(EnvSDK)} {
		if c == "" {
			continue
		}
		abs, err := filepath.Abs(c)
		if err == nil && isSDK(abs) {
			return abs, nil
		}
		return "", fmt.Errorf("aiges SDK %s: no aiges package there: %w", c, aserr.ErrInvalidParam)
	}
	var starts []string
	if exe, err := os.Executable(); err == nil {
		if r, err := filepath.EvalSymlinks(exe); err == nil {
			exe = r
		}
		starts = append(starts, filepath.Dir(exe))
	}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	for _, s := range starts {
		for d := s; ; d = filepath.Dir(d) {
			if c := filepath.Join(d, "sdk", "python"); isSDK(c) {
				return c, nil
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	return "", fmt.Errorf("aiges SDK not found (set %s or Options.SDKPath; searched above %s): %w",
		EnvSDK, strings.Join(starts, ", "), aserr.ErrInvalidParam)
}

// failed is the engine New returns for a configuration it cannot run: Init reports why.
type failed struct {
	name string
	err  error
}

func (f failed) Name() string                                  { return f.name }
func (f failed) Init(context.Context, map[string]string) error { return f.err }
func (f failed) Fini(context.Context) error                    { return nil }
func (f failed) Once(context.Context, engine.Request) (engine.Response, error) {
	return engine.Response{}, fmt.Errorf("%v: %w", f.err, aserr.ErrReleased)
}
func (f failed) NewSession(context.Context, engine.SessionParams, engine.Emit) (engine.Session, error) {
	return nil, fmt.Errorf("%v: %w", f.err, aserr.ErrReleased)
}
