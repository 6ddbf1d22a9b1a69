// Package loader is the embeddable loader service: it hosts one engine, admits once
// requests and sessions within its licence, serves them over gRPC (asf.loader.v1.Loader),
// registers with polaris and heartbeats its load. The engine is the built-in echo, a C
// library on the AIGES ABI (engine c, package engine/cabi), a Python wrapper (engine
// python, package engine/python) or a third-party API (engine forward, package
// engine/forward), in this process or, with isolation process, in
// supervised worker processes (package worker); NewEngine builds it.
//
//	cfg := loader.DefaultConfig()
//	cfg.GRPCListen, cfg.AdminListen, cfg.PolarisAddr = "127.0.0.1:0", "127.0.0.1:0", ""
//	s, err := loader.New(cfg, log, prometheus.NewRegistry())
//	if err != nil { ... }
//	if err := s.Start(ctx); err != nil { ... }   // ready: serving and registered
//	defer s.Shutdown(context.Background())
//	conn, _ := grpcx.Dial(s.GRPCAddr())
package loader

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/cfgload"
	"github.com/athenaserving/asf/libs/grpcx"
	"github.com/athenaserving/asf/libs/lifecycle"
	"github.com/athenaserving/asf/libs/localsock"
	"github.com/athenaserving/asf/libs/obs"
	"github.com/athenaserving/asf/libs/polarisclient"
	polarispb "github.com/athenaserving/asf/libs/proto/polaris/v1"
	"github.com/athenaserving/asf/libs/rawstream"
	"github.com/athenaserving/asf/libs/tlsx"
	"github.com/athenaserving/asf/libs/tracing"
	"github.com/athenaserving/asf/services/loader/engine"
	"github.com/athenaserving/asf/services/loader/engine/cabi"
	"github.com/athenaserving/asf/services/loader/engine/forward"
	"github.com/athenaserving/asf/services/loader/engine/hotswap"
	"github.com/athenaserving/asf/services/loader/engine/python"
	"github.com/athenaserving/asf/services/loader/enginetrace"
	"github.com/athenaserving/asf/services/loader/licence"
	"github.com/athenaserving/asf/services/loader/resource"
	"github.com/athenaserving/asf/services/loader/session"
	"github.com/athenaserving/asf/services/loader/transport"
	"github.com/athenaserving/asf/services/loader/worker"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
)

