// Package lbclient is the load-aggregation service: it keeps the live load of every
// loader (from polaris and NATS) and answers lbpb.Lb.Pick from memory.
//
//	cfg := lbclient.DefaultConfig()
//	cfg.GRPCListen, cfg.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
//	cfg.PolarisAddr = polarisAddr
//	srv, err := lbclient.New(cfg, log, prometheus.NewRegistry())
//	if err != nil { return err }
//	if err := srv.Start(ctx); err != nil { return err } // returns even if polaris is down
//	defer srv.Shutdown(context.Background())
//	conn, _ := grpcx.Dial(srv.GRPCAddr())
//	resp, err := lbpb.NewLbClient(conn).Pick(ctx, &lbpb.PickRequest{Service: "echo", N: 3})
package lbclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/athenaserving/asf/libs/grpcx"
	"github.com/athenaserving/asf/libs/lifecycle"
	"github.com/athenaserving/asf/libs/localsock"
	"github.com/athenaserving/asf/libs/natsbus"
	"github.com/athenaserving/asf/libs/obs"
	"github.com/athenaserving/asf/libs/polarisclient"
	lbpb "github.com/athenaserving/asf/libs/proto/lb/v1"
	polarispb "github.com/athenaserving/asf/libs/proto/polaris/v1"
	"github.com/athenaserving/asf/libs/tlsx"
	"github.com/athenaserving/asf/libs/tracing"
	"github.com/athenaserving/asf/services/lbclient/balance"
	"github.com/athenaserving/asf/services/lbclient/source"
	"github.com/athenaserving/asf/services/lbclient/transport"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
)

// Config is lbclient's configuration; see libs/cfgload for how tags map to YAML keys,
// ASF_LBCLIENT_* variables and flags.
type Config struct {
	GRPCListen     string        `cfg:"grpc-listen" help:"gRPC listen address (Lb service)"`
	AdminListen    string        `cfg:"admin-listen" help:"admin HTTP listen address (/metrics /healthz /readyz /v1/view)"`
	PolarisAddr    string        `cfg:"polaris" addrs:"true" help:"polaris gRPC address"`
	NATSURL        string        `cfg:"nats-url" help:"NATS URL; empty asks polaris (Registry.Info)"`
	ReportInterval time.Duration `cfg:"report-interval" help:"loaders' load report interval; loaders are forgotten after 10 of them"`
	StaleAfter     time.Duration `cfg:"stale-after" help:"a loader without a load report for this long leaves rotation"`
	Strategy       string        `cfg:"strategy" help:"default pick strategy: least-load, p2c, round-robin or consistent-hash"`
	// Strategies overrides Strategy per service.
	Strategies map[string]string `cfg:"strategies" help:"per-service strategy, service=strategy,service=strategy"`
	PickLease  time.Duration     `cfg:"pick-lease" help:"a pick stays charged against a loader until a report this much younger than it (covers pick → session → report)"`
	// LeaseMax and LeaseValidity govern Lb.Lease (docs/load-balancing.md "Leases").
	LeaseMax      int           `cfg:"lease-max" help:"most picks one Lb.Lease grants a caller in advance (0: leases off, callers pick per request)"`
	LeaseValidity time.Duration `cfg:"lease-validity" help:"how long leased picks may be used after the caller asked; at most pick-lease/4, so a leased pick reaches its loader well inside pick-lease"`
	// HashEpsilon is the consistent-hash load slack.
	HashEpsilon float64 `cfg:"hash-epsilon" help:"consistent-hash bounded-load slack: keys stay while a loader is under (1+ε)× the mean utilisation"`
	// ReplicaService is the registry service the replicas register under.
	ReplicaService string        `cfg:"replica-service" help:"polaris service lbclient replicas register under to split loaders' idle slots; empty: no registration, this replica uses every idle slot"`
	Advertise      string        `cfg:"advertise" help:"address registered under replica-service (default: the bound gRPC address, 0.0.0.0/:: replaced by 127.0.0.1)"`
	StartWait      time.Duration `cfg:"start-wait" help:"how long Start waits for polaris before returning not ready (retrying goes on)"`
	LogLevel       string        `cfg:"log-level" help:"trace, debug, info, warn or error"`
	Pprof          bool          `cfg:"pprof" help:"serve runtime profiles under /debug/pprof/ on the admin port"`
	// LocalSockets is the directory co-located services share Unix sockets in
	// (libs/localsock): lbclient serves its gRPC port there too and reaches polaris over polaris's.
	LocalSockets string `cfg:"local-sockets" help:"directory of the Unix sockets co-located services serve their gRPC ports on too (short: a socket path holds 107 bytes): the gRPC port is served there and polaris is reached over its socket when it serves one; empty: TCP only"`
	// AdminConfig holds the admin server's timeouts (admin-read-header-timeout, ...).
	obs.AdminConfig

	// NATS is lbclient's NATS credentials (its user may only subscribe to the registry
	// and load events).
	NATS natsbus.ClientConfig
	// TLS is the internal plane's TLS (tls-ca, tls-cert, tls-key; presented to NATS
	// too) and its insecure switch, which also allows NATS without credentials.
	TLS tlsx.Config
	// Tracing is trace export (trace-endpoint, trace-ca-file): a pick carrying a traced
	// caller's context gets a span.
	Tracing tracing.Config
}

