package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/athenaserving/asf/tools/asectl/internal/admin"
	"github.com/athenaserving/asf/tools/asectl/internal/pack"
	"github.com/athenaserving/asf/tools/asectl/internal/scaffold"
	"github.com/athenaserving/asf/tools/suite"
	"github.com/spf13/cobra"
)

func (a *app) engineCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "engine",
		Short: "Engine projects: new, dryrun, schema, pack, run",
		Long: `An engine's life: make a project (engine new), try it without a suite (engine dryrun),
see the capability schema it publishes (engine schema), build its loader image (engine
pack), and serve it from a running suite (engine run).

PATH (default .) is a project directory (holding wrapper.py or libwrapper.so), a
wrapper.py, a C engine .so, or an aiges.toml.`,
		Example: "  asectl engine new --lang python greeter\n  cd greeter && asectl engine dryrun . --input text=sample.txt:text\n  asectl engine run .",
	}
	cmd.AddCommand(a.engineNewCmd(), a.engineDryrunCmd(), a.engineSchemaCmd(), a.enginePackCmd(), a.engineRunCmd())
	return cmd
}

func (a *app) engineNewCmd() *cobra.Command {
	var lang, dir string
	cmd := &cobra.Command{
		Use:   "new NAME --lang python|c",
		Short: "Make a ready engine project: wrapper, schema, aiges.toml, Makefile, Dockerfile",
		Long: `new writes a working engine named NAME (its service id and route /v1/private/NAME) into
./NAME (or --dir): a Python wrapper on the aiges SDK or a C library on the AIGES ABI with
the loader's headers, its capability schema, aiges.toml, a Makefile driving asectl, and a
Dockerfile for its loader image on the project's base image (asf/loader).`,
		Example: "  asectl engine new --lang python greeter\n  asectl engine new --lang c --dir engines/greeter-c greeter-c",
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			if lang == "" {
				return usagef("engine new needs --lang python or --lang c")
			}
			if dir == "" {
				dir = argv[0]
			}
			files, err := scaffold.New(argv[0], lang, dir)
			if err != nil {
				var u usageError
				if errors.As(err, &u) {
					return u
				}
				return err
			}
			return a.print(map[string]any{"name": argv[0], "lang": lang, "dir": dir, "files": files}, func(w io.Writer) {
				fmt.Fprintf(w, "engine %s (%s) created in %s:\n", argv[0], lang, dir)
				for _, f := range files {
					fmt.Fprintf(w, "  %s\n", f)
				}
				fmt.Fprintf(w, "next:\n  cd %s\n", dir)
				if lang == scaffold.C {
					fmt.Fprintln(w, "  make                       # libwrapper.so")
				}
				fmt.Fprintf(w, "  make dryrun                # asectl engine dryrun . --input text=sample.txt:text\n")
				fmt.Fprintf(w, "  asectl schema push schema_%s.json && asectl engine run .\n", argv[0])
				fmt.Fprintf(w, "  asectl call once %s --input text:text --text athena\n", argv[0])
			})
		},
	}
	cmd.Flags().StringVar(&lang, "lang", "", "python or c")
	cmd.Flags().StringVar(&dir, "dir", "", "project directory (default ./NAME)")
	_ = cmd.RegisterFlagCompletionFunc("lang", cobra.FixedCompletions([]string{"python", "c"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// enginePath turns PATH into what tools/suite resolves: a project directory holding
// libwrapper.so (and no wrapper.py) is its C engine.
func enginePath(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("engine %s: %w", path, err)
	}
	if !st.IsDir() {
		return path, nil
	}
	if _, err := os.Stat(filepath.Join(path, "wrapper.py")); err == nil {
		return path, nil
	}
	if _, err := os.Stat(filepath.Join(path, "libwrapper.so")); err == nil {
		return filepath.Join(path, "libwrapper.so"), nil
	}
	if _, err := os.Stat(filepath.Join(path, "wrapper.c")); err == nil {
		return "", fmt.Errorf("engine %s: no libwrapper.so yet: build it first (make)", path)
	}
	return "", fmt.Errorf("engine %s: no wrapper.py or libwrapper.so in it (want a project directory, a wrapper.py, a .so or an aiges.toml)", path)
}

// resolve resolves PATH (default .) as tools/suite does for asfrun, writing its schema
// into a temporary directory removed by the returned func.
func (a *app) resolve(ctx context.Context, argv []string, service, python string) (*suite.UserEngine, func(), error) {
	path := "."
	if len(argv) > 0 {
		path = argv[0]
	}
	p, err := enginePath(path)
	if err != nil {
		return nil, func() {}, err
	}
	tmp, err := os.MkdirTemp("", "asectl-engine-")
	if err != nil {
		return nil, func() {}, err
	}
	done := func() { _ = os.RemoveAll(tmp) }
	e, err := suite.ResolveEngine(ctx, p, suite.EngineOptions{Service: service, SchemaDir: tmp, Python: python, SDK: a.io.Getenv("ASF_AIGES_SDK")})
	if err != nil {
		done()
		return nil, func() {}, err
	}
	return e, done, nil
}

func (a *app) engineSchemaCmd() *cobra.Command {
	var service, python string
	cmd := &cobra.Command{
		Use:   "schema [PATH]",
		Short: "Print the capability schema an engine publishes",
		Long: `schema prints the schema engine run and asfrun publish for PATH: a schema_*.json beside
the engine, else (Python) Wrapper().schema(), else a permissive default; keyed to the
service name (--service, else the aiges.toml section, the schema's or wrapper's
serviceId, else the file or directory name).`,
		Example: "  asectl engine schema greeter > schema_greeter.json\n  asectl engine schema ./libwrapper.so --service my-cap",
		Args:    args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			e, done, err := a.resolve(cmd.Context(), argv, service, python)
			if err != nil {
				return err
			}
			defer done()
			for _, n := range e.Notes {
				fmt.Fprintln(a.io.Err, "note:", n)
			}
			return a.print(e.Doc, func(w io.Writer) {
				b, _ := json.MarshalIndent(e.Doc, "", "  ")
				fmt.Fprintf(w, "%s\n", b)
			})
		},
	}
	cmd.Flags().StringVar(&service, "service", "", "service name (the capability id)")
	cmd.Flags().StringVar(&python, "python", "", "interpreter importing a wrapper.py (default /usr/bin/python3)")
	return cmd
}

// loaderBin finds the loader: flag, ASECTL_LOADER, beside asectl, else on PATH.
func (a *app) loaderBin(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if p := a.io.Getenv("ASECTL_LOADER"); p != "" {
		return p, nil
	}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "loader")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	p, err := exec.LookPath("loader")
	if err != nil {
		return "", errors.New("no loader binary: build it (make build puts it in bin/ beside asectl), or give --loader PATH or ASECTL_LOADER")
	}
	return p, nil
}

