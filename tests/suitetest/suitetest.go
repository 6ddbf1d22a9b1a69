// Package suitetest starts the whole suite — polaris (embedded NATS), lbclient, loaders,
// atom and webgate — in one process on 127.0.0.1:0, for cross-service tests.
//
//	s := suitetest.Start(t, suitetest.Options{Loaders: 2})
//	resp, err := http.Post(s.URL()+"/v1/private/echo", "application/json", body)
//	suitetest.WaitFor(t, 3*time.Second, func() bool { return s.LB.Live("echo") == 2 })
//
// Everything is stopped in reverse order by t.Cleanup.
package suitetest

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/natsbus"
	"github.com/athenaserving/asf/libs/pki"
	"github.com/athenaserving/asf/libs/polarisclient"
	polarispb "github.com/athenaserving/asf/libs/proto/polaris/v1"
	"github.com/athenaserving/asf/libs/tlsx"
	"github.com/athenaserving/asf/services/atom"
	"github.com/athenaserving/asf/services/lbclient"
	"github.com/athenaserving/asf/services/loader"
	"github.com/athenaserving/asf/services/polaris"
	"github.com/athenaserving/asf/services/webgate"
	"github.com/athenaserving/asf/tests/asetest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// Options say what to start.
type Options struct {
	// Loaders is the number of echo loaders (default 2).
	Loaders int
	// Licence per loader (default 10).
	Licence int
	// Service and Engine of the loaders (default "echo").
	Service, Engine string
	// Loader adjusts each loader's config before it starts (index from 0).
	Loader func(i int, cfg *loader.Config)
	// Webgate adjusts webgate's config.
	Webgate func(cfg *webgate.Config)
	// Atom adjusts atom's config.
	Atom func(cfg *atom.Config)
	// Atoms is the number of atom replicas (default 1); webgate dials all of them.
	Atoms int
	// Insecure runs the internal plane in plaintext; by default every gRPC hop is mutual
	// TLS with a CA and per-service certificates generated into a temporary directory.
	Insecure bool
	// LogTo, when set, receives each process's log (JSON, debug level) — process is
	// "polaris", "lbclient", "atom-0", "loader-1", "webgate" — for tests that read it.
	LogTo func(process string) io.Writer
	// TraceEndpoint, when set, is every service's trace-endpoint (an OTLP/gRPC collector
	// such as tests/jaegertest's), and webgate traces every request (trace-sample-rate 1)
	// unless Webgate sets another rate.
	TraceEndpoint string
	// LocalSockets makes every service serve its gRPC port on a Unix socket too, in a
	// directory of the suite's (Suite.LocalSockets), and reach the others over theirs, as
	// tools/suite runs them (libs/localsock).
	LocalSockets bool
}

// Suite is a running suite.
type Suite struct {
	t       testing.TB
	Polaris *polaris.Server
	LB      *lbclient.Server
	Atoms   []*atom.Server
	Webgate *webgate.Server
	// NATSDir holds the NATS credentials (natsbus.GenerateCredentials): <service>.nk
	// seeds, <service>.pub public keys, auth.conf.
	NATSDir string

	mu      sync.Mutex
	Loaders []*loader.Server
	regs    map[string]*prometheus.Registry // "polaris", "lbclient", "atom-0", "loader-1", "webgate"
	opts    Options
	stops   []func(context.Context) error
	pkiDir  string // "" with Options.Insecure
	sockDir string // "" without Options.LocalSockets
}

// PKIInstance is the instance name of the suite's certificates: everything runs on
// 127.0.0.1, and an instance naming a host covers every port on it.
const PKIInstance = "127.0.0.1"

// PKIWants are the certificates of the suite: one per service, and asfctl for test
// clients (File names them <service>.crt and .key).
func PKIWants() []pki.Want { return pki.ServiceWants(pki.Services, PKIInstance) }

// LocalSockets is the directory the services serve Unix sockets in ("" without
// Options.LocalSockets).
func (s *Suite) LocalSockets() string { return s.sockDir }