// DefaultConfig returns the production defaults.
func DefaultConfig() Config {
	return Config{
		GRPCListen:     "127.0.0.1:9989",
		AdminListen:    "127.0.0.1:9990",
		PolarisAddr:    "127.0.0.1:6868",
		ReportInterval: time.Second,
		StaleAfter:     3 * time.Second,
		Strategy:       balance.StrategyLeastLoad,
		PickLease:      balance.DefaultLease,
		LeaseMax:       DefaultLeaseMax,
		LeaseValidity:  DefaultLeaseValidity,
		HashEpsilon:    balance.DefaultEpsilon,
		ReplicaService: "lbclient",
		StartWait:      5 * time.Second,
		LogLevel:       "info",
		AdminConfig:    obs.DefaultAdminConfig(),
	}
}

// Lease defaults: a caller leases picks for ~10-20 ms of its traffic, so 256 covers
// ~13k picks/s per service and caller; 20 ms leaves pick-lease (100 ms) 80 ms for the
// session to reach the loader and its report to come back.
const (
	DefaultLeaseMax      = 256
	DefaultLeaseValidity = 20 * time.Millisecond
)

// leaseValidity is how long leased picks may be used: lease-validity, at most a quarter
// of the pick lease in force.
func (c Config) leaseValidity() time.Duration {
	pl := c.PickLease
	if pl <= 0 {
		pl = balance.DefaultLease
	}
	return min(c.LeaseValidity, pl/4)
}

// InternalTLS is the internal-TLS part of c (checked by the service process at start).
func (c Config) InternalTLS() tlsx.Config { return c.TLS }

func (c Config) validate() error {
	var errs []error
	if c.GRPCListen == "" {
		errs = append(errs, errors.New("grpc-listen is empty"))
	}
	if c.AdminListen == "" {
		errs = append(errs, errors.New("admin-listen is empty"))
	}
	if c.PolarisAddr == "" {
		errs = append(errs, errors.New("polaris is empty"))
	}
	if !c.NATS.Configured() && !c.TLS.Insecure {
		errs = append(errs, natsbus.ErrNoCredentials)
	}
	if c.ReportInterval <= 0 {
		errs = append(errs, fmt.Errorf("report-interval %s must be positive", c.ReportInterval))
	}
	if c.StaleAfter < c.ReportInterval {
		errs = append(errs, fmt.Errorf("stale-after %s must be at least report-interval %s", c.StaleAfter, c.ReportInterval))
	}
	if c.PickLease < 0 {
		errs = append(errs, fmt.Errorf("pick-lease %s must not be negative", c.PickLease))
	}
	if c.LeaseMax < 0 {
		errs = append(errs, fmt.Errorf("lease-max %d must not be negative", c.LeaseMax))
	}
	if c.LeaseValidity < 0 {
		errs = append(errs, fmt.Errorf("lease-validity %s must not be negative", c.LeaseValidity))
	}
	if c.HashEpsilon < 0 {
		errs = append(errs, fmt.Errorf("hash-epsilon %g must not be negative", c.HashEpsilon))
	}
	if c.Advertise != "" {
		if _, _, err := net.SplitHostPort(c.Advertise); err != nil {
			errs = append(errs, fmt.Errorf("advertise %q: %w", c.Advertise, err))
		}
	}
	if c.StartWait < 0 {
		errs = append(errs, fmt.Errorf("start-wait %s must not be negative", c.StartWait))
	}
	return errors.Join(errs...)
}

