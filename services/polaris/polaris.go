package polaris

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/grpcx"
	"github.com/athenaserving/asf/libs/lifecycle"
	"github.com/athenaserving/asf/libs/localsock"
	"github.com/athenaserving/asf/libs/natsbus"
	"github.com/athenaserving/asf/libs/obs"
	"github.com/athenaserving/asf/libs/tlsx"
	"github.com/athenaserving/asf/libs/tracing"
	"github.com/athenaserving/asf/services/polaris/config"
	"github.com/athenaserving/asf/services/polaris/registry"
	"github.com/athenaserving/asf/services/polaris/resource"
	"github.com/athenaserving/asf/services/polaris/transport"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Config is polaris's configuration; every field is a flag, a YAML key and an env var
// (ASF_POLARIS_<KEY>) through libs/cfgload.
type Config struct {
	GRPCListen    string        `cfg:"grpc-listen" help:"gRPC listen address (registry and config center)"`
	AdminListen   string        `cfg:"admin-listen" help:"admin HTTP listen address (/metrics /healthz /readyz /v1/registry)"`
	NATSEmbedded  bool          `cfg:"nats-embedded" help:"run a NATS server inside polaris"`
	NATSListen    string        `cfg:"nats-listen" help:"listen address of the embedded NATS server"`
	NATSURL       string        `cfg:"nats-url" help:"external NATS URL, used when nats-embedded is false"`
	SubjectPrefix string        `cfg:"subject-prefix" help:"NATS subject prefix (<prefix>.registry.<svc>, .load., .config.)"`
	TTL           time.Duration `cfg:"ttl" help:"default instance TTL after its last heartbeat"`
	WatchBuffer   int           `cfg:"watch-buffer" help:"events a Watch stream may fall behind before it is dropped"`
	LogLevel      string        `cfg:"log-level" help:"log level: trace, debug, info, warn, error"`
	Pprof         bool          `cfg:"pprof" help:"serve runtime profiles under /debug/pprof/ on the admin port"`
	// LocalSockets is the directory co-located services share Unix sockets in
	// (libs/localsock): polaris serves its gRPC port there too.
	LocalSockets  string `cfg:"local-sockets" help:"directory of the Unix sockets co-located services serve their gRPC ports on too (short: a socket path holds 107 bytes): the gRPC port is served there too; empty: TCP only"`
	ConsoleListen string `cfg:"console-listen" help:"HTTP listen address of the admin API (/api/v1) and the web console (/ui)"`
	DataDir       string `cfg:"data-dir" help:"data directory (admin API tokens, hashed; polaris.db of backend embedded)"`
	Backend       string `cfg:"backend" help:"storage of registrations and config: embedded (bbolt file in data-dir), memory, consul"`
	ConsulAddr    string `cfg:"consul-addr" help:"Consul HTTP address (backend consul)"`
	ConsulToken   string `cfg:"consul-token" secret:"true" help:"Consul ACL token (backend consul)"`
	ResourceMax   int64  `cfg:"resource-max-bytes" help:"size bound of one personalisation resource (admin API uploads); at most the gRPC message bound loaders accept (64 MiB)"`
	ConfigHistory int    `cfg:"config-history" help:"revisions kept per config file (the oldest beyond it are pruned at the next push; revisions in force are kept)"`
	AdminToken    string `cfg:"admin-token" secret:"true" help:"admin token for the API and console, from a secret (env ASF_POLARIS_ADMIN_TOKEN); empty: one is generated at the first start and logged once"`

	// Console*Timeout bound what one connection of the admin API and console may hold.
	ConsoleReadHeaderTimeout time.Duration `cfg:"console-read-header-timeout" help:"admin API and console: longest time a client may take to send a request's headers"`
	ConsoleReadTimeout       time.Duration `cfg:"console-read-timeout" help:"admin API and console: longest time a client may take to send a whole request (a resource upload's body included)"`
	ConsoleIdleTimeout       time.Duration `cfg:"console-idle-timeout" help:"admin API and console: an idle keep-alive connection is closed after this long"`
	// AdminConfig holds the admin server's timeouts (admin-read-header-timeout, ...).
	obs.AdminConfig

	// NATSUsers is the directory of the NATS users' public keys (<service>.pub) the
	// embedded server accepts, each with its service's subject permissions.
	NATSUsers string `cfg:"nats-users" help:"directory of the NATS users' nkey public keys (<service>.pub) the embedded NATS server accepts; required with nats-embedded unless insecure"`
	// NATS is polaris's own NATS credentials, for an external server (on the embedded
	// server polaris connects with an in-memory key).
	NATS natsbus.ClientConfig
	// TLS is the internal plane's TLS (tls-ca, tls-cert, tls-key; the embedded NATS
	// server serves it and polaris presents it to an external one) and its insecure
	// switch, which also allows NATS without authorization (an embedded server without
	// nats-users, an external one without credentials), logged as a warning.
	TLS tlsx.Config
	// Tracing is trace export (trace-endpoint, trace-ca-file): a call whose caller sends a
	// sampled trace context (webgate's OIP model lookups) gets a server span in that trace;
	// polaris never starts a trace of its own.
	Tracing tracing.Config
}