func (a *app) engineDryrunCmd() *cobra.Command {
	var loader string
	var inputs, params, configs []string
	var stream bool
	var frameBytes, workers int
	cmd := &cobra.Command{
		Use:   "dryrun [PATH] [-- LOADER DRYRUN FLAGS]",
		Short: "Run an engine on files as the loader does, without a suite (loader dryrun)",
		Long: `dryrun runs ` + "`loader dryrun`" + ` for PATH: the engine is built exactly as the loader builds it and
run on the --input files, once or (--stream) as a session; every output is printed.
Flags after -- go to loader dryrun as they are (--async, --expect, --out DIR, --timeout, ...;
docs/engines.md "Dry run").`,
		Example: "  asectl engine dryrun . --input text=sample.txt:text\n  asectl engine dryrun ./libwrapper.so --input audio=speech.pcm:audio --stream --frame-bytes 1280 -- --async",
		RunE: func(cmd *cobra.Command, argv []string) error {
			pass := []string{}
			if n := cmd.ArgsLenAtDash(); n >= 0 {
				argv, pass = argv[:n], argv[n:]
			}
			if len(argv) > 1 {
				return usagef("dryrun takes one PATH, got %q", argv)
			}
			bin, err := a.loaderBin(loader)
			if err != nil {
				return err
			}
			path := "."
			if len(argv) == 1 {
				path = argv[0]
			}
			p, err := enginePath(path)
			if err != nil {
				return err
			}
			kind := "c"
			if st, err := os.Stat(p); err == nil && (st.IsDir() || strings.HasSuffix(p, ".py")) {
				kind = "python"
			}
			abs, _ := filepath.Abs(p)
			if kind == "python" && !strings.HasSuffix(abs, ".py") {
				abs = filepath.Join(abs, "wrapper.py")
			}
			largs := []string{"dryrun", "--engine", kind, "--engine-path", abs}
			for _, in := range inputs {
				largs = append(largs, "--input", in)
			}
			for _, pr := range params {
				largs = append(largs, "--param", pr)
			}
			for _, c := range configs {
				largs = append(largs, "--engine-config", c)
			}
			if stream {
				largs = append(largs, "--stream", "--frame-bytes", fmt.Sprint(frameBytes))
			}
			if kind == "python" {
				largs = append(largs, "--workers", fmt.Sprint(workers))
			}
			largs = append(largs, pass...)
			c := exec.CommandContext(cmd.Context(), bin, largs...)
			c.Stdin, c.Stdout, c.Stderr = a.io.In, a.io.Out, a.io.Err
			if err := c.Run(); err != nil {
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					return fmt.Errorf("loader dryrun failed (exit status %d): see its output above", ee.ExitCode())
				}
				return fmt.Errorf("run %s: %w", bin, err)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&loader, "loader", "", "loader binary (default: ASECTL_LOADER, beside asectl, else on PATH)")
	fl.StringArrayVar(&inputs, "input", nil, "input name=file[:type] (repeatable; type text|audio|image|video|other)")
	fl.StringArrayVar(&params, "param", nil, "request parameter k=v (repeatable)")
	fl.StringArrayVar(&configs, "engine-config", nil, "wrapperInit config k=v (repeatable)")
	fl.BoolVar(&stream, "stream", false, "run a session: frame i carries piece i of every input")
	fl.IntVar(&frameBytes, "frame-bytes", 1280, "bytes of each input per frame (--stream)")
	fl.IntVar(&workers, "workers", 1, "Python worker processes")
	return cmd
}

func (a *app) enginePackCmd() *cobra.Command {
	var tag, base, contextDir, docker, service string
	cmd := &cobra.Command{
		Use:   "pack [PATH] --tag IMAGE",
		Short: "Build a loader image for an engine (docker build on the project's loader image)",
		Long: `pack makes a Docker build context for PATH — the project's Dockerfile when it has one
(engine new writes it), else one made for the engine's kind — and builds it with
docker build --build-arg BASE=<--base>. --context DIR writes the context there and stops,
for a build elsewhere (CI, buildx, kaniko).`,
		Example: "  asectl engine pack . --tag greeter:dev\n  asectl engine pack ./libwrapper.so --service my-cap --tag my-cap:1 --context build/",
		Args:    args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			if tag == "" && contextDir == "" {
				return usagef("pack needs --tag IMAGE (or --context DIR to only write the build context)")
			}
			e, done, err := a.resolve(cmd.Context(), argv, service, "")
			if err != nil {
				return err
			}
			defer done()
			dir := contextDir
			if dir == "" {
				if dir, err = os.MkdirTemp("", "asectl-pack-"); err != nil {
					return err
				}
				defer os.RemoveAll(dir)
			}
			files, err := pack.Context(pack.Engine{Path: e.Path, Kind: e.Kind, Service: e.Service, Schema: e.Schema}, dir)
			if err != nil {
				return err
			}
			if contextDir != "" {
				return a.print(map[string]any{"context": dir, "files": files}, func(w io.Writer) {
					fmt.Fprintf(w, "build context of %s in %s (%d files); build it with:\n  docker build -t IMAGE --build-arg BASE=%s %s\n", e.Service, dir, len(files), base, dir)
				})
			}
			bin := docker
			if bin == "" {
				bin = "docker"
			}
			c := exec.CommandContext(cmd.Context(), bin, "build", "-t", tag, "--build-arg", "BASE="+base, dir)
			c.Stdout, c.Stderr = a.io.Err, a.io.Err
			if err := c.Run(); err != nil {
				return fmt.Errorf("docker build of %s: %w (is Docker running, and is the base image %s built? make images builds asf/loader:dev)", tag, err, base)
			}
			return a.print(map[string]any{"image": tag, "service": e.Service}, func(w io.Writer) {
				fmt.Fprintf(w, "image %s built: a loader serving %s (run it with --polaris ADDR and the TLS files, as deploy/compose does)\n", tag, e.Service)
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&tag, "tag", "", "image name and tag")
	fl.StringVar(&base, "base", "asf/loader:dev", "the loader image to build on")
	fl.StringVar(&contextDir, "context", "", "write the build context into DIR and do not build")
	fl.StringVar(&docker, "docker", "", "docker command (default docker)")
	fl.StringVar(&service, "service", "", "service name (default: as engine schema finds it)")
	return cmd
}

func (a *app) engineRunCmd() *cobra.Command {
	var loader, service, polarisGRPC, listen, logFile, engineArgs, python string
	var tlsCA, tlsCert, tlsKey string
	var insecure, noSchema bool
	var licence int
	var readyTimeout time.Duration
	cmd := &cobra.Command{
		Use:   "run [PATH]",
		Short: "Serve an engine from a running suite: publish its schema, start its loader, wait until it is routable",
		Long: `run publishes the engine's capability schema (as engine schema shows it) through the
context's admin API, starts a loader for it registered with polaris's gRPC address
(--polaris-grpc, or the context's polaris_grpc), waits until polaris lists it as a live
provider, prints how to call it, and stops the loader on Ctrl-C. The internal plane is
mutual TLS: give the loader's certificate (--tls-ca, --tls-cert, --tls-key), or
--insecure for a suite started with --insecure.`,
		Example: "  asectl engine run . --polaris-grpc 127.0.0.1:6868 --tls-ca pki/ca.crt --tls-cert pki/loader.crt --tls-key pki/loader.key\n  asectl engine run ./libwrapper.so --service my-cap --engine-args \"--engine-config model=m.bin\"",
		Args:    args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			ctx := cmd.Context()
			c, err := a.current()
			if err != nil {
				return err
			}
			if polarisGRPC == "" {
				polarisGRPC = c.PolarisGRPC
			}
			if polarisGRPC == "" {
				return usagef("no polaris gRPC address: --polaris-grpc HOST:PORT, or asectl context set --polaris-grpc")
			}
			if !insecure && (tlsCA == "" || tlsCert == "" || tlsKey == "") {
				return usagef("the loader needs its certificate: --tls-ca, --tls-cert and --tls-key (or --insecure for a plaintext suite)")
			}
			bin, err := a.loaderBin(loader)
			if err != nil {
				return err
			}
			e, done, err := a.resolve(ctx, argv, service, python)
			if err != nil {
				return err
			}
			defer done()
			cl, err := a.admin()
			if err != nil {
				return err
			}
			if !noSchema {
				b, err := os.ReadFile(e.Schema)
				if err != nil {
					return err
				}
				if _, err := cl.Push(ctx, schemaKey(e.Service), b, "engine run by asectl ("+e.SchemaFrom+")", ""); err != nil {
					return fmt.Errorf("publish the schema of %s: %w", e.Service, err)
				}
			}
			before, err := cl.Instances(ctx, e.Service, "provider")
			if err != nil && !admin.IsNotFound(err) {
				return err
			}
			largs := []string{"--grpc-listen", listen, "--admin-listen", "127.0.0.1:0", "--polaris", polarisGRPC,
				"--service", e.Service, "--warm-up", "0s"}
			if licence > 0 {
				largs = append(largs, "--licence", fmt.Sprint(licence))
			}
			largs = append(largs, e.Loader.Args...)
			largs = append(largs, strings.Fields(engineArgs)...)
			if insecure {
				largs = append(largs, "--insecure")
			} else {
				largs = append(largs, "--tls-ca", tlsCA, "--tls-cert", tlsCert, "--tls-key", tlsKey)
			}
			if logFile == "" {
				logFile = filepath.Join(os.TempDir(), "asectl-loader-"+e.Service+".log")
			}
			lf, err := os.Create(logFile)
			if err != nil {
				return err
			}
			defer lf.Close()
			proc := exec.Command(bin, largs...)
			proc.Dir, proc.Stdout, proc.Stderr = e.Loader.Dir, lf, lf
			proc.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			if err := proc.Start(); err != nil {
				return fmt.Errorf("start %s: %w", bin, err)
			}
			exited := make(chan struct{})
			var procErr error
			go func() { procErr = proc.Wait(); close(exited) }() // owned here: every return below waits for it
			stop := func() {
				_ = proc.Process.Signal(syscall.SIGTERM)
				t := time.NewTimer(20 * time.Second)
				defer t.Stop()
				select {
				case <-exited:
				case <-t.C:
					_ = proc.Process.Kill()
					<-exited
				}
			}
			if err := waitRoutable(ctx, cl, e.Service, routable(before), readyTimeout, exited); err != nil {
				stop()
				if ctx.Err() != nil { // Ctrl-C during start-up
					fmt.Fprintln(a.io.Out, "loader stopped")
					return nil
				}
				return fmt.Errorf("%w: see the loader's log %s", err, logFile)
			}
			in := e.Inputs()[0]
			call := fmt.Sprintf("asectl call once %s --input %s:%s:%s --text \"hello athena\"", e.Service, in.Name, in.DataType, in.Encoding)
			view := map[string]any{"engine": e.Path, "kind": e.Kind, "service": e.Service, "loader_log": logFile, "call": call}
			if err := a.print(view, func(w io.Writer) {
				fmt.Fprintf(w, "engine %s (%s) serving %s; loader log %s\n  %s\n  Ctrl-C stops it\n", e.Path, e.Kind, e.Service, logFile, call)
			}); err != nil {
				stop()
				return err
			}
			select {
			case <-ctx.Done():
				stop()
				fmt.Fprintln(a.io.Out, "loader stopped")
				return nil
			case <-exited:
				return fmt.Errorf("the loader of %s exited (%v): see %s", e.Service, procErr, logFile)
			}
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&loader, "loader", "", "loader binary (default: ASECTL_LOADER, beside asectl, else on PATH)")
	fl.StringVar(&service, "service", "", "service name (default: as engine schema finds it)")
	fl.StringVar(&polarisGRPC, "polaris-grpc", "", "polaris's gRPC address (default: the context's polaris_grpc)")
	fl.StringVar(&listen, "listen", "127.0.0.1:0", "the loader's gRPC listen address (reachable by the suite's atoms)")
	fl.StringVar(&logFile, "log", "", "the loader's log file (default <tmp>/asectl-loader-<service>.log)")
	fl.StringVar(&engineArgs, "engine-args", "", "more loader flags, split at spaces (\"--engine-config k=v --workers 2\")")
	fl.StringVar(&python, "python", "", "interpreter importing a wrapper.py to read its schema")
	fl.StringVar(&tlsCA, "tls-ca", "", "internal CA file")
	fl.StringVar(&tlsCert, "tls-cert", "", "the loader's certificate")
	fl.StringVar(&tlsKey, "tls-key", "", "its key")
	fl.BoolVar(&insecure, "insecure", false, "plaintext internal plane (a suite started with --insecure)")
	fl.BoolVar(&noSchema, "no-schema", false, "do not publish the schema (it is already in polaris)")
	fl.IntVar(&licence, "licence", 0, "concurrent sessions of the loader (0: the loader's default)")
	fl.DurationVar(&readyTimeout, "ready-timeout", 60*time.Second, "how long to wait until polaris lists the loader")
	return cmd
}

// waitRoutable polls polaris until service has more live, enabled providers than before
// (the loader registered and reported load), the loader exits, d passes or ctx ends.
func waitRoutable(ctx context.Context, cl *admin.Client, service string, before int, d time.Duration, exited <-chan struct{}) error {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		is, err := cl.Instances(ctx, service, "provider")
		if err != nil && !admin.IsNotFound(err) {
			return err
		}
		if routable(is) > before {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-exited:
			return fmt.Errorf("the loader of %s exited during start-up", service)
		case <-deadline.C:
			return fmt.Errorf("the loader of %s is not routable after %s", service, d)
		case <-tick.C:
		}
	}
}

// routable counts the live, enabled instances of is.
func routable(is []admin.Instance) int {
	n := 0
	for _, i := range is {
		if i.Load.Live > 0 && i.Admin.Enabled {
			n++
		}
	}
	return n
}