// Server is an embeddable lbclient.
type Server struct {
	cfg   Config
	log   zerolog.Logger
	view  *balance.View
	src   *source.Source
	grpc  *grpcx.Server
	lb    *transport.LB
	ln    net.Listener
	admin *obs.Admin
	self  string // address registered under ReplicaService

	polaris   *polarisclient.Client
	registrar *polarisclient.Registrar
	regCancel context.CancelFunc

	mu       sync.Mutex // guards started, stopped, cancel
	started  bool
	stopped  bool
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	stopOnce sync.Once
	stopErr  error
	tp       *tracing.Provider
}

// New validates cfg and binds the gRPC and admin listeners; nothing runs until Start.
func New(cfg Config, log zerolog.Logger, reg *prometheus.Registry) (_ *Server, err error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("lbclient config: %w", err)
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	tb, err := tlsx.Load(cfg.TLS, log)
	if err != nil {
		return nil, fmt.Errorf("lbclient: %w", err)
	}
	// On any error below, release what was opened so far, last first.
	var undo lifecycle.Stack
	defer undo.CloseIf(&err)
	ln, err := localsock.ListenTCP(cfg.GRPCListen, cfg.LocalSockets)
	if err != nil {
		return nil, fmt.Errorf("lbclient grpc listen %s: %w", cfg.GRPCListen, err)
	}
	undo.Push(ln.Close)
	self, err := advertiseAddr(cfg.Advertise, ln.Addr().String())
	if err != nil {
		return nil, fmt.Errorf("lbclient: %w", err)
	}
	// lb is set below, before anything runs: the view tells it of dropped loaders, which
	// it streams to WatchDropped callers.
	var lb *transport.LB
	view, err := balance.NewView(balance.Options{
		OnDropped: func(d balance.Dropped) {
			log.Info().Str("service", d.Service).Str("loader", d.Addr).Str("reason", d.Reason).Msg("loader dropped from rotation")
			lb.Dropped(d)
		},
		StaleAfter:     cfg.StaleAfter,
		ForgetAfter:    10 * cfg.ReportInterval,
		Strategy:       cfg.Strategy,
		Strategies:     cfg.Strategies,
		Lease:          cfg.PickLease,
		Epsilon:        cfg.HashEpsilon,
		ReplicaService: cfg.ReplicaService,
		Self:           self,
	})
	if err != nil {
		return nil, fmt.Errorf("lbclient config: %w", err)
	}
	natsAuth, err := cfg.NATS.ClientOptions(cfg.TLS.Insecure, log)
	// NATS with the internal plane's mutual TLS when its files are set.
	natsAuth = append(natsAuth, natsbus.TLSOption(tb)...)
	if err != nil {
		return nil, fmt.Errorf("lbclient config: %w", err)
	}
	src, err := source.New(source.Config{PolarisAddr: cfg.PolarisAddr, NATSURL: cfg.NATSURL, NATSOptions: natsAuth, SweepEvery: cfg.ReportInterval,
		DialOptions: []grpc.DialOption{tlsx.DialOption(tb, "polaris"), grpcx.LocalSockets(cfg.LocalSockets)}}, view, log, reg)
	if err != nil {
		return nil, fmt.Errorf("lbclient: %w", err)
	}
	undo.Push(src.Close)
	lb, err = transport.NewLB(view, time.Now, reg)
	if err != nil {
		return nil, fmt.Errorf("lbclient metrics: %w", err)
	}
	tp, err := tracing.New(cfg.Tracing, "lbclient", tracing.Options{})
	if err != nil {
		return nil, fmt.Errorf("lbclient: %w", err)
	}
	undo.Push(func() error { return tp.Shutdown(context.Background()) })
	lb.Trace(tp)
	lb.Leases(cfg.LeaseMax, cfg.leaseValidity())
	s := &Server{cfg: cfg, log: log, view: view, src: src, ln: ln, self: self, lb: lb, tp: tp}
	admin, err := obs.NewAdmin(cfg.AdminListen, reg, s.Ready, obs.WithPprof(cfg.Pprof), obs.WithTimeouts(cfg.Timeouts()))
	if err != nil {
		return nil, fmt.Errorf("lbclient: %w", err)
	}
	undo.Push(func() error { return admin.Shutdown(context.Background()) })
	admin.Handle("/v1/view", transport.ViewHandler(view, time.Now, s.Ready, func() any {
		return struct {
			source.Info
			Connected bool `json:"nats_connected"`
		}{src.Info(), src.Connected()}
	}))
	s.admin = admin
	if cfg.ReplicaService != "" {
		// Registered as a replica, the others split the loaders' idle slots with this one.
		c, err := polarisclient.DialWith(cfg.PolarisAddr, polarisclient.Options{Log: log, DialOptions: []grpc.DialOption{tlsx.DialOption(tb, "polaris"), grpcx.LocalSockets(cfg.LocalSockets)}})
		if err != nil {
			return nil, fmt.Errorf("lbclient: %w", err)
		}
		s.polaris = c
		s.registrar = c.NewRegistrar(&polarispb.Instance{Service: cfg.ReplicaService, Addr: self, Kind: "provider"},
			cfg.ReportInterval, func() *polarispb.Load { return &polarispb.Load{Total: 1, Best: 1, Idle: 1, Live: 1} }, log)
	}
	// Only atom (and the tools) may pick.
	s.grpc = grpcx.NewServer("lbclient", log, reg, append(grpcx.AllowCallers("atom"), tlsx.ServerOption(tb))...)
	lbpb.RegisterLbServer(s.grpc.Server, lb)
	return s, nil
}