// maxConfigHistory bounds config-history.
const maxConfigHistory = 10000

// DefaultConfig returns the production defaults.
func DefaultConfig() Config {
	return Config{
		GRPCListen:    "127.0.0.1:6868",
		AdminListen:   "127.0.0.1:6869",
		NATSEmbedded:  true,
		NATSListen:    "127.0.0.1:4222",
		SubjectPrefix: "asf",
		TTL:           registry.DefaultTTL,
		WatchBuffer:   transport.DefaultWatchBuffer,
		LogLevel:      "info",
		ConsoleListen: ":8095",
		DataDir:       "./data/polaris",
		Backend:       BackendEmbedded,
		ConsulAddr:    "127.0.0.1:8500",
		ResourceMax:   resource.DefaultMaxSize,
		ConfigHistory: config.DefaultHistory,

		ConsoleReadHeaderTimeout: 5 * time.Second,
		ConsoleReadTimeout:       60 * time.Second,
		ConsoleIdleTimeout:       2 * time.Minute,
		AdminConfig:              obs.DefaultAdminConfig(),
	}
}

// InternalTLS is the internal-TLS part of c (checked by the service process at start).
func (c Config) InternalTLS() tlsx.Config { return c.TLS }

func (c Config) validate() error {
	var errs []string
	if c.GRPCListen == "" {
		errs = append(errs, "grpc-listen is empty")
	}
	if c.AdminListen == "" {
		errs = append(errs, "admin-listen is empty")
	}
	if c.NATSEmbedded && c.NATSListen == "" {
		errs = append(errs, "nats-listen is empty while nats-embedded is set")
	}
	if !c.NATSEmbedded && c.NATSURL == "" {
		errs = append(errs, "nats-url is empty while nats-embedded is off")
	}
	if c.NATSEmbedded && c.NATSUsers == "" && !c.TLS.Insecure {
		errs = append(errs, "nats-users is empty: the embedded NATS server needs the services' public keys (or set insecure)")
	}
	if !c.NATSEmbedded && !c.NATS.Configured() && !c.TLS.Insecure {
		errs = append(errs, "nats-nkey-seed-file or nats-creds is required for an external NATS server (or set insecure)")
	}
	if c.SubjectPrefix == "" || strings.ContainsAny(c.SubjectPrefix, "*> \t") {
		errs = append(errs, fmt.Sprintf("subject-prefix %q is not a NATS subject", c.SubjectPrefix))
	}
	if c.ConsoleListen == "" || c.DataDir == "" {
		errs = append(errs, "console-listen and data-dir are required")
	}
	if c.TTL <= 0 {
		errs = append(errs, "ttl must be positive")
	}
	if c.ConfigHistory < 1 || c.ConfigHistory > maxConfigHistory {
		errs = append(errs, fmt.Sprintf("config-history %d: want 1 to %d", c.ConfigHistory, maxConfigHistory))
	}
	if c.ResourceMax <= 0 || c.ResourceMax > resource.MaxMaxSize {
		errs = append(errs, fmt.Sprintf("resource-max-bytes %d: want 1 to %d", c.ResourceMax, resource.MaxMaxSize))
	}
	errs = append(errs, validBackend(c)...)
	if len(errs) > 0 {
		return fmt.Errorf("polaris config: %s: %w", strings.Join(errs, "; "), aserr.ErrInvalidParam)
	}
	return nil
}

