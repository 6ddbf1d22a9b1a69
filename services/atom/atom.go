// Package atom is the protocol-conversion and routing service of Athena Serving: it turns
// ASE frames from webgate into loader calls, picks loaders through lbclient, keeps one
// loader session per client session and retries refusals on the next candidate.
//
//	cfg := atom.DefaultConfig()
//	cfg.GRPCListen, cfg.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
//	cfg.LBAddr = lb.GRPCAddr()
//	cfg.Polaris = polaris.GRPCAddr() // optional: capability schemas + registration as "atom"
//	srv, err := atom.New(cfg, log, prometheus.NewRegistry())
//	if err != nil { ... }
//	if err := srv.Start(ctx); err != nil { ... }
//	defer srv.Shutdown(context.Background())
//	conn, _ := grpcx.Dial(srv.GRPCAddr())   // atompb.NewAtomClient(conn)
package atom

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/athenaserving/asf/libs/capability"
	"github.com/athenaserving/asf/libs/capability/capwatch"
	"github.com/athenaserving/asf/libs/grpcx"
	"github.com/athenaserving/asf/libs/lbpick"
	"github.com/athenaserving/asf/libs/lifecycle"
	"github.com/athenaserving/asf/libs/localsock"
	"github.com/athenaserving/asf/libs/obs"
	"github.com/athenaserving/asf/libs/polarisclient"
	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
	polarispb "github.com/athenaserving/asf/libs/proto/polaris/v1"
	"github.com/athenaserving/asf/libs/rawstream"
	"github.com/athenaserving/asf/libs/tlsx"
	"github.com/athenaserving/asf/libs/tracing"
	"github.com/athenaserving/asf/services/atom/capmeta"
	"github.com/athenaserving/asf/services/atom/convert"
	"github.com/athenaserving/asf/services/atom/route"
	"github.com/athenaserving/asf/services/atom/traffic"
	"github.com/athenaserving/asf/services/atom/transport"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
)

// Config is atom's configuration; the cfg tags name the YAML keys, env vars
// (ASF_ATOM_<KEY>) and flags.
type Config struct {
	GRPCListen  string `cfg:"grpc-listen" help:"gRPC listen address of the Atom service"`
	AdminListen string `cfg:"admin-listen" help:"admin HTTP listen address (/metrics /healthz /readyz)"`
	LBAddr      string `cfg:"lb" addrs:"true" help:"lbclient gRPC address"`
	LBStreams   int    `cfg:"lb-streams" help:"Lb.PickStream streams kept open to lbclient for picks (0: one unary Lb.Pick call per pick)"`
	// LoaderStreams is how many Loader.OnceStream streams atom keeps open to each loader
	// it has called: once requests travel on them (libs/callmux), over unary Loader.Once
	// while none is open.
	LoaderStreams int `cfg:"loader-streams" help:"Loader.OnceStream streams kept open to each loader for once requests (0: one unary Loader.Once call per once request)"`
	// LoaderRawStreams opens those streams as raw streams (libs/rawstream: a connection of
	// their own on the loader's gRPC port, no HTTP/2), each a gRPC stream while the loader
	// does not take them.
	LoaderRawStreams bool          `cfg:"loader-raw-streams" help:"open the loader streams as raw streams on the loader's gRPC port (a connection each, no HTTP/2); false: gRPC streams"`
	LBLeaseMax       int           `cfg:"lb-lease-max" help:"most picks of a service leased from lbclient in advance (Lb.Lease), sized from its pick rate; 0: no lease, every pick asks lbclient"`
	OnceTimeout      time.Duration `cfg:"once-timeout" help:"bound of a once request whose caller set no deadline and whose capability sets no once_timeout"`
	Polaris          string        `cfg:"polaris" addrs:"true" help:"polaris gRPC address: capability schemas are watched there and atom registers itself; empty: no schemas (defaults), no registration"`
	Advertise        string        `cfg:"advertise" help:"address registered in polaris (default: the bound gRPC address, the host name for a wildcard host)"`
	LogLevel         string        `cfg:"log-level" help:"log level: trace, debug, info, warn, error"`
	DataDir          string        `cfg:"data-dir" help:"data directory: the last capability schemas from polaris are cached here (polaris-cache/) so atom starts while polaris is down"`
	Pprof            bool          `cfg:"pprof" help:"serve runtime profiles under /debug/pprof/ on the admin port"`
	// LocalSockets is the directory co-located services share Unix sockets in
	// (libs/localsock): atom serves its gRPC port there too and reaches a loader,
	// lbclient or polaris that serves one over it.
	LocalSockets string `cfg:"local-sockets" help:"directory of the Unix sockets co-located services serve their gRPC ports on too (short: a socket path holds 107 bytes); the gRPC port is served there and peers found there are reached over it; empty: TCP only"`
	// Labels are sent with every config request: "gray=<group>" makes this replica get
	// that gray group's revisions (schemas, traffic splits).
	Labels map[string]string `cfg:"labels" help:"labels sent to polaris's config center, k=v,k=v (gray=<group> joins a gray group)"`
	// MaxPayloadBytes is the suite's one size limit (the same key on webgate and the
	// loader): atom's gRPC server and its loader connections are sized from it
	// (grpcx.MessageBytes, grpcx.ResultBytes).
	MaxPayloadBytes int64 `cfg:"max-payload-bytes" help:"largest decoded payload of one request or frame (set the same on webgate, atom and the loaders); gRPC message limits derive from it"`
	// AdminConfig holds the admin server's timeouts (admin-read-header-timeout, ...).
	obs.AdminConfig
	// TLS is the internal plane's mutual TLS (tls-ca, tls-cert, tls-key, insecure): atom
	// serves webgate and calls lbclient, loaders and polaris with it.
	TLS tlsx.Config
	// Tracing is trace export (trace-endpoint, trace-ca-file): calls from a traced
	// webgate get spans (the call, each pick, each loader attempt) and pass the trace on
	// to lbclient and the loader.
	Tracing tracing.Config
}

