// Package webgate is the public edge of the suite: it serves the ASE protocol over HTTP
// (once requests) and WebSocket (streams) and forwards decoded frames to atom over gRPC.
//
//	cfg := webgate.DefaultConfig()
//	cfg.HTTPListen, cfg.AdminListen, cfg.AtomAddr = "127.0.0.1:0", "127.0.0.1:0", atomAddr
//	srv, err := webgate.New(cfg, log, prometheus.NewRegistry())
//	if err != nil { ... }
//	if err := srv.Start(ctx); err != nil { ... }
//	defer srv.Shutdown(context.Background())
//	url := "http://" + srv.HTTPAddr() + "/v1/private/ist"
package webgate

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/athenaserving/asf/libs/callmux"
	"github.com/athenaserving/asf/libs/capability"
	"github.com/athenaserving/asf/libs/capability/capwatch"
	"github.com/athenaserving/asf/libs/grpcx"
	"github.com/athenaserving/asf/libs/lifecycle"
	"github.com/athenaserving/asf/libs/obs"
	"github.com/athenaserving/asf/libs/polarisclient"
	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
	polarispb "github.com/athenaserving/asf/libs/proto/polaris/v1"
	"github.com/athenaserving/asf/libs/rawstream"
	"github.com/athenaserving/asf/libs/tlsx"
	"github.com/athenaserving/asf/libs/tracing"
	"github.com/athenaserving/asf/services/webgate/ase"
	"github.com/athenaserving/asf/services/webgate/auth"
	"github.com/athenaserving/asf/services/webgate/gate"
	"github.com/athenaserving/asf/services/webgate/transport"
	"github.com/athenaserving/asf/services/webgate/transport/atomgrpc"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
)