// PKIDir is the directory of the suite's CA (ca.crt, ca.key) and certificates
// (<service>.crt, .key); "" with Options.Insecure. The services re-read them on every
// handshake, so a test may rotate them there.
func (s *Suite) PKIDir() string { return s.pkiDir }

// TLS is the internal-TLS config of certificate name (a service, or asfctl) in PKIDir;
// plaintext (Insecure) with Options.Insecure.
func (s *Suite) TLS(name string) tlsx.Config {
	if s.pkiDir == "" {
		return tlsx.Config{Insecure: true}
	}
	// Insecure beside the files keeps gRPC on mutual TLS; it lets the embedded NATS
	// server run without per-service credentials.
	return tlsx.Config{CA: filepath.Join(s.pkiDir, pki.CACertFile), Cert: filepath.Join(s.pkiDir, name+".crt"), Key: filepath.Join(s.pkiDir, name+".key"), Insecure: true}
}

// DialOption is how a test client dials service peer of the suite: mutual TLS as
// asfctl (loaded once per call: the files are re-read on every handshake anyway), or
// plaintext with Options.Insecure.
func (s *Suite) DialOption(peer string) grpc.DialOption {
	b, err := tlsx.Load(s.TLS("asfctl"), zerolog.Nop())
	if err != nil {
		s.t.Fatal(err)
	}
	return tlsx.DialOption(b, peer)
}

// stopper is what every service provides for shutdown.
type stopper interface {
	Start(ctx context.Context) error
	Shutdown(ctx context.Context) error
}

func logger(t testing.TB, svc string) zerolog.Logger {
	if os.Getenv("ASF_TEST_LOGS") != "" {
		return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel).With().Str("svc", svc).Logger()
	}
	return zerolog.Nop()
}

// logger is the logger of process: Options.LogTo's writer, else the test log with
// ASF_TEST_LOGS set, else none.
func (s *Suite) logger(process string) zerolog.Logger {
	if s.opts.LogTo != nil {
		return zerolog.New(s.opts.LogTo(process)).Level(zerolog.DebugLevel).With().Timestamp().Str("svc", process).Logger()
	}
	return logger(s.t, process)
}

