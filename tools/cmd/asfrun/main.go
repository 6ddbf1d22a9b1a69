// Command asfrun starts the whole suite locally from built binaries (see tools/suite),
// prints how to call it, and stops everything cleanly on Ctrl-C. `make run` uses it.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/athenaserving/asf/libs/buildinfo"
	"github.com/athenaserving/asf/tools/suite"
)

func main() {
	if buildinfo.PrintIfAsked(os.Stdout, "asfrun", os.Args[1:]) {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "asfrun:", err)
		os.Exit(1)
	}
}

// config is asfrun's command line.
type config struct {
	bin, logDir, level, demo string
	loaders, licence, procs  int
	tcpOnly                  bool
	atoms, lbclients         int
	free, jaeger             bool
	traceEndpoint, sample    string
	engines, services        listFlag
	engineArgs, python       string
}

// listFlag is a repeatable, comma-separated flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("asfrun", flag.ContinueOnError)
	fs.StringVar(&c.bin, "bin", "bin", "directory with the service binaries")
	fs.IntVar(&c.loaders, "loaders", 2, "echo loaders to start")
	fs.IntVar(&c.licence, "licence", 10, "licence (concurrent sessions) per loader")
	fs.IntVar(&c.atoms, "atoms", 2, "atom replicas to start (webgate spreads calls over them)")
	fs.IntVar(&c.lbclients, "lbclients", 2, "lbclient replicas to start (every atom spreads picks over them)")
	fs.StringVar(&c.logDir, "logs", ".run/logs", "directory for the services' logs (state goes to its sibling data/)")
	fs.BoolVar(&c.free, "free-ports", false, "use free ports instead of the default ones")
	fs.StringVar(&c.level, "log-level", "info", "log level of every service")
	fs.BoolVar(&c.jaeger, "jaeger", true, "start Jaeger (the trace backend and UI) from <bin>/jaeger when it is built (make jaeger), and send every service's spans to it")
	fs.StringVar(&c.sample, "trace-sample-rate", "1", "share (0-1) of requests webgate traces while tracing is on (locally every one, so each shows in the UI)")
	fs.StringVar(&c.traceEndpoint, "trace-endpoint", "", "OTLP/gRPC endpoint (host:port) of your own trace collector for every service, instead of Jaeger")
	fs.BoolVar(&c.tcpOnly, "tcp-only", false, "keep every internal hop on loopback TCP (default: the services also serve their gRPC ports on Unix sockets and reach each other over them)")
	fs.IntVar(&c.procs, "gomaxprocs", 0, "GOMAXPROCS of every service (0: half the machine's cores, at least 1; -1: every core; a GOMAXPROCS in the environment wins)")
	fs.StringVar(&c.demo, "engines", "tts,asr,digits", "demo engines to start beside echo (those that are built)")
	fs.Var(&c.engines, "engine", "your engine: a C engine .so, a wrapper.py or its directory, an aiges.toml, or a forward spec (repeatable or comma-separated)")
	fs.Var(&c.services, "engine-service", "service name of each --engine, in order (default: from its aiges.toml, schema, wrapper serviceId, or file name)")
	fs.StringVar(&c.engineArgs, "engine-args", "", "extra loader flags for every --engine, split at spaces (e.g. \"--engine-config model=m.bin --workers 1\")")
	fs.StringVar(&c.python, "engine-python", "", "interpreter importing a wrapper.py to read its schema (default: --python of --engine-args, else /usr/bin/python3)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if len(c.services) > len(c.engines) {
		return c, fmt.Errorf("%d --engine-service names for %d --engine paths", len(c.services), len(c.engines))
	}
	return c, nil
}

// run starts the suite, prints how to call it, and stops it when ctx ends.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	c, err := parseFlags(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	s, err := start(ctx, c, stdout)
	if err != nil {
		return err
	}
	<-ctx.Done()
	fmt.Fprintln(stdout, "\nstopping ...")
	sctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := s.Stop(sctx); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "stopped")
	return nil
}