// Config is webgate's configuration.
type Config struct {
	HTTPListen  string `cfg:"http-listen" help:"address of the public ASE HTTP/WebSocket server"`
	AdminListen string `cfg:"admin-listen" help:"address of the admin server (/metrics /healthz /readyz)"`
	AtomAddr    string `cfg:"atom" addrs:"true" help:"address of atom's gRPC server"`
	// AtomStreams is how many Atom.CallStream streams webgate keeps open over its atom
	// connection: once requests travel on them (libs/callmux), over unary Atom.Call while
	// none is open. Over several atoms each stream goes to the next one.
	AtomStreams int `cfg:"atom-streams" help:"Atom.CallStream streams kept open to atom for once requests, spread over the atoms of the connection (0: one unary Atom.Call call per once request)"`
	// AtomRawStreams opens those streams as raw streams (libs/rawstream: a connection of
	// their own on atom's gRPC port, no HTTP/2), each a gRPC stream while atom does not take
	// them. Only for an atom address of host:port entries or a dns:/// target.
	AtomRawStreams bool          `cfg:"atom-raw-streams" help:"open the atom streams as raw streams on atom's gRPC port (a connection each, no HTTP/2); false: gRPC streams"`
	ReadTimeout    time.Duration `cfg:"read-timeout" help:"WebSocket read timeout: no frame in or result out for this long ends the session (10200); a capability's read_timeout overrides it"`
	SessionTimeout time.Duration `cfg:"session-timeout" help:"WebSocket session lifetime (10114); a capability's session_timeout overrides it"`
	// MaxPayloadBytes is the suite's one size limit (the same key on atom and the loaders):
	// the body and message limits below default to grpcx.EnvelopeBytes of it, and the atom
	// connection's gRPC limits to grpcx.MessageBytes and grpcx.ResultBytes.
	MaxPayloadBytes int64 `cfg:"max-payload-bytes" help:"largest decoded payload of one request or frame (set the same on webgate, atom and the loaders); the other size limits derive from it"`
	MaxBodyBytes    int64 `cfg:"max-body-bytes" help:"largest once (and OIP infer) request body; 0: derived from max-payload-bytes (its base64 plus 1 MiB), and never more"`
	MaxFrameBytes   int64 `cfg:"max-frame-bytes" help:"largest WebSocket message; 0: derived from max-payload-bytes like max-body-bytes, and never more"`

	HTTPReadHeaderTimeout time.Duration `cfg:"http-read-header-timeout" help:"public server: longest time a client may take to send a request's headers"`
	HTTPReadBodyTimeout   time.Duration `cfg:"http-read-body-timeout" help:"public server: longest time a client may take to send a request's body once its headers are in"`
	HTTPIdleTimeout       time.Duration `cfg:"http-idle-timeout" help:"public server: an idle keep-alive connection is closed after this long"`
	MaxUnauthConnsPerIP   int           `cfg:"max-unauth-conns-per-ip" help:"unauthenticated connections one source address may hold open at once; more are answered 429 and closed (0: no cap)"`
	// AdminConfig holds the admin server's timeouts (admin-read-header-timeout, ...).
	obs.AdminConfig
	DataCenter string `cfg:"dc" help:"two-character data centre tag put into every sid"`
	LogLevel   string `cfg:"log-level" help:"trace, debug, info, warn or error"`
	// Tracing is trace export (trace-endpoint, trace-ca-file); SampleConfig the share of
	// requests and sessions traced (trace-sample-rate), which a capability's
	// meta.trace_sample_rate overrides.
	Tracing tracing.Config
	tracing.SampleConfig
	// TLS is the internal plane's mutual TLS (tls-ca, tls-cert, tls-key, insecure):
	// webgate calls atom and polaris with it. The public HTTP port is not affected.
	TLS          tlsx.Config
	DrainTimeout time.Duration `cfg:"drain-timeout" help:"on shutdown, how long running sessions may go on before they are closed (10222)"`

	Auth    string `cfg:"auth" help:"HMAC authentication: on or off (off only for local development)"`
	DemoApp string `cfg:"demo-app" secret:"true" help:"app_id:api_key:api_secret of an app used while no apps config exists (local development); 'generate' makes one and logs its keys"`

	Polaris       string        `cfg:"polaris" addrs:"true" help:"polaris address for capability schemas and apps; empty: none"`
	ConfigWait    time.Duration `cfg:"config-wait" help:"how long Start waits for the first schemas and apps from polaris"`
	ConfigProject string        `cfg:"config-project" help:"polaris config project of schemas and apps"`
	ConfigGroup   string        `cfg:"config-group" help:"polaris config group of schemas and apps"`
	ConfigVersion string        `cfg:"config-version" help:"polaris config version of schemas and apps"`
	SchemaService string        `cfg:"schema-service" help:"polaris config service holding the capability schemas"`
	SchemaPrefix  string        `cfg:"schema-prefix" help:"file name prefix of capability schemas"`
	AppsService   string        `cfg:"apps-service" help:"polaris config service holding the apps file"`
	AppsFile      string        `cfg:"apps-file" help:"file name of the apps config"`
	RequireSchema bool          `cfg:"require-schema" help:"answer 404 for capabilities without a schema instead of passing them to atom"`

	ReplayCache     bool `cfg:"replay-cache" help:"refuse a second use of an HMAC signature while its date is within the clock skew (off by default: see docs/protocol.md)"`
	ReplayCacheSize int  `cfg:"replay-cache-size" help:"most signatures the replay cache remembers (its memory bound); when full the oldest go first"`
	MaxSubSessions  int  `cfg:"max-sub-sessions" help:"sub-sessions one multiplexed WebSocket runs at once; more are refused with 11204"`

	DataDir string `cfg:"data-dir" help:"data directory: the last schemas and apps from polaris are cached here (polaris-cache/) so webgate starts and serves while polaris is down"`
	Pprof   bool   `cfg:"pprof" help:"serve runtime profiles under /debug/pprof/ on the admin port"`
	// LocalSockets is the directory co-located services share Unix sockets in
	// (libs/localsock): webgate reaches atom and polaris over theirs when they serve one.
	LocalSockets string `cfg:"local-sockets" help:"directory of the Unix sockets co-located services serve their gRPC ports on too (short: a socket path holds 107 bytes): atom and polaris are reached over their sockets when they serve one; empty: TCP only"`
	// Labels are sent with every config request besides service=webgate: "gray=<group>"
	// makes this instance get that gray group's revisions (schemas, apps).
	Labels map[string]string `cfg:"labels" help:"labels sent to polaris's config center, k=v,k=v (gray=<group> joins a gray group)"`
}