// Server is a polaris server.
type Server struct {
	cfg     Config
	log     zerolog.Logger
	promReg *prometheus.Registry

	reg    *registry.Registry
	center *config.Center
	res    *resource.Service
	relay  *transport.ResourceRelay
	grpcLn net.Listener
	grpc   *grpcx.Server
	admin  *obs.Admin
	tp     *tracing.Provider // flushed last by Shutdown

	emb     *natsbus.Embedded
	nc      *nats.Conn
	ncDone  chan struct{}
	natsURL atomic.Value // string
	pub     *transport.Publisher
	store   *backend
	cons    *consoleServer

	cancel   context.CancelFunc
	wg       sync.WaitGroup
	ready    atomic.Bool
	started  atomic.Bool
	stopOnce sync.Once
	stopErr  error
}

// New validates cfg, builds the registry and config center, and binds the gRPC and admin
// listeners; nothing runs until Start. promReg nil gets a fresh registry.
func New(cfg Config, log zerolog.Logger, promReg *prometheus.Registry) (_ *Server, err error) {
	if cfg.WatchBuffer <= 0 {
		cfg.WatchBuffer = transport.DefaultWatchBuffer
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if promReg == nil {
		promReg = prometheus.NewRegistry()
	}
	tb, err := tlsx.Load(cfg.TLS, log)
	if err != nil {
		return nil, err
	}
	tp, err := tracing.New(cfg.Tracing, "polaris", tracing.Options{})
	if err != nil {
		return nil, fmt.Errorf("polaris: %w", err)
	}
	// On any error below, release what was opened so far, last first.
	var undo lifecycle.Stack
	defer undo.CloseIf(&err)
	undo.Push(func() error { return tp.Shutdown(context.Background()) })
	store, err := openBackend(context.Background(), cfg, log)
	if err != nil {
		return nil, err
	}
	undo.Push(store.close)
	reg, err := registry.New(context.Background(), store.reg, registry.Options{TTL: cfg.TTL})
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, promReg: promReg, reg: reg, store: store, tp: tp, center: config.New(store.cfg, config.Options{History: cfg.ConfigHistory}),
		res: resource.New(store.res, resource.Options{MaxSize: cfg.ResourceMax})}
	s.natsURL.Store("")

	s.grpcLn, err = localsock.ListenTCP(cfg.GRPCListen, cfg.LocalSockets)
	if err != nil {
		return nil, fmt.Errorf("grpc listen %s: %w", cfg.GRPCListen, err)
	}
	undo.Push(s.grpcLn.Close)
	s.admin, err = obs.NewAdmin(cfg.AdminListen, promReg, s.Ready, obs.WithPprof(cfg.Pprof), obs.WithTimeouts(cfg.Timeouts()))
	if err != nil {
		return nil, err
	}
	undo.Push(func() error { return s.admin.Shutdown(context.Background()) })
	if s.cons, err = s.newConsole(); err != nil {
		return nil, err
	}
	s.admin.Handle("/v1/registry", http.HandlerFunc(s.serveRegistry))
	s.admin.Handle("/v1/config/applied", http.HandlerFunc(s.serveApplied))

	s.grpc = grpcx.NewServer("polaris", log, promReg, append(grpcx.TraceServer(tp), tlsx.ServerOption(tb))...)
	s.registerGRPC()
	s.registerMetrics()
	return s, nil
}