// Config is the loader's configuration; tags name the YAML key, env var and flag.
type Config struct {
	GRPCListen        string            `cfg:"grpc-listen" help:"gRPC listen address"`
	AdminListen       string            `cfg:"admin-listen" help:"admin HTTP listen address (/metrics /healthz /readyz)"`
	Advertise         string            `cfg:"advertise" help:"address registered in polaris (default: the bound gRPC address, 0.0.0.0/:: replaced by 127.0.0.1)"`
	Service           string            `cfg:"service" help:"service name registered in polaris (the capability id)"`
	Engine            string            `cfg:"engine" help:"engine kind: echo (built-in), c (AIGES libwrapper.so), python (AIGES wrapper.py) or forward (a third-party API)"`
	EnginePath        string            `cfg:"engine-path" help:"engine c: path of the libwrapper.so; engine python: path of the wrapper.py; engine forward: path of the forward spec (YAML or JSON)"`
	EngineConfig      map[string]string `cfg:"engine-config" help:"engine Init configuration, k=v,k=v"`
	Async             bool              `cfg:"async" help:"async mode (AIGES asyncMode): c once requests use wrapperExecAsync; c and python sessions get results by callback instead of wrapperRead"`
	RealtimeResult    bool              `cfg:"realtime-result" help:"sync-mode sessions call wrapperRead after every write (AIGES realTimeRlt); false: only after the last input frame"`
	Python            string            `cfg:"python" help:"engine python: interpreter running the workers (a virtualenv's python works; default /usr/bin/python3)"`
	Workers           int               `cfg:"workers" help:"engine python, or isolation process: number of worker processes (0: python one per CPU, isolation 1)"`
	Isolation         string            `cfg:"isolation" help:"none: the engine runs in the loader process; process: in supervised worker processes (a crash fails only that worker's requests with 10109)"`
	WorkerCommand     []string          `cfg:"worker-command" help:"isolation process: command that starts a worker (default: this executable's engine-worker subcommand); engine flags are appended"`
	Licence           int               `cfg:"licence" help:"concurrent engine slots (sessions and once requests)"`
	PolarisAddr       string            `cfg:"polaris" addrs:"true" help:"polaris gRPC address; empty = do not register"`
	HeartbeatInterval time.Duration     `cfg:"heartbeat-interval" help:"load report interval"`
	WarmUp            time.Duration     `cfg:"warm-up" help:"reported idle slots ramp up from 0 over this window after start"`
	SessionIdleTTL    time.Duration     `cfg:"session-idle-ttl" help:"destroy a session idle for this long"`
	ReorderWait       time.Duration     `cfg:"reorder-wait" help:"how long a session waits for a missing sync_id before skipping it"`
	DrainTimeout      time.Duration     `cfg:"drain-timeout" help:"how long shutdown waits for running sessions"`
	RemoteConfig      string            `cfg:"remote-config" help:"file in polaris (asf/default/<service>/v1/<file>) holding licence, engine-config, session-idle-ttl, reorder-wait and drain-timeout; watched and applied while serving; empty: local config only"`
	RetireTimeout     time.Duration     `cfg:"retire-timeout" help:"after an engine-config change, how long the replaced engine instance may finish its sessions before its Fini"`
	EngineVersion     string            `cfg:"engine-version" help:"version of the engine this loader serves, registered in polaris (requests may pin it)"`
	Labels            map[string]string `cfg:"labels" help:"labels registered in polaris and sent with config requests, k=v,k=v (gray=<group> joins a gray group)"`
	LogLevel          string            `cfg:"log-level" help:"trace, debug, info, warn or error"`
	// TLS is the internal plane's mutual TLS (tls-ca, tls-cert, tls-key, insecure): the
	// loader serves atom and calls polaris with it.
	TLS          tlsx.Config
	RegisterWait time.Duration `cfg:"register-wait" help:"how long Start waits for the first registration in polaris; after it the loader serves anyway and registers (retrying with backoff) when polaris answers"`
	Pprof        bool          `cfg:"pprof" help:"serve runtime profiles under /debug/pprof/ on the admin port"`
	// LocalSockets is the directory co-located services share Unix sockets in
	// (libs/localsock): the loader serves its gRPC port there too and reaches polaris over polaris's.
	LocalSockets string `cfg:"local-sockets" help:"directory of the Unix sockets co-located services serve their gRPC ports on too (short: a socket path holds 107 bytes): the gRPC port is served there and polaris is reached over its socket when it serves one; empty: TCP only"`
	// MaxPayloadBytes is the suite's one size limit (the same key on webgate and atom):
	// the gRPC server's message limits derive from it (grpcx.MessageBytes, grpcx.ResultBytes).
	MaxPayloadBytes int64 `cfg:"max-payload-bytes" help:"largest decoded payload of one request or frame (set the same on webgate, atom and the loaders); gRPC message limits derive from it"`
	// AdminConfig holds the admin server's timeouts (admin-read-header-timeout, ...).
	obs.AdminConfig
	// Tracing is trace export (trace-endpoint, trace-ca-file): calls from a traced atom
	// get spans, children of the caller's span carried in the gRPC metadata.
	Tracing tracing.Config
}