// DefaultConfig returns the production defaults.
func DefaultConfig() Config {
	return Config{
		HTTPListen:      ":8889",
		AdminListen:     "127.0.0.1:8890",
		AtomAddr:        "127.0.0.1:9988",
		AtomStreams:     4,
		AtomRawStreams:  true,
		ReadTimeout:     15 * time.Second,
		SessionTimeout:  180 * time.Second,
		MaxPayloadBytes: grpcx.DefaultMaxPayloadBytes,

		HTTPReadHeaderTimeout: 10 * time.Second,
		HTTPReadBodyTimeout:   30 * time.Second,
		HTTPIdleTimeout:       2 * time.Minute,
		MaxUnauthConnsPerIP:   DefaultMaxUnauthConnsPerIP,
		AdminConfig:           obs.DefaultAdminConfig(),
		SampleConfig:          tracing.SampleConfig{TraceSampleRate: 0.01},
		DataCenter:            "dx",
		LogLevel:              "info",
		DrainTimeout:          10 * time.Second,
		Auth:                  "on",
		ConfigWait:            10 * time.Second,
		ConfigProject:         "asf",
		ConfigGroup:           "default",
		ConfigVersion:         "v1",
		SchemaService:         "capabilities",
		SchemaPrefix:          "schema_",
		AppsService:           "webgate",
		AppsFile:              "apps.json",
		ReplayCacheSize:       auth.DefaultReplayCacheSize,
		MaxSubSessions:        gate.DefaultMaxSubSessions,
		DataDir:               "./data/webgate",
	}
}

// DefaultMaxUnauthConnsPerIP is the default cap of unauthenticated connections one source
// address may hold open.
const DefaultMaxUnauthConnsPerIP = 256

// Envelope is the largest request body (once, OIP infer) and WebSocket message: the
// configured max-body-bytes or max-frame-bytes, else grpcx.EnvelopeBytes(max-payload-bytes).
func (c Config) envelope(set int64) int64 {
	if set > 0 {
		return set
	}
	return grpcx.EnvelopeBytes(c.MaxPayloadBytes)
}

// InternalTLS is the internal-TLS part of c (checked by the service process at start).
func (c Config) InternalTLS() tlsx.Config { return c.TLS }

func (c Config) validate() error {
	if err := c.SampleConfig.Check(); err != nil {
		return fmt.Errorf("webgate: %w", err)
	}
	switch {
	case c.HTTPListen == "", c.AdminListen == "", c.AtomAddr == "":
		return errors.New("webgate: http-listen, admin-listen and atom-addr are required")
	case c.ReadTimeout <= 0, c.SessionTimeout <= 0:
		return errors.New("webgate: read-timeout and session-timeout must be positive")
	case c.MaxBodyBytes < 0, c.MaxFrameBytes < 0, c.MaxPayloadBytes < 0:
		return errors.New("webgate: max-body-bytes, max-frame-bytes and max-payload-bytes must not be negative")
	case c.MaxBodyBytes > grpcx.EnvelopeBytes(c.MaxPayloadBytes), c.MaxFrameBytes > grpcx.EnvelopeBytes(c.MaxPayloadBytes):
		// atom and the loaders size their messages from max-payload-bytes alone.
		return fmt.Errorf("webgate: max-body-bytes %d and max-frame-bytes %d must not exceed %d, derived from max-payload-bytes (raise that instead)",
			c.MaxBodyBytes, c.MaxFrameBytes, grpcx.EnvelopeBytes(c.MaxPayloadBytes))
	case c.HTTPReadHeaderTimeout < 0, c.HTTPReadBodyTimeout < 0, c.HTTPIdleTimeout < 0, c.MaxUnauthConnsPerIP < 0:
		return errors.New("webgate: http-*-timeout and max-unauth-conns-per-ip must not be negative")
	case c.ReplayCacheSize < 0, c.MaxSubSessions < 0:
		return errors.New("webgate: replay-cache-size and max-sub-sessions must not be negative")
	case c.AtomStreams < 0:
		return fmt.Errorf("webgate: atom-streams %d must not be negative", c.AtomStreams)
	case c.Auth != "on" && c.Auth != "off":
		return fmt.Errorf("webgate: auth %q: want on or off", c.Auth)
	}
	return nil
}