// DefaultConfig returns the production defaults.
func DefaultConfig() Config {
	return Config{
		GRPCListen:       "127.0.0.1:9988",
		AdminListen:      "127.0.0.1:9987",
		LBAddr:           "127.0.0.1:9989",
		LBStreams:        6,
		LoaderStreams:    2,
		LoaderRawStreams: true,
		LBLeaseMax:       64,
		OnceTimeout:      30 * time.Second,
		DataDir:          "./data/atom",
		LogLevel:         "info",

		MaxPayloadBytes: grpcx.DefaultMaxPayloadBytes,
		AdminConfig:     obs.DefaultAdminConfig(),
	}
}

// InternalTLS is the internal-TLS part of c (checked by the service process at start).
func (c Config) InternalTLS() tlsx.Config { return c.TLS }

func (c Config) validate() error {
	switch {
	case c.GRPCListen == "":
		return errors.New("grpc-listen is empty")
	case c.AdminListen == "":
		return errors.New("admin-listen is empty")
	case c.LBAddr == "":
		return errors.New("lb is empty")
	case c.LBStreams < 0:
		return fmt.Errorf("lb-streams %d must not be negative", c.LBStreams)
	case c.LoaderStreams < 0:
		return fmt.Errorf("loader-streams %d must not be negative", c.LoaderStreams)
	case c.OnceTimeout <= 0:
		return fmt.Errorf("once-timeout %v must be positive", c.OnceTimeout)
	case c.MaxPayloadBytes < 0:
		return fmt.Errorf("max-payload-bytes %d must not be negative", c.MaxPayloadBytes)
	}
	return nil
}

// Server is an embeddable atom instance.
type Server struct {
	cfg     Config
	log     zerolog.Logger
	grpcLn  net.Listener
	srvTLS  *tls.Config         // the gRPC port's (nil: plaintext)
	split   *rawstream.Listener // over grpcLn from Start: gRPC and CallStream's raw streams
	rawM    *rawstream.Metrics  // asf_atom_raw_streams_*
	grpc    *grpcx.Server
	atom    *transport.Server // the Atom service; its CallStream workers stop with Shutdown
	admin   *obs.Admin
	lbConn  *grpc.ClientConn
	lb      *lbpick.Client
	loaders *grpcx.Pool
	// loaderClients reaches the loaders over loaders' connections, with their once streams.
	loaderClients *transport.Loaders
	router        atomic.Pointer[route.Router] // set in New; read by dropped

	// With Config.Polaris only: the schema watcher and the registrar, run under runCtx.
	polaris   *polarisclient.Client
	schemas   *capability.Registry
	watcher   *capwatch.Watcher
	traffic   *traffic.Table // canary splits from polaris (traffic_<capability>.json)
	registrar *polarisclient.Registrar
	advertise string
	// consumers: one consumer registration per loader service this replica routes to,
	// started on first use (Uses), run under runCtx, taken offline by Shutdown.
	consumers sync.Map // service → *polarisclient.Registrar
	runCtx    context.Context
	runStop   context.CancelFunc

	ready    atomic.Bool
	started  atomic.Bool // Start was called
	serving  atomic.Bool // the serve goroutines own the listeners
	wg       sync.WaitGroup
	stopOnce sync.Once
	stopErr  error
	tp       *tracing.Provider
}