// start resolves the user's engines, starts the suite with them and the demo engines,
// and prints how to call everything.
func start(ctx context.Context, c config, stdout io.Writer) (*suite.Suite, error) {
	dataDir := filepath.Join(filepath.Dir(filepath.Clean(c.logDir)), "data")
	root := filepath.Dir(filepath.Clean(c.bin))
	var users []*suite.UserEngine
	taken := map[string]bool{"echo": true}
	for i, path := range c.engines {
		o := suite.EngineOptions{LoaderArgs: strings.Fields(c.engineArgs), SchemaDir: filepath.Join(dataDir, "engines"),
			Python: c.python, Root: root}
		if i < len(c.services) {
			o.Service = c.services[i]
		}
		e, err := suite.ResolveEngine(ctx, path, o)
		if err != nil {
			return nil, err
		}
		if taken[e.Service] {
			return nil, fmt.Errorf("engine %s: service %s is taken: name another with --engine-service", path, e.Service)
		}
		taken[e.Service] = true
		users = append(users, e)
	}
	extra, schemas, skipped := demoEngines(c.bin, c.demo, taken)
	for _, e := range users {
		extra = append(extra, e.Loader)
		schemas = append(schemas, e.Schema)
	}
	app, err := demoApp(filepath.Join(dataDir, "demo-app"))
	if err != nil {
		return nil, err
	}
	o := suite.Options{BinDir: c.bin, Loaders: c.loaders, Engine: "echo", Licence: c.licence,
		Atoms: c.atoms, LBClients: c.lbclients, LogDir: c.logDir, DataDir: dataDir, FixedPorts: !c.free, LogLevel: c.level, Extra: extra, Schemas: schemas, App: app,
		TraceEndpoint: c.traceEndpoint, TraceSampleRate: c.sample, GoMaxProcs: c.procs, TCPOnly: c.tcpOnly}
	traces := "traces off: make jaeger builds bin/jaeger, the trace backend and UI"
	switch {
	case c.traceEndpoint != "":
		traces = "spans to " + c.traceEndpoint + " (OTLP/gRPC)"
	case !c.jaeger:
		traces = "traces off (--jaeger=false)"
	default:
		if _, err := os.Stat(o.JaegerBinary()); err == nil {
			o.Jaeger = true
		}
	}
	if o.Jaeger {
		fmt.Fprintln(stdout, "starting Jaeger, polaris (with embedded NATS), lbclients, loaders, atoms and webgate ...")
	} else {
		fmt.Fprintln(stdout, "starting polaris (with embedded NATS), lbclients, loaders, atoms and webgate ...")
	}
	s, err := suite.Start(ctx, o)
	if err != nil {
		return nil, err
	}
	if u := s.JaegerURL(); u != "" {
		traces = fmt.Sprintf("%s/   (Jaeger, OTLP/gRPC %s; the latest: curl -s '%s/api/traces?service=webgate&limit=5')",
			u, s.TraceEndpoint(), u)
	}
	printUsage(stdout, s, c.bin, traces, extra, skipped, users)
	return s, nil
}

// demoApp returns the local demo app's keys, generated once and kept in file (mode 0600)
// so that they stay the same across runs.
func demoApp(file string) (suite.App, error) {
	if b, err := os.ReadFile(file); err == nil {
		if f := strings.Fields(string(b)); len(f) == 3 {
			return suite.App{AppID: f[0], APIKey: f[1], APISecret: f[2]}, nil
		}
	}
	key, secret := make([]byte, 16), make([]byte, 24)
	if _, err := rand.Read(key); err != nil {
		return suite.App{}, err
	}
	if _, err := rand.Read(secret); err != nil {
		return suite.App{}, err
	}
	app := suite.App{AppID: "demo", APIKey: hex.EncodeToString(key), APISecret: hex.EncodeToString(secret)}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return suite.App{}, err
	}
	return app, os.WriteFile(file, []byte(app.AppID+" "+app.APIKey+" "+app.APISecret+"\n"), 0o600)
}