func (s *Server) registerMetrics() {
	st := func(f func(registry.Stats) uint64) func() float64 {
		return func() float64 { return float64(f(s.reg.Stats())) }
	}
	s.promReg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "asf_polaris_instances", Help: "Registered instances."},
			func() float64 { return float64(s.reg.Len()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "asf_polaris_watchers", Help: "Live registry and config watchers."},
			func() float64 { return float64(s.reg.Watchers() + s.center.Watchers()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "asf_polaris_registrations_total", Help: "Registrations accepted."},
			st(func(x registry.Stats) uint64 { return x.Registrations })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "asf_polaris_heartbeats_total", Help: "Heartbeats of known instances."},
			st(func(x registry.Stats) uint64 { return x.Heartbeats })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "asf_polaris_evictions_total", Help: "Instances evicted after their TTL."},
			st(func(x registry.Stats) uint64 { return x.Evictions })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "asf_polaris_watchers_dropped_total", Help: "Registry watchers dropped for falling behind."},
			st(func(x registry.Stats) uint64 { return x.WatchersDropped })),
	)
}

// Start starts the event bus (the embedded NATS server, or a connection to the external
// one), the TTL sweeper, the NATS publisher, the gRPC and the admin servers, and returns
// once they serve. ctx bounds start-up only.
func (s *Server) Start(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("polaris: already started")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	url, auth, err := s.startNATS()
	if err != nil {
		return fmt.Errorf("polaris start: %w", err)
	}
	s.natsURL.Store(url)
	s.ncDone = make(chan struct{})
	done := s.ncDone
	nc, err := natsbus.Connect(url, "polaris", s.log, append(auth, nats.ClosedHandler(func(*nats.Conn) { close(done) }))...)
	if err != nil {
		s.stopNATS(context.Background())
		return fmt.Errorf("polaris start: %w", err)
	}
	s.nc = nc

	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.pub = transport.NewPublisher(nc, s.cfg.SubjectPrefix, s.reg, s.center, s.log, s.promReg)
	if err := s.pub.Start(runCtx); err != nil {
		cancel()
		s.stopNATS(context.Background())
		return err
	}
	s.relay = transport.NewResourceRelay(nc, s.cfg.SubjectPrefix, s.res, s.log)
	if err := s.relay.Start(); err != nil {
		cancel()
		s.stopNATS(context.Background())
		return fmt.Errorf("polaris start: %w", err)
	}
	s.wg.Add(4)
	go func() { defer s.wg.Done(); s.reg.Run(runCtx) }()
	go func() { defer s.wg.Done(); s.center.Run(runCtx) }()
	go func() {
		defer s.wg.Done()
		if err := s.grpc.Serve(s.grpcLn); err != nil {
			s.log.Error().Err(err).Msg("grpc serve")
		}
	}()
	go func() {
		defer s.wg.Done()
		if err := s.admin.Serve(); err != nil {
			s.log.Error().Err(err).Msg("admin serve")
		}
	}()
	s.startConsole(runCtx)
	s.grpc.SetServing(true)
	s.ready.Store(true)
	s.log.Info().Str("grpc", s.GRPCAddr()).Str("admin", s.AdminAddr()).Str("nats", url).Msg("polaris started")
	return nil
}

// Ready reports whether the server serves.
func (s *Server) Ready() bool { return s.ready.Load() }

// GRPCAddr is the bound gRPC address.
func (s *Server) GRPCAddr() string { return s.grpcLn.Addr().String() }

// AdminAddr is the bound admin HTTP address.
func (s *Server) AdminAddr() string { return s.admin.Addr() }

// NATSURL is the URL of the event bus (empty before Start).
func (s *Server) NATSURL() string { return s.natsURL.Load().(string) }

// Registry is the server's registry, for embedding and tests.
func (s *Server) Registry() *registry.Registry { return s.reg }

// ConfigCenter is the server's config center, for embedding and tests.
func (s *Server) ConfigCenter() *config.Center { return s.center }

// Resources is the server's personalisation resource service, for embedding and tests.
func (s *Server) Resources() *resource.Service { return s.res }

// Shutdown stops the server; it is idempotent and bounded by ctx.
// Order: (1) not ready, health NOT_SERVING; (2) stop accepting: gRPC GracefulStop and
// admin and console shutdown begin; (3) close every registry, config and resource watcher, so Watch streams
// and the publisher end and GracefulStop can finish (Stop when ctx ends); (4) stop the
// TTL sweeper and the store watches and wait for every goroutine; (5) drain the NATS
// connection; (6) stop the embedded NATS server; (7) close the store; (8) flush the
// spans of the last calls and stop the trace exporter.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() { s.stopErr = s.shutdown(ctx) })
	return s.stopErr
}