// Start serves gRPC and admin and starts following polaris. It returns once the first
// registry snapshot is applied, or after StartWait (or when ctx ends) with Ready still
// false while the connection to polaris keeps being retried in the background. Pick
// answers 10404 until the view knows a service.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	if s.started || s.stopped {
		s.mu.Unlock()
		return errors.New("lbclient: Start called twice or after Shutdown")
	}
	s.started = true
	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Add(5) // under mu, so a concurrent Shutdown waits for all five
	if s.registrar != nil {
		rctx, rcancel := context.WithCancel(context.Background())
		s.regCancel = rcancel
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			_ = s.registrar.Run(rctx)
		}()
	}
	s.mu.Unlock()

	go func() {
		defer s.wg.Done()
		if err := s.grpc.Serve(s.ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			s.log.Error().Err(err).Msg("grpc serve")
		}
	}()
	go func() {
		defer s.wg.Done()
		if err := s.admin.Serve(); err != nil {
			s.log.Error().Err(err).Msg("admin serve")
		}
	}()
	go func() {
		defer s.wg.Done()
		if err := s.src.Run(runCtx); err != nil {
			s.log.Error().Err(err).Msg("registry source stopped")
		}
	}()
	// The Lb service answers from the view at once; gRPC health says SERVING once ready.
	go func() {
		defer s.wg.Done()
		s.markServingWhenReady(runCtx)
	}()
	go func() {
		defer s.wg.Done()
		s.expireSilent(runCtx)
	}()

	wait := time.NewTimer(s.cfg.StartWait)
	defer wait.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !s.src.Ready() {
		select {
		case <-ctx.Done():
		case <-wait.C:
		case <-tick.C:
			continue
		}
		s.log.Warn().Str("polaris", s.cfg.PolarisAddr).Msg("polaris not reached during start-up; not ready, retrying in the background")
		return nil
	}
	s.grpc.SetServing(true)
	return nil
}