// New validates cfg, binds the gRPC and admin listeners and builds the service; nothing
// runs until Start. A nil reg gets a fresh registry.
func New(cfg Config, log zerolog.Logger, reg *prometheus.Registry) (_ *Server, err error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("atom config: %w", err)
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	tb, err := tlsx.Load(cfg.TLS, log)
	if err != nil {
		return nil, fmt.Errorf("atom: %w", err)
	}
	tp, err := tracing.New(cfg.Tracing, "atom", tracing.Options{})
	if err != nil {
		return nil, fmt.Errorf("atom: %w", err)
	}
	loaderDial := append([]grpc.DialOption{grpcx.FastFailure(), grpcx.CallMsgSize(cfg.MaxPayloadBytes), tlsx.DialOption(tb, "loader"), grpcx.LocalSockets(cfg.LocalSockets)}, grpcx.TraceDial(tp)...)
	s := &Server{cfg: cfg, log: log, tp: tp, loaders: grpcx.NewPool(loaderDial...)}
	if tb != nil {
		s.srvTLS = tb.ServerConfig()
	}
	var direct func(addr string) *rawstream.Dialer
	if cfg.LoaderRawStreams {
		direct = func(addr string) *rawstream.Dialer {
			d := &rawstream.Dialer{Target: addr, MaxRecv: grpcx.ResultBytes(cfg.MaxPayloadBytes), Sockets: cfg.LocalSockets,
				Log: log.With().Str("component", "loader-streams").Str("loader", addr).Logger()}
			if tb != nil {
				d.TLS = tb.ClientConfig("loader")
			}
			return d
		}
	}
	// Before lbpick: its dropped-loader watch (s.dropped) may call it at once.
	s.loaderClients = transport.NewLoaders(s.loaders, transport.LoaderOptions{
		Streams: cfg.LoaderStreams, Direct: direct, Tracer: grpcx.NewCallTracer(tp), Log: log.With().Str("component", "loader-streams").Logger()})
	s.runCtx, s.runStop = context.WithCancel(context.Background())
	// On any error below, release what was opened so far, last first.
	var undo lifecycle.Stack
	defer undo.CloseIf(&err)
	undo.Push(func() error { return tp.Shutdown(context.Background()) })
	undo.PushFunc(s.loaderClients.Close)
	undo.PushFunc(s.runStop)
	if s.lbConn, err = grpcx.Dial(cfg.LBAddr, tlsx.DialOption(tb, "lbclient"), grpcx.LocalSockets(cfg.LocalSockets)); err != nil {
		return nil, fmt.Errorf("atom lbclient: %w", err)
	}
	undo.Push(s.lbConn.Close)
	s.lb = lbpick.New(s.lbConn, lbpick.Options{Streams: cfg.LBStreams, LeaseMax: cfg.LBLeaseMax, OnDropped: s.dropped, Log: log.With().Str("component", "lbpick").Logger()})
	undo.Push(s.lb.Close)
	if s.grpcLn, err = localsock.ListenTCP(cfg.GRPCListen, cfg.LocalSockets); err != nil {
		return nil, fmt.Errorf("atom grpc listen %s: %w", cfg.GRPCListen, err)
	}
	undo.Push(s.grpcLn.Close)
	if s.admin, err = obs.NewAdmin(cfg.AdminListen, reg, s.Ready, obs.WithPprof(cfg.Pprof), obs.WithTimeouts(cfg.Timeouts())); err != nil {
		return nil, fmt.Errorf("atom: %w", err)
	}
	undo.Push(func() error { return s.admin.Shutdown(context.Background()) })
	var metaOf func(string) *convert.Meta
	var versionOf func(string) string
	if cfg.Polaris != "" {
		advertise := cfg.Advertise
		if advertise == "" {
			advertise = advertiseAddr(s.GRPCAddr())
		}
		caller := &polarispb.Caller{Addr: advertise, Labels: maps.Clone(cfg.Labels)}
		if s.polaris, err = polarisclient.DialWith(cfg.Polaris, polarisclient.Options{Log: log, CacheDir: cacheDir(cfg.DataDir), Caller: caller, DialOptions: []grpc.DialOption{tlsx.DialOption(tb, "polaris"), grpcx.LocalSockets(cfg.LocalSockets)}}); err != nil {
			return nil, fmt.Errorf("atom: %w", err)
		}
		s.schemas = capability.NewRegistry()
		s.watcher = capwatch.New(s.polaris.CachedConfig(), s.schemas, nil,
			capwatch.Options{Caller: caller}, log)
		s.traffic = traffic.NewTable()
		versionOf = s.traffic.Choose
		s.advertise = advertise
		s.registrar = s.polaris.NewRegistrar(&polarispb.Instance{Service: "atom", Addr: advertise, Kind: "provider"},
			time.Second, func() *polarispb.Load { return &polarispb.Load{Live: 1} }, log)
		metaOf = capmeta.New(s.schemas).Meta
	}
	m := transport.NewMetrics(reg)
	router := route.New(s.lb, s.loaderClients, route.Options{
		OnceTimeout: cfg.OnceTimeout,
		Meta:        metaOf,
		Observer:    m,
		Log:         log,
		Uses:        s.uses,
		Version:     versionOf,
		Tracer:      tracerOf(tp),
	})
	s.router.Store(router)
	// Only webgate (and the tools) may call atom.
	s.grpc = grpcx.NewServer("atom", log, reg, append(append(grpcx.AllowCallers("webgate"), grpcx.ServerMsgSize(cfg.MaxPayloadBytes)...), append(grpcx.TraceServer(tp), rawstream.ServerCreds(tb != nil))...)...)
	s.rawM = rawstream.NewMetrics("atom", reg)
	// Once requests over CallStream count, log and trace as unary Call calls do.
	s.atom = transport.NewServer(router, m, log, grpcx.NewCallRecorder("atom", log, reg, tp))
	undo.PushFunc(s.atom.Close)
	atompb.RegisterAtomServer(s.grpc.Server, s.atom)
	return s, nil
}