// DefaultConfig returns the production defaults.
func DefaultConfig() Config {
	return Config{
		GRPCListen: "127.0.0.1:5090", AdminListen: "127.0.0.1:5091", Service: "echo", Engine: "echo", Licence: 10, RealtimeResult: true,
		Isolation:   IsolationNone,
		PolarisAddr: "127.0.0.1:6868", HeartbeatInterval: time.Second, WarmUp: 10 * time.Second,
		SessionIdleTTL: 15 * time.Second, ReorderWait: 500 * time.Millisecond, DrainTimeout: 10 * time.Second,
		RetireTimeout: time.Minute,
		LogLevel:      "info", RegisterWait: 3 * time.Second,
		MaxPayloadBytes: grpcx.DefaultMaxPayloadBytes,
		AdminConfig:     obs.DefaultAdminConfig(),
	}
}

// InternalTLS is the internal-TLS part of c (checked by the service process at start).
func (c Config) InternalTLS() tlsx.Config { return c.TLS }

func (c Config) validate() error {
	switch {
	case c.Licence < 1:
		return fmt.Errorf("licence %d: must be at least 1: %w", c.Licence, aserr.ErrInvalidParam)
	case c.Service == "":
		return fmt.Errorf("service: must not be empty: %w", aserr.ErrInvalidParam)
	case c.HeartbeatInterval <= 0:
		return fmt.Errorf("heartbeat-interval %s: must be positive: %w", c.HeartbeatInterval, aserr.ErrInvalidParam)
	case c.WarmUp < 0 || c.SessionIdleTTL < 0 || c.DrainTimeout < 0 || c.ReorderWait < 0 || c.RegisterWait < 0 || c.RetireTimeout < 0:
		return fmt.Errorf("durations must not be negative: %w", aserr.ErrInvalidParam)
	case c.MaxPayloadBytes < 0:
		return fmt.Errorf("max-payload-bytes %d: must not be negative: %w", c.MaxPayloadBytes, aserr.ErrInvalidParam)
	}
	if err := c.validateEngine(); err != nil {
		return err
	}
	if c.Advertise != "" {
		if _, _, err := net.SplitHostPort(c.Advertise); err != nil {
			return fmt.Errorf("advertise %q: %v: %w", c.Advertise, err, aserr.ErrInvalidParam)
		}
	}
	return nil
}

// AdvertiseAddr is the address to register: advertise when set, else bound with an
// unspecified or empty host (0.0.0.0, ::) replaced by 127.0.0.1.
func AdvertiseAddr(advertise, bound string) (string, error) {
	if advertise != "" {
		return advertise, nil
	}
	host, port, err := net.SplitHostPort(bound)
	if err != nil {
		return "", fmt.Errorf("bound address %q: %w", bound, err)
	}
	if host == "" {
		host = "127.0.0.1"
	} else if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

// offlineTimeout bounds step (1) of Shutdown so an unreachable polaris cannot eat the
// drain time.
const offlineTimeout = 3 * time.Second

// Server is one loader.
type Server struct {
	cfg       Config
	log       zerolog.Logger
	advertise string
	tls       *tlsx.Bundle // nil: plaintext

	ln    net.Listener
	split *rawstream.Listener // over ln from Start: gRPC and OnceStream's raw streams
	rawM  *rawstream.Metrics  // asf_loader_raw_streams_*
	grpc  *grpcx.Server
	tr    *transport.Server // the Loader service; its OnceStream workers stop with Shutdown
	admin *obs.Admin
	eng   engine.Engine
	pool  *licence.Pool
	mgr   *session.Manager
	res   *resource.Manager // personalisation resources (header res_id/patch_id)

	ready   atomic.Bool
	started atomic.Bool
	inited  atomic.Bool

	// applyMu serialises remote config applies; eff is the config in effect.
	applyMu sync.Mutex
	eff     Config
	drain   atomic.Int64 // drain-timeout in effect, ns

	polaris  *polarisclient.Client
	reg      *polarisclient.Registrar
	regStop  context.CancelFunc
	wg       sync.WaitGroup // serve loops and the registrar
	stopOnce sync.Once
	stopErr  error
	tp       *tracing.Provider // the service's tracing; flushed last by Shutdown
}

// Option adds a dependency to New beyond the config, logger and registry.
type Option func(*options)

type options struct {
	tp trace.TracerProvider
}

// WithTracerProvider makes the loader trace with tp: a span for every licence wait and
// every engine call (once requests, session opens, each session frame), children of the
// caller's span in the request ctx, with the engines' own trace events and spans inside
// them (docs/engines.md). Without it, or with a no-op provider, the loader starts no spans.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(o *options) { o.tp = tp }
}