// Server is an embeddable webgate.
type Server struct {
	tp      *tracing.Provider // the service's tracing; flushed last by Shutdown
	cfg     Config
	log     zerolog.Logger
	ln      net.Listener
	conns   *transport.SourceCap // the public listener under ln
	admin   *obs.Admin
	atom    *grpc.ClientConn
	atomMux *atomgrpc.Mux // atom's client: once calls on CallStreams
	handler *transport.Handler
	http    *http.Server

	schemas *capability.Registry
	authn   *auth.Authenticator // nil when auth is off
	limiter *auth.Limiter
	polaris *polarisclient.Client // nil without polaris
	schemaW *capwatch.Watcher
	appsW   *appsWatcher
	// synced holds the config watchers' first-snapshot signals (from polaris or the disk
	// cache): the server is ready once all are closed.
	synced []<-chan struct{}

	ready    atomic.Bool
	started  atomic.Bool
	wg       sync.WaitGroup // the HTTP and admin serve goroutines and the config watchers
	stopCfg  context.CancelFunc
	shutOnce sync.Once
	shutErr  error
}

// New validates cfg, binds the HTTP and admin listeners and prepares the atom and polaris
// connections (connected lazily); nothing runs until Start. A nil reg gets a private registry.
// atomStreamMaxAge is how long one of webgate's Atom.CallStreams takes calls before it is
// replaced (each stream's age drawn between half of it and it). New streams go round-robin
// over the atoms, so this is how soon an atom that was restarted, or added, gets its
// share of once requests: well under a second with 4 streams. A stream costs one HTTP/2
// stream setup per age, a few per second per webgate.
const atomStreamMaxAge = time.Second