// dropped handles a loader lbclient dropped from rotation while it was live (silent for
// stale-after, or evicted: frozen, cut off or dead without its connection breaking). Its
// connection is closed, which fails every call and session in flight on it at once as
// 10222 "engine node went away": once requests move to the next candidate, sessions that
// had no result yet reopen elsewhere, the others end with one error frame. New work tries
// it last until lbclient takes it back.
func (s *Server) dropped(service, addr, reason string) {
	s.log.Info().Str("service", service).Str("loader", addr).Str("reason", reason).Msg("loader dropped by lbclient: closing its connection")
	if r := s.router.Load(); r != nil {
		r.LoaderGone(addr)
	}
	s.loaderClients.Forget(addr)
}

// tracerOf is the router's tracer: nil with tracing off, so the router skips its spans.
func tracerOf(tp *tracing.Provider) trace.Tracer {
	if !tp.On() {
		return nil
	}
	return tp.Tracer("atom")
}

// advertiseAddr is the address other hosts reach a listener bound to addr at: a wildcard
// host (":9988", "0.0.0.0", "::") becomes the host name.
func advertiseAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if h, err := os.Hostname(); err == nil && h != "" {
			return net.JoinHostPort(h, port)
		}
	}
	return addr
}

// cacheDir is where the polaris client keeps its disk cache under dataDir ("" = none).
func cacheDir(dataDir string) string {
	if dataDir == "" {
		return ""
	}
	return filepath.Join(dataDir, "polaris-cache")
}

// Start serves gRPC and admin HTTP and marks the service ready. With Config.Polaris it
// first waits (within ctx) for the first snapshot of the capability schemas — from
// polaris, or from the disk cache in data-dir while polaris is down — and starts the
// registration in polaris once serving (retried until polaris answers).
func (s *Server) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("atom: already started")
	}
	if s.watcher != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			_ = s.watcher.Run(s.runCtx)
		}()
		select {
		case <-s.watcher.Synced():
		case <-ctx.Done():
			return fmt.Errorf("atom: capability schemas not loaded from polaris %s: %w", s.cfg.Polaris, ctx.Err())
		}
	}
	if s.traffic != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			_ = s.polaris.WatchConfig(s.runCtx, TrafficKey, true, func(f *polarispb.ConfigFile) error {
				return s.traffic.Apply(f.GetKey().GetFile(), f.GetContent())
			})
		}()
	}
	// grpcLn carries gRPC and CallStream's raw streams (libs/rawstream), TLS handshakes by
	// the split listener when TLS is on.
	s.split = rawstream.Listen(s.grpcLn, rawstream.ListenOptions{TLS: s.srvTLS, MaxRecv: grpcx.MessageBytes(s.cfg.MaxPayloadBytes), Metrics: s.rawM,
		Log: s.log.With().Str("component", "raw-streams").Logger()})
	s.atom.ServeRaw(s.split)
	s.serving.Store(true)
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		if err := s.grpc.Serve(s.split.GRPC()); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			s.log.Error().Err(err).Msg("grpc serve")
		}
	}()
	go func() {
		defer s.wg.Done()
		if err := s.admin.Serve(); err != nil {
			s.log.Error().Err(err).Msg("admin serve")
		}
	}()
	s.grpc.SetServing(true)
	s.ready.Store(true)
	if s.registrar != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			_ = s.registrar.Run(s.runCtx)
		}()
	}
	return nil
}