// New validates cfg, builds the engine and binds both listeners; nothing runs yet.
func New(cfg Config, log zerolog.Logger, reg *prometheus.Registry, opts ...Option) (_ *Server, err error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("loader config: %w", err)
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	tb, err := tlsx.Load(cfg.TLS, log)
	if err != nil {
		return nil, fmt.Errorf("loader: %w", err)
	}
	first, err := NewEngine(cfg, log, reg)
	if err != nil {
		return nil, fmt.Errorf("loader: %w", err)
	}
	// An engine-config change from polaris replaces the instance while the loader serves.
	eng := hotswap.New(first, hotswap.Options{Retire: cfg.RetireTimeout, Log: log})
	// On any error below, release what was opened so far, last first.
	var undo lifecycle.Stack
	defer undo.CloseIf(&err)
	ln, err := localsock.ListenTCP(cfg.GRPCListen, cfg.LocalSockets)
	if err != nil {
		return nil, fmt.Errorf("loader grpc listen %s: %w", cfg.GRPCListen, err)
	}
	undo.Push(ln.Close)
	adv, err := AdvertiseAddr(cfg.Advertise, ln.Addr().String())
	if err != nil {
		return nil, fmt.Errorf("loader: %w", err)
	}
	s := &Server{cfg: cfg, log: log, advertise: adv, ln: ln, eng: eng, tls: tb, eff: cfg}
	// A provider passed in (WithTracerProvider) is its owner's; else the config's, owned here.
	if o.tp != nil {
		s.tp = tracing.Use(o.tp)
	} else if s.tp, err = tracing.New(cfg.Tracing, "loader", tracing.Options{}); err != nil {
		return nil, fmt.Errorf("loader: %w", err)
	} else if s.tp.On() {
		o.tp = s.tp.TracerProvider()
	}
	undo.Push(func() error { return s.tp.Shutdown(context.Background()) })
	s.drain.Store(int64(cfg.DrainTimeout))
	admin, err := obs.NewAdmin(cfg.AdminListen, reg, s.Ready, obs.WithPprof(cfg.Pprof), obs.WithTimeouts(cfg.Timeouts()))
	if err != nil {
		return nil, fmt.Errorf("loader: %w", err)
	}
	s.admin = admin
	s.pool = licence.New(cfg.Licence, cfg.WarmUp, nil)
	s.mgr = session.NewManager(eng, s.pool, session.Config{IdleTTL: cfg.SessionIdleTTL, ReorderWait: cfg.ReorderWait,
		Tracer: enginetrace.Tracer(o.tp), Capability: cfg.Service}, log)
	// Only atom (and the tools) may call the engine.
	s.grpc = grpcx.NewServer("loader", log, reg, append(append(grpcx.AllowCallers("atom"), grpcx.ServerMsgSize(cfg.MaxPayloadBytes)...), append(grpcx.TraceServer(s.tp), rawstream.ServerCreds(tb != nil))...)...)
	s.rawM = rawstream.NewMetrics("loader", reg)
	s.res = resource.NewManager(eng, nil, resource.Config{}, log) // fetches from polaris once Start dialled it
	// Once requests over OnceStream count, log and trace as unary Once calls do.
	tr := transport.New(s.mgr, log, reg, grpcx.NewCallRecorder("loader", log, reg, s.tp))
	s.tr = tr
	undo.PushFunc(tr.Close)
	tr.SetResources(s.res)
	tr.Register(s.grpc.Server)
	transport.RegisterResourceMetrics(reg, s.res)
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "asf_loader_licence_slots", Help: "The licence in effect (it changes with the remote config)."},
			func() float64 { return float64(s.pool.Max()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "asf_loader_engine_generation", Help: "Engine instances that served: 1, plus one per engine-config change applied while serving."},
			func() float64 { return float64(s.EngineGeneration()) }),
	)
	return s, nil
}