func (s *Server) shutdown(ctx context.Context) error {
	s.ready.Store(false)
	s.grpc.SetServing(false)
	if !s.started.Load() {
		s.grpc.Stop()
		_ = s.grpcLn.Close()
		_ = s.cons.ln.Close()
		return errors.Join(s.admin.Shutdown(ctx), s.cons.srv.Shutdown(ctx), s.store.close(), s.tp.Shutdown(ctx))
	}
	var adminErr error
	lifecycle.StopWithin(ctx, s.grpc, func() {
		adminErr = errors.Join(s.admin.Shutdown(ctx), s.cons.srv.Shutdown(ctx))
		// Closing them ends the watch streams, so GracefulStop can finish.
		s.reg.Close()
		s.center.Close()
		s.res.Close()
	})
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	if s.pub != nil {
		s.pub.Wait()
	}
	if s.relay != nil {
		s.relay.Stop()
	}
	natsErr := s.stopNATS(ctx)
	return errors.Join(adminErr, natsErr, s.store.close(), s.tp.Shutdown(ctx))
}

// startNATS starts the embedded NATS server when configured, with the users of
// nats-users (and polaris's own in-memory key) unless insecure, and returns the URL to
// connect to with the options that authenticate polaris there. With the internal TLS
// files set, the embedded server requires mutual TLS and polaris presents its
// certificate to any NATS server.
func (s *Server) startNATS() (string, []nats.Option, error) {
	var tb *tlsx.Bundle
	if s.cfg.TLS.Enabled() {
		var err error
		if tb, err = tlsx.Load(s.cfg.TLS, s.log); err != nil {
			return "", nil, fmt.Errorf("nats: %w", err)
		}
	}
	if !s.cfg.NATSEmbedded {
		auth, err := s.cfg.NATS.ClientOptions(s.cfg.TLS.Insecure, s.log)
		return s.cfg.NATSURL, append(auth, natsbus.TLSOption(tb)...), err
	}
	if s.cfg.NATSUsers == "" {
		s.log.Warn().Msg("insecure: the embedded NATS server accepts any client")
		emb, err := natsbus.StartEmbedded(s.cfg.NATSListen, s.log, natsbus.WithTLS(tb))
		if err != nil {
			return "", nil, err
		}
		s.emb = emb
		return emb.ClientURL(), natsbus.TLSOption(tb), nil
	}
	users, err := natsbus.LoadUsers(s.cfg.NATSUsers)
	if err != nil {
		return "", nil, err
	}
	self, err := natsbus.NewKey(natsbus.UserPolaris)
	if err != nil {
		return "", nil, err
	}
	auth, err := natsbus.KeyOption(self)
	if err != nil {
		return "", nil, err
	}
	emb, err := natsbus.StartEmbedded(s.cfg.NATSListen, s.log, natsbus.WithUsers(s.cfg.SubjectPrefix, append(users, self.User)...), natsbus.WithTLS(tb))
	if err != nil {
		return "", nil, err
	}
	s.emb = emb
	return emb.ClientURL(), append([]nats.Option{auth}, natsbus.TLSOption(tb)...), nil
}

// stopNATS drains the connection (bounded by ctx) and stops the embedded server.
func (s *Server) stopNATS(ctx context.Context) error {
	var err error
	if s.nc != nil {
		if derr := s.nc.Drain(); derr != nil {
			s.nc.Close()
		}
		select {
		case <-s.ncDone:
		case <-ctx.Done():
			s.nc.Close()
			err = fmt.Errorf("nats drain: %w", ctx.Err())
		}
	}
	if s.emb != nil {
		s.emb.Shutdown()
	}
	return err
}

func (s *Server) serveRegistry(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, map[string]any{"instances": s.reg.List(r.URL.Query().Get("service"))})
}

func (s *Server) serveApplied(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	k := config.Key{Project: q.Get("project"), Group: q.Get("group"), Service: q.Get("service"), Version: q.Get("version"), File: q.Get("file")}
	writeJSON(w, map[string]any{"key": k, "reports": s.center.Applied(k)})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