// demoEngines returns the loaders and schemas of the demo engines in names that are built
// (scripts/engines.sh builds them into bin/engines and says why when it cannot), and why
// each other one is skipped (also those whose service name is taken).
func demoEngines(bin, names string, taken map[string]bool) (extra []suite.Loader, schemas []string, skipped []string) {
	root := filepath.Dir(filepath.Clean(bin))
	if names == "" {
		return nil, nil, nil
	}
	for _, name := range strings.Split(names, ",") {
		name = strings.TrimSpace(name)
		if taken[name] {
			skipped = append(skipped, name+": its service name is one of your engines'")
			continue
		}
		var l suite.Loader
		switch name {
		case "tts", "asr":
			lib := filepath.Join(bin, "engines", "lib"+name+".so")
			if _, err := os.Stat(lib); err != nil {
				skipped = append(skipped, fmt.Sprintf("%s: %s not built (run scripts/engines.sh: it installs the Debian packages as root and says what is missing)", name, lib))
				continue
			}
			l = suite.Loader{Name: "loader-" + name, Service: name, Args: []string{"--engine", "c", "--engine-path", lib}}
			if name == "tts" {
				l.Args = append(l.Args, "--async") // stream mode sends audio as it is synthesised
			} else {
				l.Args = append(l.Args, "--licence", "4")
			}
		case "digits":
			if err := exec.Command("/usr/bin/python3", "-c", "import sklearn").Run(); err != nil {
				skipped = append(skipped, "digits: /usr/bin/python3 cannot import sklearn (Debian python3-sklearn; scripts/engines.sh installs it as root)")
				continue
			}
			l = suite.Loader{Name: "loader-digits", Service: "digits", Args: []string{"--engine", "python", "--workers", "2",
				"--engine-path", filepath.Join(root, "examples", "engines", "digits", "wrapper.py")}}
		default:
			skipped = append(skipped, name+": unknown demo engine")
			continue
		}
		extra = append(extra, l)
		schemas = append(schemas, filepath.Join(root, "examples", "engines", name, "schema_"+name+".json"))
	}
	return extra, schemas, skipped
}

func printUsage(w io.Writer, s *suite.Suite, bin, traces string, extra []suite.Loader, skipped []string, users []*suite.UserEngine) {
	url := s.WebgateURL()
	app := s.App()
	keys := fmt.Sprintf("--app-id %s --api-key %s --api-secret %s", app.AppID, app.APIKey, app.APISecret)
	token := s.AdminToken()
	if token == "" {
		token = "(printed once, at the first start on this data directory: see the first run's polaris log)"
	}
	fmt.Fprintf(w, `
Athena Serving is up.
  webgate  %s      (ASE over HTTP and WebSocket, HMAC auth on)
  atom     %s
  lbclient %s
  polaris  %s      (NATS %s)
  console  %s      admin token: %s
  traces   %s
  loaders  %v
  logs     %s

Demo app (accepted while polaris holds no apps.json):
  app_id %s   api_key %s   api_secret %s

Once request (HTTP, signed):
  %s/asectl call once echo --webgate %s %s --text "hello athena"
or with curl (a signed URL valid for 5 minutes):
  curl -s -X POST "$(%s/asectl call sign echo --webgate %s %s)" -H 'Content-Type: application/json' \
    -d '{"header":{"app_id":"%s","status":3},"parameter":{"echo":{}},"payload":{"input":{"encoding":"utf8","status":3,"text":"aGVsbG8gYXRoZW5h"}}}'

Streaming session (WebSocket, three frames with status 0, 1, 2):
  %s/asectl call stream echo --webgate %s %s --frames 3 --text "hello athena"

Operate it (services, top, config, schemas, apps; docs/asectl.md):
  %s/asectl login --polaris %s --token %s --webgate %s --polaris-grpc %s

%s%s
Metrics: curl http://%s/metrics     Ctrl-C stops everything.
`, url, strings.Join(s.AtomAddrs(), ", "), strings.Join(s.LBAddrs(), ", "), s.PolarisAddr(), s.NATSURL(), s.ConsoleURL(), token, traces, s.LoaderAddrs(), s.LogDir(),
		app.AppID, app.APIKey, app.APISecret,
		bin, url, keys, bin, url, keys, app.AppID,
		bin, url, keys, bin, strings.TrimSuffix(s.ConsoleURL(), "/ui/"), token, url, s.PolarisAddr(), engineUsage(bin, url, keys, app.AppID, users), demoUsage(bin, url, keys, extra, skipped), s.AdminAddrs()["webgate"][0])
}