// Start initialises the engine, serves gRPC and admin, registers with polaris (unless
// PolarisAddr is empty) and heartbeats; it returns once registered, or after
// register-wait while polaris does not answer: the loader then serves (direct calls, and
// routers that still list it) and registers as soon as polaris is back. ctx bounds start-up.
// After an error, call Shutdown to release what was started.
func (s *Server) Start(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("loader: already started")
	}
	if s.cfg.PolarisAddr != "" {
		c, err := polarisclient.DialWith(s.cfg.PolarisAddr, polarisclient.Options{Log: s.log,
			Caller:      &polarispb.Caller{Addr: s.advertise, Labels: s.labels()},
			DialOptions: []grpc.DialOption{tlsx.DialOption(s.tls, "polaris"), grpcx.LocalSockets(s.cfg.LocalSockets)}})
		if err != nil {
			return fmt.Errorf("loader: %w", err)
		}
		s.polaris = c
	}
	if s.polaris != nil && s.cfg.RemoteConfig != "" {
		if rc, ok := s.fetchRemote(ctx); ok {
			s.eff = rc.over(s.cfg)
			s.pool.SetMax(s.eff.Licence)
			s.mgr.SetTimeouts(s.eff.SessionIdleTTL, s.eff.ReorderWait)
			s.drain.Store(int64(s.eff.DrainTimeout))
		}
	}
	if err := s.eng.Init(ctx, s.eff.EngineConfig); err != nil {
		return fmt.Errorf("loader: engine %s init: %w", s.eng.Name(), err)
	}
	s.inited.Store(true)
	s.pool.StartWarmUp()
	// ln carries gRPC and OnceStream's raw streams (libs/rawstream), TLS handshakes by the
	// split listener when TLS is on.
	var tlsCfg *tls.Config
	if s.tls != nil {
		tlsCfg = s.tls.ServerConfig()
	}
	s.split = rawstream.Listen(s.ln, rawstream.ListenOptions{TLS: tlsCfg, MaxRecv: grpcx.MessageBytes(s.cfg.MaxPayloadBytes), Metrics: s.rawM,
		Log: s.log.With().Str("component", "raw-streams").Logger()})
	s.tr.ServeRaw(s.split)
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		if err := s.grpc.Serve(s.split.GRPC()); err != nil {
			s.log.Error().Err(err).Msg("grpc serve")
		}
	}()
	go func() {
		defer s.wg.Done()
		if err := s.admin.Serve(); err != nil {
			s.log.Error().Err(err).Msg("admin serve")
		}
	}()
	s.grpc.SetServing(true) // serve before registering: callers may come as soon as polaris lists us
	if c := s.polaris; c != nil {
		s.reg = c.NewRegistrar(&polarispb.Instance{Service: s.cfg.Service, Addr: s.advertise, Kind: "provider",
			Version: s.cfg.EngineVersion, Labels: s.cfg.Labels},
			s.cfg.HeartbeatInterval, s.load, s.log)
		s.pool.SetOnChange(s.reg.Notify)
		rctx, cancel := context.WithCancel(context.Background())
		s.regStop = cancel
		src := transport.NewPolarisResources(c.Resources, s.cfg.Service, s.log)
		s.res.SetFetcher(src)
		s.wg.Add(1)
		go func() { defer s.wg.Done(); src.Watch(rctx, s.res, time.Second) }()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			_ = s.reg.Run(rctx)
		}()
		if s.cfg.RemoteConfig != "" {
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				_ = c.WatchConfig(rctx, RemoteConfigKey(s.cfg.Service, s.cfg.RemoteConfig), false,
					func(f *polarispb.ConfigFile) error { return s.applyRemote(rctx, f) })
			}()
		}
		wait := time.NewTimer(s.cfg.RegisterWait)
		select {
		case <-s.reg.Registered():
		case <-wait.C:
			s.log.Warn().Str("polaris", s.cfg.PolarisAddr).Dur("waited", s.cfg.RegisterWait).
				Msg("polaris does not answer: serving unregistered, registering when it is back")
		case <-ctx.Done():
			wait.Stop()
			return fmt.Errorf("loader: register %s at polaris %s: %w", s.advertise, s.cfg.PolarisAddr, ctx.Err())
		}
		wait.Stop()
	}
	s.ready.Store(true)
	s.log.Info().Str("grpc", s.GRPCAddr()).Str("admin", s.AdminAddr()).Str("advertise", s.advertise).
		Str("service", s.cfg.Service).Str("engine", s.eng.Name()).Int("licence", s.pool.Max()).Msg("loader ready")
	return nil
}