// Start starts the suite and registers its shutdown with t.Cleanup.
func Start(t testing.TB, o Options) *Suite {
	t.Helper()
	if o.Loaders == 0 {
		o.Loaders = 2
	}
	if o.Licence == 0 {
		o.Licence = 10
	}
	if o.Service == "" {
		o.Service = "echo"
	}
	if o.Engine == "" {
		o.Engine = "echo"
	}
	if o.Atoms == 0 {
		o.Atoms = 1
	}
	s := &Suite{t: t, opts: o, regs: map[string]*prometheus.Registry{}}
	if o.LocalSockets {
		// Short: a socket path holds 107 bytes, more than t.TempDir leaves.
		d, err := os.MkdirTemp("", "asf-sock-")
		check(t, "local sockets", err)
		t.Cleanup(func() { _ = os.RemoveAll(d) }) // runs after stopAll: registered before it
		s.sockDir = d
	}
	t.Cleanup(s.stopAll)
	if !o.Insecure {
		s.pkiDir = t.TempDir()
		if err := pki.Ensure(s.pkiDir, PKIWants()); err != nil {
			t.Fatal(err)
		}
	}

	pc := polaris.DefaultConfig()
	pc.GRPCListen, pc.AdminListen, pc.NATSListen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	pc.ConsoleListen, pc.DataDir = "127.0.0.1:0", t.TempDir()
	// NATS with credentials: polaris's embedded server knows the generated public keys
	// and gives each user its permissions; lbclient connects with its seed.
	s.NATSDir = filepath.Join(t.TempDir(), "nats")
	if _, err := natsbus.GenerateCredentials(s.NATSDir, "asf"); err != nil {
		t.Fatalf("nats credentials: %v", err)
	}
	pc.NATSUsers = s.NATSDir
	pc.TLS = s.TLS("polaris")
	pc.LocalSockets = s.sockDir
	pc.AdminToken = AdminToken
	pc.Tracing.TraceEndpoint = o.TraceEndpoint
	var err error
	s.Polaris, err = polaris.New(pc, s.logger("polaris"), s.reg("polaris"))
	check(t, "polaris", err)
	s.start(s.Polaris)

	lc := lbclient.DefaultConfig()
	lc.GRPCListen, lc.AdminListen, lc.PolarisAddr = "127.0.0.1:0", "127.0.0.1:0", s.Polaris.GRPCAddr()
	lc.NATS.NKeySeedFile = filepath.Join(s.NATSDir, natsbus.UserLBClient+natsbus.SeedExt)
	lc.TLS = s.TLS("lbclient")
	lc.LocalSockets = s.sockDir
	lc.Tracing.TraceEndpoint = o.TraceEndpoint
	s.LB, err = lbclient.New(lc, s.logger("lbclient"), s.reg("lbclient"))
	check(t, "lbclient", err)
	s.start(s.LB)
	WaitFor(t, 10*time.Second, s.LB.Ready)

	for i := 0; i < o.Loaders; i++ {
		s.AddLoader()
	}
	WaitFor(t, 10*time.Second, func() bool { return s.LB.Live(o.Service) == o.Loaders })

	addrs := ""
	for i := 0; i < o.Atoms; i++ {
		ac := atom.DefaultConfig()
		ac.GRPCListen, ac.AdminListen, ac.LBAddr = "127.0.0.1:0", "127.0.0.1:0", s.LB.GRPCAddr()
		ac.Polaris = s.Polaris.GRPCAddr() // capability schemas, and its provider/consumer entries
		ac.DataDir = t.TempDir()          // its own polaris cache
		ac.TLS = s.TLS("atom")
		ac.LocalSockets = s.sockDir
		ac.Tracing.TraceEndpoint = o.TraceEndpoint
		if o.Atom != nil {
			o.Atom(&ac)
		}
		a, err := atom.New(ac, s.logger(fmt.Sprintf("atom-%d", i)), s.reg(fmt.Sprintf("atom-%d", i)))
		check(t, "atom", err)
		s.start(a)
		s.Atoms = append(s.Atoms, a)
		if addrs != "" {
			addrs += ","
		}
		addrs += a.GRPCAddr()
	}

	wc := webgate.DefaultConfig()
	wc.HTTPListen, wc.AdminListen, wc.AtomAddr = "127.0.0.1:0", "127.0.0.1:0", addrs
	wc.Polaris = s.Polaris.GRPCAddr()
	wc.DataDir = t.TempDir() // its own polaris cache
	wc.TLS = s.TLS("webgate")
	wc.LocalSockets = s.sockDir
	if o.TraceEndpoint != "" {
		wc.Tracing.TraceEndpoint, wc.TraceSampleRate = o.TraceEndpoint, 1
	}
	wc.DemoApp = DemoApp.AppID + ":" + DemoApp.APIKey + ":" + DemoApp.APISecret
	if o.Webgate != nil {
		o.Webgate(&wc)
	}
	s.Webgate, err = webgate.New(wc, s.logger("webgate"), s.reg("webgate"))
	check(t, "webgate", err)
	s.start(s.Webgate)
	return s
}

// AddLoader starts one more loader registered with the suite's polaris and returns it.
func (s *Suite) AddLoader() *loader.Server {
	s.t.Helper()
	s.mu.Lock()
	i := len(s.Loaders)
	s.mu.Unlock()
	c := loader.DefaultConfig()
	c.GRPCListen, c.AdminListen, c.PolarisAddr = "127.0.0.1:0", "127.0.0.1:0", s.Polaris.GRPCAddr()
	c.Service, c.Engine, c.Licence = s.opts.Service, s.opts.Engine, s.opts.Licence
	c.WarmUp, c.HeartbeatInterval = 0, 200*time.Millisecond
	c.DrainTimeout = 2 * time.Second
	c.TLS = s.TLS("loader")
	c.LocalSockets = s.sockDir
	c.Tracing.TraceEndpoint = s.opts.TraceEndpoint
	if s.opts.Loader != nil {
		s.opts.Loader(i, &c)
	}
	name := fmt.Sprintf("loader-%d", i)
	l, err := loader.New(c, s.logger(name), s.reg(name))
	check(s.t, name, err)
	s.start(l)
	s.mu.Lock()
	s.Loaders = append(s.Loaders, l)
	s.mu.Unlock()
	return l
}