func New(cfg Config, log zerolog.Logger, reg *prometheus.Registry) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	s := &Server{cfg: cfg, log: log, schemas: capability.NewRegistry(), stopCfg: func() {}}
	var demo *auth.App
	if cfg.Auth == "on" {
		s.authn = auth.NewAuthenticator(auth.MaxSkew)
		if cfg.ReplayCache {
			s.authn.SetReplayCache(auth.NewReplayCache(cfg.ReplayCacheSize))
		}
		s.limiter = auth.NewLimiter()
		var err error
		if demo, err = demoApp(cfg.DemoApp, log); err != nil {
			return nil, err
		}
	} else {
		log.Warn().Msg("authentication is OFF: for local development only")
	}
	// On any error below, release what was opened so far, last first.
	var undo lifecycle.Stack
	fail := func(err error) (*Server, error) {
		_ = undo.Close()
		return nil, fmt.Errorf("webgate: %w", err)
	}
	tb, err := tlsx.Load(cfg.TLS, log)
	if err != nil {
		return fail(err)
	}
	if s.tp, err = tracing.New(cfg.Tracing, "webgate", tracing.Options{Edge: true, Root: tracing.RateSampler(cfg.TraceSampleRate)}); err != nil {
		return fail(err)
	}
	undo.Push(func() error { return s.tp.Shutdown(context.Background()) })
	cc, err := grpcx.Dial(cfg.AtomAddr, append([]grpc.DialOption{grpcx.CallMsgSize(cfg.MaxPayloadBytes), tlsx.DialOption(tb, "atom"), grpcx.LocalSockets(cfg.LocalSockets)}, grpcx.TraceDial(s.tp)...)...)
	if err != nil {
		return fail(err)
	}
	s.atom = cc
	undo.Push(cc.Close)
	mopts := callmux.Options{Streams: cfg.AtomStreams, MaxAge: atomStreamMaxAge,
		Tracer: grpcx.NewCallTracer(s.tp), Log: log.With().Str("component", "atom-streams").Logger()}
	if cfg.AtomRawStreams && rawstream.Dialable(cfg.AtomAddr) {
		mopts.Direct = &rawstream.Dialer{Target: cfg.AtomAddr, MaxRecv: grpcx.ResultBytes(cfg.MaxPayloadBytes), Sockets: cfg.LocalSockets, Log: mopts.Log}
		if tb != nil {
			mopts.Direct.TLS = tb.ClientConfig("atom")
		}
	}
	s.atomMux = atomgrpc.NewMux(atompb.NewAtomClient(cc), mopts)
	undo.Push(s.atomMux.Close)
	ln, err := net.Listen("tcp", cfg.HTTPListen)
	if err != nil {
		return fail(fmt.Errorf("listen %s: %w", cfg.HTTPListen, err))
	}
	s.conns = transport.NewSourceCap(ln, cfg.MaxUnauthConnsPerIP)
	s.ln = &onceCloseListener{Listener: s.conns}
	undo.Push(s.ln.Close)
	if cfg.Polaris != "" {
		pc, err := polarisclient.DialWith(cfg.Polaris, polarisclient.Options{CacheDir: cacheDir(cfg.DataDir), Log: log,
			DialOptions: []grpc.DialOption{tlsx.DialOption(tb, "polaris"), grpcx.LocalSockets(cfg.LocalSockets)}})
		if err != nil {
			return fail(err)
		}
		s.polaris = pc
		undo.Push(pc.Close)
		labels := maps.Clone(cfg.Labels)
		if labels == nil {
			labels = map[string]string{}
		}
		labels["service"] = "webgate"
		opts := capwatch.Options{Caller: &polarispb.Caller{Addr: s.ln.Addr().String(), Labels: labels}}
		s.schemaW = capwatch.New(pc.CachedConfig(), s.schemas, &polarispb.ConfigKey{
			Project: cfg.ConfigProject, Group: cfg.ConfigGroup, Service: cfg.SchemaService, Version: cfg.ConfigVersion, File: cfg.SchemaPrefix,
		}, opts, log)
		if s.authn != nil {
			s.appsW = newAppsWatcher(pc.CachedConfig(), &polarispb.ConfigKey{
				Project: cfg.ConfigProject, Group: cfg.ConfigGroup, Service: cfg.AppsService, Version: cfg.ConfigVersion, File: cfg.AppsFile,
			}, opts, s.authn, s.limiter, demo, log)
		}
	}
	if s.authn != nil && s.appsW == nil {
		set := &auth.AppSet{}
		if demo != nil {
			set, _ = auth.NewAppSet(demo)
		}
		s.authn.SetApps(set)
	}
	if s.schemaW != nil {
		s.synced = append(s.synced, s.schemaW.Synced())
	}
	if s.appsW != nil {
		s.synced = append(s.synced, s.appsW.synced)
	}
	s.admin, err = obs.NewAdmin(cfg.AdminListen, reg, s.Ready, obs.WithPprof(cfg.Pprof), obs.WithTimeouts(cfg.Timeouts()))
	if err != nil {
		return fail(err)
	}
	undo.Push(func() error { return s.admin.Shutdown(context.Background()) })
	s.handler, err = transport.NewHandler(s.atomMux, transport.Options{
		ReadTimeout:     cfg.ReadTimeout,
		SessionTimeout:  cfg.SessionTimeout,
		MaxBodyBytes:    cfg.envelope(cfg.MaxBodyBytes),
		MaxFrameBytes:   cfg.envelope(cfg.MaxFrameBytes),
		MaxPayloadBytes: cmp.Or(cfg.MaxPayloadBytes, grpcx.DefaultMaxPayloadBytes),
		BodyReadTimeout: cfg.HTTPReadBodyTimeout,
		SIDs:            ase.NewSIDGen(cfg.DataCenter, s.ln.Addr().String()),
		Schemas:         s.schemas,
		RequireSchema:   cfg.RequireSchema,
		MaxSubSessions:  cfg.MaxSubSessions,
		Auth:            s.authn,
		Limiter:         s.limiter,
		Ready:           s.Ready,
		Tracing:         s.tp,
		TraceSampleRate: cfg.TraceSampleRate,
		Loaders:         s.loadersFunc(),
	}, log, reg)
	if err != nil {
		return fail(err)
	}
	// No ReadTimeout: the handler bounds a body's read (http-read-body-timeout) and lifts
	// the deadline afterwards, so a long once call or a WebSocket is not cut by it.
	s.http = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: cfg.HTTPReadHeaderTimeout,
		IdleTimeout:       cfg.HTTPIdleTimeout,
		ConnContext:       transport.ConnContext,
	}
	return s, nil
}

// Schemas is the capability schema registry the server uses.
func (s *Server) Schemas() *capability.Registry { return s.schemas }