func (s *Server) load() *polarispb.Load {
	l := s.pool.Load()
	live := int32(0)
	if l.Live {
		live = 1
	}
	return &polarispb.Load{Total: int32(l.Total), Best: int32(l.Best), Idle: int32(l.Idle), Live: live}
}

// labels are the instance's labels: labels from the config, and service=<service>.
func (s *Server) labels() map[string]string {
	l := maps.Clone(s.cfg.Labels)
	if l == nil {
		l = map[string]string{}
	}
	if _, ok := l["service"]; !ok {
		l["service"] = s.cfg.Service
	}
	return l
}

// Ready reports whether the loader serves (its engine is initialised); registration in
// polaris is not required: it is retried in the background.
func (s *Server) Ready() bool { return s.ready.Load() }

// GRPCAddr is the bound gRPC address.
func (s *Server) GRPCAddr() string { return s.ln.Addr().String() }

// AdminAddr is the bound admin HTTP address.
func (s *Server) AdminAddr() string { return s.admin.Addr() }

// AdvertisedAddr is the address registered in polaris.
func (s *Server) AdvertisedAddr() string { return s.advertise }

// ShutdownBudget is how long Shutdown needs at most: the drain timeout in effect plus
// shutdownSteps for deregistering, stopping gRPC and the engine's Fini (svcmain bounds the
// shutdown with it when it exceeds its default).
func (s *Server) ShutdownBudget() time.Duration {
	return time.Duration(s.drain.Load()) + shutdownSteps
}

// shutdownSteps is the time Shutdown allows itself beyond the drain.
const shutdownSteps = 5 * time.Second

// Shutdown: (1) report live=0 and deregister, (2) refuse new sessions, (3) wait for running
// sessions until the drain timeout or ctx ends, then abort the rest, (4) GracefulStop the
// gRPC server (Stop when ctx ends), draining atom's OnceStreams once its GOAWAY is out (the
// once requests on them finish, later ones go back to atom not run, and the streams end
// so they do not hold the stop up), (5) engine Fini; then stop heartbeating and the admin
// server, and last flush the spans still buffered to the trace collector. Idempotent: later calls return the first call's result.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() { s.stopErr = s.shutdown(ctx) })
	return s.stopErr
}