func demoUsage(bin, url, keys string, extra []suite.Loader, skipped []string) string {
	var b strings.Builder
	for _, l := range extra {
		switch l.Service {
		case "tts":
			fmt.Fprintf(&b, "Speech synthesis (tts, 16 kHz PCM out to audio.pcm and audio.wav):\n  %s/asectl call once tts --webgate %s %s --input text:text --text \"turn the kitchen light on\" --param voice=en-us --wav\n\n", bin, url, keys)
		case "asr":
			fmt.Fprintf(&b, "Speech recognition (asr, streams audio.pcm in 40 ms frames over WebSocket):\n  %s/asectl call stream asr --webgate %s %s --input audio:audio --file audio.pcm --pace 40ms --param keywords=\"kitchen light\"\n\n", bin, url, keys)
		case "digits":
			fmt.Fprintf(&b, "Image classification (digits, Python engine):\n  %s/asectl call once digits --webgate %s %s --input image:image:png --file examples/engines/digits/testdata/seven.png\n\n", bin, url, keys)
		}
	}
	for _, why := range skipped {
		fmt.Fprintf(&b, "Skipped %s\n", why)
	}
	return b.String()
}

// engineUsage prints, for each of the user's engines, where it came from, its schema, and
// a once request and a streaming session built from that schema.
func engineUsage(bin, url, keys, appID string, users []*suite.UserEngine) string {
	var b strings.Builder
	for _, e := range users {
		kind := map[string]string{suite.EngineC: "C engine", suite.EnginePython: "Python engine", suite.EngineTOML: "aiges.toml", suite.EngineForward: "forward spec"}[e.Kind]
		from := e.SchemaFrom
		if from == "default" {
			from = "permissive default"
		}
		fmt.Fprintf(&b, "Your engine %s (%s, service %s, loader log %s.log, schema: %s):\n", e.Path, kind, e.Service, e.Loader.Name, from)
		for _, n := range e.Notes {
			fmt.Fprintf(&b, "  note: %s\n", n)
		}
		body := strings.ReplaceAll(string(e.Request(appID, 3, "hello athena", true)), "'", `'\''`)
		in := e.Inputs()[0]
		flags := ""
		if in.Name != "input" || in.DataType != "text" || in.Encoding != "utf8" {
			flags += fmt.Sprintf(" --input %s:%s:%s", in.Name, in.DataType, in.Encoding)
		}
		for k, v := range e.Params() {
			flags += fmt.Sprintf(" --param %s=%v", k, v)
		}
		fmt.Fprintf(&b, "  %s/asectl call once %s --webgate %s %s%s --text \"hello athena\"\n", bin, e.Route(), url, keys, flags)
		fmt.Fprintf(&b, "  curl -s -X POST \"$(%s/asectl call sign %s --webgate %s %s)\" -H 'Content-Type: application/json' \\\n    -d '%s'\n",
			bin, e.Route(), url, keys, body)
		fmt.Fprintf(&b, "  %s/asectl call stream %s --webgate %s %s%s --frames 3 --text \"hello athena\"\n\n", bin, e.Route(), url, keys, flags)
	}
	return b.String()
}