// TrafficKey is the prefix of the canary split files atom watches in polaris:
// asf/default/capabilities/v1/traffic_<capability>.json (package traffic).
var TrafficKey = &polarispb.ConfigKey{Project: "asf", Group: "default", Service: "capabilities", Version: "v1", File: traffic.FilePrefix}

// Traffic returns the canary splits in effect (nil without polaris).
func (s *Server) Traffic() *traffic.Table { return s.traffic }

// uses records in polaris, once per loader service, that this replica consumes it, so the
// registry (and its console) shows who uses which service.
func (s *Server) uses(service string) {
	if s.polaris == nil || !s.serving.Load() {
		return
	}
	if _, ok := s.consumers.Load(service); ok {
		return
	}
	r := s.polaris.NewRegistrar(&polarispb.Instance{Service: service, Addr: s.advertise, Kind: "consumer"},
		time.Second, func() *polarispb.Load { return &polarispb.Load{Live: 1} }, s.log)
	if _, loaded := s.consumers.LoadOrStore(service, r); loaded {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = r.Run(s.runCtx)
	}()
}

// Ready reports whether the service accepts requests.
func (s *Server) Ready() bool { return s.ready.Load() }

// GRPCAddr is the bound gRPC address.
func (s *Server) GRPCAddr() string { return s.grpcLn.Addr().String() }

// AdminAddr is the bound admin HTTP address.
func (s *Server) AdminAddr() string { return s.admin.Addr() }

// Shutdown: (1) mark not ready (/readyz 503, gRPC health NOT_SERVING) and, with polaris,
// report live=0 and deregister (the provider entry and every consumer entry), so no new
// work comes, (2) GracefulStop the gRPC server,
// letting running calls and sessions finish until ctx ends, then Stop (which cancels them
// and so aborts their loader sessions); webgate's CallStreams are drained once the GOAWAY
// is out (their once requests finish, later ones go back to webgate not run, to be sent
// to another atom, and the streams end so they do not hold the stop up), (3) stop the schema watcher and the registrar,
// (4) close the loader once streams and connections, the pick streams, the lbclient and polaris connections, (5) stop the admin server,
// (6) wait for every goroutine, (7) flush the spans still buffered to the trace
// collector (last: every span has ended by then). It is idempotent.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() { s.stopErr = s.shutdown(ctx) })
	return s.stopErr
}

func (s *Server) shutdown(ctx context.Context) error {
	s.ready.Store(false)
	s.grpc.SetServing(false)
	var err error
	if s.registrar != nil && s.serving.Load() {
		if oerr := s.registrar.Offline(ctx); oerr != nil {
			err = fmt.Errorf("polaris: %w", oerr)
		}
		s.consumers.Range(func(_, r any) bool {
			if oerr := r.(*polarisclient.Registrar).Offline(ctx); oerr != nil {
				err = errors.Join(err, fmt.Errorf("polaris consumer: %w", oerr))
			}
			return true
		})
	}

	lifecycle.StopWithin(ctx, s.grpc, s.atom.DrainStreams)
	if s.split != nil {
		s.split.Shutdown(ctx) // the raw streams, drained with the gRPC ones
	}
	if !s.serving.Load() {
		_ = s.grpcLn.Close() // Serve never took it over
	}
	s.atom.Close()

	s.runStop()
	s.loaderClients.Close()
	s.loaders.Close()
	_ = s.lb.Close()
	err = errors.Join(err, s.lbConn.Close())
	if s.polaris != nil {
		err = errors.Join(err, s.polaris.Close())
	}

	if aerr := s.admin.Shutdown(ctx); aerr != nil {
		err = errors.Join(err, fmt.Errorf("admin shutdown: %w", aerr))
	}
	s.wg.Wait()
	err = errors.Join(err, s.tp.Shutdown(ctx))
	if err != nil {
		return fmt.Errorf("atom shutdown: %w", err)
	}
	return nil
}