func (s *Server) shutdown(ctx context.Context) error {
	s.ready.Store(false)
	s.grpc.SetServing(false)
	var errs []error
	// (1) live=0, deregister.
	if s.reg != nil {
		octx, cancel := context.WithTimeout(ctx, offlineTimeout)
		err := s.reg.Offline(octx)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("loader offline: %w", err))
		}
		s.regStop()
	}
	// (2) refuse new sessions and once requests (10110, so callers try another loader).
	s.mgr.Refuse()
	// (3) drain.
	dctx, cancel := context.WithTimeout(ctx, time.Duration(s.drain.Load()))
	if err := s.mgr.Wait(dctx); err != nil {
		s.log.Warn().Int("sessions", s.mgr.Active()).Msg("drain timeout: aborting the remaining sessions")
		s.mgr.AbortAll(fmt.Errorf("loader shutting down: %w", aserr.ErrReleased))
	}
	cancel()
	// (4) stop gRPC and the raw streams (drained with the gRPC ones: their calls finish).
	if s.split != nil {
		lifecycle.StopWithin(ctx, s.grpc, s.tr.DrainStreams)
		s.split.Shutdown(ctx)
	} else {
		s.grpc.Stop()
		_ = s.ln.Close()
	}
	s.tr.Close()
	s.mgr.Close()
	s.res.Close() // unload the idle personalisation resources
	// (5) engine Fini.
	if s.inited.Load() {
		if err := s.eng.Fini(ctx); err != nil {
			errs = append(errs, fmt.Errorf("loader: engine fini: %w", err))
		}
	}
	if err := s.admin.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("loader admin: %w", err))
	}
	s.closeRest()
	if err := s.tp.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("loader: %w", err))
	}
	return errors.Join(errs...)
}

// Kill stops the loader abruptly, as a crash would: the gRPC server stops at once and
// heartbeats stop WITHOUT reporting live=0 or deregistering, so polaris must evict the
// instance by TTL. For tests. Later Shutdown calls do nothing.
func (s *Server) Kill() {
	s.stopOnce.Do(func() {
		s.ready.Store(false)
		if s.regStop != nil {
			s.regStop()
		}
		s.grpc.Stop()
		if s.split != nil {
			s.split.Stop()
		} else {
			_ = s.ln.Close()
		}
		s.tr.Close()
		s.mgr.Close()
		_ = s.admin.Shutdown(context.Background())
		s.closeRest()
	})
}

func (s *Server) closeRest() {
	if s.regStop != nil {
		s.regStop()
	}
	s.wg.Wait()
	if s.polaris != nil {
		_ = s.polaris.Close()
	}
}

// Engine kinds (Config.Engine).
const (
	EngineEcho   = "echo"
	EngineC      = "c"
	EnginePython = "python"
	// EngineForward forwards to a third-party HTTP(S)/WebSocket API (engine-path: its spec).
	EngineForward = "forward"
)

// Isolation modes (Config.Isolation).
const (
	IsolationNone    = "none"
	IsolationProcess = "process"
)

// EngineWorkerCommand is the subcommand of the loader executable that hosts one engine
// worker for isolation process.
const EngineWorkerCommand = "engine-worker"

func (c Config) validateEngine() error {
	switch c.Engine {
	case EngineEcho:
	case EngineC, EnginePython, EngineForward:
		if c.EnginePath == "" {
			return fmt.Errorf("engine %s needs engine-path: %w", c.Engine, aserr.ErrInvalidParam)
		}
	default:
		return fmt.Errorf("engine %q: want %s, %s, %s or %s: %w", c.Engine, EngineEcho, EngineC, EnginePython, EngineForward, aserr.ErrInvalidParam)
	}
	switch c.Isolation {
	case "", IsolationNone:
	case IsolationProcess:
		if c.Engine == EnginePython {
			return fmt.Errorf("isolation process: python engines always run in their own worker processes (set workers): %w", aserr.ErrInvalidParam)
		}
	default:
		return fmt.Errorf("isolation %q: want %s or %s: %w", c.Isolation, IsolationNone, IsolationProcess, aserr.ErrInvalidParam)
	}
	if c.Workers < 0 {
		return fmt.Errorf("workers %d: must not be negative: %w", c.Workers, aserr.ErrInvalidParam)
	}
	return nil
}