// Start starts the config watchers, waits (up to config-wait) for their first snapshot,
// starts serving and returns once the server accepts connections. Ready turns true once
// the schemas and apps are loaded (from polaris or the disk cache), which may be after
// Start returned when neither could be read within config-wait.
func (s *Server) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("webgate: already started")
	}
	cctx, cancel := context.WithCancel(context.Background())
	s.stopCfg = cancel
	synced := s.synced
	if s.schemaW != nil {
		s.wg.Go(func() { _ = s.schemaW.Run(cctx) })
	}
	if s.appsW != nil {
		s.wg.Go(func() { s.appsW.Run(cctx) })
	}
	if len(synced) > 0 {
		wait := time.NewTimer(s.cfg.ConfigWait)
		defer wait.Stop()
	waitLoop:
		for _, ch := range synced {
			select {
			case <-ch:
			case <-wait.C:
				s.log.Warn().Dur("waited", s.cfg.ConfigWait).Msg("config from polaris not loaded yet (no disk cache either): serving, not ready until it is")
				break waitLoop
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		if err := s.http.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			s.log.Error().Err(err).Msg("http serve")
		}
	}()
	go func() {
		defer s.wg.Done()
		if err := s.admin.Serve(); err != nil {
			s.log.Error().Err(err).Msg("admin serve")
		}
	}()
	s.ready.Store(true)
	return nil
}

// Ready reports whether the server serves: it accepts requests and holds the capability
// schemas and apps (from polaris or the disk cache; with polaris configured).
func (s *Server) Ready() bool {
	if !s.ready.Load() {
		return false
	}
	for _, ch := range s.synced {
		select {
		case <-ch:
		default:
			return false
		}
	}
	return true
}

// cacheDir is where the polaris client keeps its disk cache under dataDir ("" = none).
func cacheDir(dataDir string) string {
	if dataDir == "" {
		return ""
	}
	return filepath.Join(dataDir, "polaris-cache")
}

// HTTPAddr is the bound address of the public HTTP/WebSocket server.
func (s *Server) HTTPAddr() string { return s.ln.Addr().String() }

// AdminAddr is the bound address of the admin server.
func (s *Server) AdminAddr() string { return s.admin.Addr() }

// Shutdown: (1) drain: not ready, new requests and WebSocket handshakes get 503 with 10222
// "server shutting down" (keep-alives off, so clients reconnect elsewhere); (2) let running
// once requests and sessions go on for up to drain-timeout (bounded by ctx); (3) stop
// accepting: close the public listener; end the remaining sessions with an error frame
// 10222 and close 1001, cancelling their atom streams; (4) wait for in-flight once
// requests and sessions until ctx ends; (5) stop the config watchers; (6) stop the admin
// server; (7) close the atom call streams and the atom and polaris connections; (8) flush the spans still buffered to
// the trace collector (last: every request's span has ended). It is idempotent.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutOnce.Do(func() {
		s.ready.Store(false)
		s.http.SetKeepAlivesEnabled(false)
		s.handler.Drain() // (1)
		drain := s.cfg.DrainTimeout
		if dl, ok := ctx.Deadline(); ok {
			drain = min(drain, time.Until(dl)/2)
		}
		if drain > 0 {
			dctx, cancel := context.WithTimeout(ctx, drain)
			if err := s.handler.Wait(dctx); err != nil {
				s.log.Info().Msg("drain bound reached: closing the remaining sessions")
			}
			cancel()
		}
		_ = s.ln.Close() // (3); Serve returns, and http.Server.Shutdown below tolerates it
		s.handler.CloseSessions()
		errs := []error{
			s.http.Shutdown(ctx),
			s.handler.Wait(ctx),
		}
		s.stopCfg()
		errs = append(errs, s.admin.Shutdown(ctx))
		s.wg.Wait()
		errs = append(errs, s.atomMux.Close(), s.atom.Close())
		if s.polaris != nil {
			errs = append(errs, s.polaris.Close())
		}
		errs = append(errs, s.tp.Shutdown(ctx)) // (8)
		s.shutErr = errors.Join(errs...)
	})
	return s.shutErr
}

// onceCloseListener closes its listener once, so Shutdown can stop accepting before
// http.Server.Shutdown closes it again.
type onceCloseListener struct {
	net.Listener
	once sync.Once
	err  error
}

func (l *onceCloseListener) Close() error {
	l.once.Do(func() { l.err = l.Listener.Close() })
	return l.err
}