// expireEvery is how often the view looks for loaders gone silent, to tell WatchDropped
// callers: a silent loader is reported at most this long after it went stale.
const expireEvery = 50 * time.Millisecond

// expireSilent reports loaders gone silent (View.Expire) until ctx ends.
func (s *Server) expireSilent(ctx context.Context) {
	t := time.NewTicker(expireEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.view.Expire(now)
		}
	}
}

// markServingWhenReady flips gRPC health to SERVING once the source is ready.
func (s *Server) markServingWhenReady(ctx context.Context) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if s.src.Ready() {
				s.grpc.SetServing(true)
				return
			}
		}
	}
}

// advertiseAddr is advertise when set, else bound with an unspecified host replaced by
// 127.0.0.1.
func advertiseAddr(advertise, bound string) (string, error) {
	if advertise != "" {
		return advertise, nil
	}
	host, port, err := net.SplitHostPort(bound)
	if err != nil {
		return "", fmt.Errorf("bound address %q: %w", bound, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

// NATSConnected tells whether the NATS connection is up (while it is down, the view is
// kept from polaris polls).
func (s *Server) NATSConnected() bool { return s.src.Connected() }

// Self is the address this replica registers under ReplicaService.
func (s *Server) Self() string { return s.self }

// Ready tells whether the first registry snapshot is applied with NATS subscribed.
func (s *Server) Ready() bool { return s.src.Ready() }

// GRPCAddr is the bound gRPC address.
func (s *Server) GRPCAddr() string { return s.ln.Addr().String() }

// AdminAddr is the bound admin HTTP address.
func (s *Server) AdminAddr() string { return s.admin.Addr() }

// Live is the number of loaders of service in rotation now (for tests and probes).
func (s *Server) Live(service string) int { return s.view.Live(service, time.Now()) }

// View is the server's balance view (read-only use: Dump, Stats, Live).
func (s *Server) View() *balance.View { return s.view }

// Shutdown stops the server; it is idempotent.
// Order: (1) gRPC health NOT_SERVING so callers move away, (2) GracefulStop the gRPC
// server (Stop when ctx ends) so in-flight Picks finish, ending every PickStream once the
// GOAWAY is out so callers' long-lived streams do not hold the stop up, (3) report the replica
// registration live=0 and deregister it (bounded by 2 s), so the other replicas take
// this one's share of idle slots only once it no longer picks, (4) stop the registry
// source (closes the NATS connection), (5) shut the admin server down last so /metrics
// and /readyz answer until the end, (6) wait for every goroutine, then close the
// polaris connections, (7) flush the spans still buffered to the trace collector.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() { s.stopErr = s.shutdown(ctx) })
	return s.stopErr
}

func (s *Server) shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.stopped = true
	started := s.started
	cancel := s.cancel
	s.mu.Unlock()

	// Health.Shutdown sets NOT_SERVING and ignores later updates from the watcher.
	s.grpc.Health.Shutdown()
	// GracefulStop sends GOAWAY at once and then waits for the handlers; a PickStream
	// ends only when told. A caller that reopens meanwhile reaches a server that ends
	// that stream too, and then another replica.
	lifecycle.StopWithin(ctx, s.grpc, s.lb.EndStreams)
	if !started {
		// Serve never ran: the listener is still open.
		_ = s.ln.Close()
	}
	if s.registrar != nil && started {
		octx, ocancel := context.WithTimeout(ctx, 2*time.Second)
		if err := s.registrar.Offline(octx); err != nil {
			s.log.Warn().Err(err).Msg("replica deregistration")
		}
		ocancel()
		s.regCancel()
	}
	if cancel != nil {
		cancel()
	}
	err := s.admin.Shutdown(ctx)
	s.wg.Wait()
	_ = s.src.Close()
	if s.polaris != nil {
		_ = s.polaris.Close()
	}
	terr := s.tp.Shutdown(ctx)
	if err != nil {
		return fmt.Errorf("lbclient admin shutdown: %w", err)
	}
	return terr
}