func (s *Suite) start(svc stopper) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s.mu.Lock()
	s.stops = append(s.stops, svc.Shutdown)
	s.mu.Unlock()
	if err := svc.Start(ctx); err != nil {
		s.t.Fatalf("start %T: %v", svc, err)
	}
}

func (s *Suite) stopAll() {
	s.mu.Lock()
	stops := s.stops
	s.stops = nil
	s.mu.Unlock()
	for i := len(stops) - 1; i >= 0; i-- {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := stops[i](ctx); err != nil {
			s.t.Logf("shutdown: %v", err)
		}
		cancel()
	}
}

func (s *Suite) reg(name string) *prometheus.Registry {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := prometheus.NewRegistry()
	s.regs[name] = r
	return r
}

// Counter sums the samples of counter metric name (for example
// asf_loader_once_requests_total) across all label values in the registry of the named
// process: "polaris", "lbclient", "webgate", "atom-0", "loader-1", ...
func (s *Suite) Counter(process, name string) float64 {
	s.mu.Lock()
	reg := s.regs[process]
	s.mu.Unlock()
	if reg == nil {
		s.t.Fatalf("no process %q in the suite", process)
	}
	mfs, err := reg.Gather()
	if err != nil {
		s.t.Fatalf("gather %s metrics: %v", process, err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// PushConfig pushes content as a new revision of file under asf/default/<service>/v1 in
// polaris, as an operator would (for example service "capabilities", file
// "schema_tts.json"), and waits until it is stored.
func (s *Suite) PushConfig(service, file string, content []byte) {
	s.t.Helper()
	c, err := polarisclient.DialWith(s.Polaris.GRPCAddr(), polarisclient.Options{Log: zerolog.Nop(), DialOptions: []grpc.DialOption{s.DialOption("polaris")}})
	if err != nil {
		s.t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	key := &polarispb.ConfigKey{Project: "asf", Group: "default", Service: service, Version: "v1", File: file}
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+AdminToken) // an admin operation
	if _, err := c.Config.Push(ctx, &polarispb.PushConfigRequest{Key: key, Content: content, Comment: "suitetest"}); err != nil {
		s.t.Fatalf("push %s/%s: %v", service, file, err)
	}
}

// PushSchema publishes a capability schema file (schema_<id>.json) to polaris and waits
// until webgate serves it.
func (s *Suite) PushSchema(path string) {
	s.t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		s.t.Fatal(err)
	}
	s.PushConfig("capabilities", filepath.Base(path), b)
	name := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(path), "schema_"), ".json")
	WaitFor(s.t, 10*time.Second, func() bool { _, ok := s.Webgate.Schemas().Get(name); return ok })
}

// AdminToken is the suite's polaris admin token (admin operations over gRPC, the admin
// API and the console).
const AdminToken = "suitetest-admin-token-0123456789"

// DemoApp is the app webgate accepts while polaris holds no apps config; Client signs
// with it.
var DemoApp = asetest.Credentials{AppID: "e2e", APIKey: "e2e-key", APISecret: "e2e-secret"}

// Client is a signed ASE client for the suite's webgate, as DemoApp.
func (s *Suite) Client() *asetest.Client { return asetest.New(s.URL(), &DemoApp) }

// URL is webgate's base URL (http://127.0.0.1:port).
func (s *Suite) URL() string { return "http://" + s.Webgate.HTTPAddr() }

// WaitFor polls cond every 10 ms until it holds or d passes, then fails the test.
func WaitFor(t testing.TB, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func check(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}