// NewEngine builds the uninitialised engine cfg names (engine, engine-path, async,
// realtime-result, python, workers), in this process or, with isolation process, behind a pool of supervised
// worker processes each running the engine-worker subcommand. The loader, the dryrun
// command and the engine workers all build their engine here.
func NewEngine(cfg Config, log zerolog.Logger, reg *prometheus.Registry) (engine.Engine, error) {
	if err := cfg.validateEngine(); err != nil {
		return nil, err
	}
	if cfg.Isolation != IsolationProcess {
		return NewLocalEngine(cfg, log, reg)
	}
	cmd := cfg.WorkerCommand
	if len(cmd) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("isolation process: %w", err)
		}
		cmd = []string{exe, EngineWorkerCommand}
	}
	cmd = append(append([]string{}, cmd...), "--engine="+cfg.Engine, "--engine-path="+cfg.EnginePath,
		"--async="+strconv.FormatBool(cfg.Async), "--realtime-result="+strconv.FormatBool(cfg.RealtimeResult),
		"--python="+cfg.Python, "--isolation="+IsolationNone, "--log-level="+cfg.LogLevel)
	return worker.NewEngine(worker.Config{Name: cfg.Engine, Command: cmd, Size: max(cfg.Workers, 1), Log: log}), nil
}

// NewLocalEngine builds the engine cfg names in this process, whatever cfg.Isolation says.
func NewLocalEngine(cfg Config, log zerolog.Logger, reg *prometheus.Registry) (engine.Engine, error) {
	switch cfg.Engine {
	case EngineC:
		return cabi.Open(cfg.EnginePath, cabi.Options{Name: EngineC, Async: cfg.Async, ResultsAtEnd: !cfg.RealtimeResult, Log: log, Registry: reg})
	case EnginePython:
		return python.New(python.Options{Name: EnginePython, WrapperPath: cfg.EnginePath, Workers: cfg.Workers, Python: cfg.Python,
			Async: cfg.Async, ResultsAtEnd: !cfg.RealtimeResult, Log: log}), nil
	case EngineForward:
		// "env:NAME" values of the spec (secrets) come from the loader's environment.
		spec, err := forward.ReadSpec(cfg.EnginePath, os.Getenv)
		if err != nil {
			return nil, fmt.Errorf("engine forward: %w", err)
		}
		o := forward.Options{Name: EngineForward, Spec: spec, Service: cfg.Service, Licence: cfg.Licence, Log: log}
		if reg != nil { // a nil *Registry must not become a non-nil Registerer
			o.Registry = reg
		}
		return forward.New(o), nil
	}
	return engine.Lookup(cfg.Engine)
}

// EngineWorkerMain is the engine-worker subcommand: args are loader flags naming the
// engine (as NewEngine passes them); the worker socket comes from the parent pool. It
// serves until the parent closes the socket or ctx ends and returns the exit code.
func EngineWorkerMain(ctx context.Context, args []string, getenv func(string) string) int {
	cfg := DefaultConfig()
	if err := cfgload.Load("loader", args, getenv, &cfg); err != nil {
		fmt.Fprintf(os.Stderr, "loader %s: config: %v\n", EngineWorkerCommand, err)
		return 2
	}
	cfg.Isolation = IsolationNone
	log := obs.NewLogger(os.Stderr, "loader-worker", cfg.LogLevel).With().Str("worker", getenv(worker.EnvID)).Logger()
	eng, err := NewLocalEngine(cfg, log, nil)
	if err != nil {
		log.Error().Err(err).Msg("engine")
		return 1
	}
	conn, err := worker.ChildConn()
	if err != nil {
		log.Error().Err(err).Msg("worker socket")
		return 2
	}
	if err := worker.Serve(ctx, conn, eng); err != nil && !errors.Is(err, context.Canceled) {
		log.Error().Err(err).Msg("serve")
		return 1
	}
	return 0
}
