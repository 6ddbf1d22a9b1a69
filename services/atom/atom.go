// Package atom is the protocol-conversion and routing service of Athena Serving: it turns
// ASE frames from webgate into loader calls, picks loaders through lbclient, keeps one
// loader session per client session and retries refusals on the next candidate.
//
//	cfg := atom.DefaultConfig()
//	cfg.GRPCListen, cfg.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
//	cfg.LBAddr = lb.GRPCAddr()
//	srv, err := atom.New(cfg, log, prometheus.NewRegistry())
//	if err != nil { ... }
//	if err := srv.Start(ctx); err != nil { ... }
//	defer srv.Shutdown(context.Background())
//	conn, _ := grpcx.Dial(srv.GRPCAddr())   // atompb.NewAtomClient(conn)
package atom

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/athenaserving/asf/libs/grpcx"
	"github.com/athenaserving/asf/libs/obs"
	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
	"github.com/athenaserving/asf/services/atom/route"
	"github.com/athenaserving/asf/services/atom/transport"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
)

// Config is atom's configuration; the cfg tags name the YAML keys, env vars
// (ASF_ATOM_<KEY>) and flags.
type Config struct {
	GRPCListen  string        `cfg:"grpc-listen" help:"gRPC listen address of the Atom service"`
	AdminListen string        `cfg:"admin-listen" help:"admin HTTP listen address (/metrics /healthz /readyz)"`
	LBAddr      string        `cfg:"lb" help:"lbclient gRPC address"`
	OnceTimeout time.Duration `cfg:"once-timeout" help:"bound of a once request whose caller set no deadline"`
	LogLevel    string        `cfg:"log-level" help:"log level: trace, debug, info, warn, error"`
}

// DefaultConfig returns the production defaults.
func DefaultConfig() Config {
	return Config{
		GRPCListen:  ":9988",
		AdminListen: ":9987",
		LBAddr:      "127.0.0.1:9989",
		OnceTimeout: 30 * time.Second,
		LogLevel:    "info",
	}
}

func (c Config) validate() error {
	switch {
	case c.GRPCListen == "":
		return errors.New("grpc-listen is empty")
	case c.AdminListen == "":
		return errors.New("admin-listen is empty")
	case c.LBAddr == "":
		return errors.New("lb is empty")
	case c.OnceTimeout <= 0:
		return fmt.Errorf("once-timeout %v must be positive", c.OnceTimeout)
	}
	return nil
}

// Server is an embeddable atom instance.
type Server struct {
	cfg     Config
	log     zerolog.Logger
	grpcLn  net.Listener
	grpc    *grpcx.Server
	admin   *obs.Admin
	lbConn  *grpc.ClientConn
	loaders *grpcx.Pool

	ready    atomic.Bool
	started  atomic.Bool
	wg       sync.WaitGroup
	stopOnce sync.Once
	stopErr  error
}

// New validates cfg, binds the gRPC and admin listeners and builds the service; nothing
// runs until Start. A nil reg gets a fresh registry.
func New(cfg Config, log zerolog.Logger, reg *prometheus.Registry) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("atom config: %w", err)
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	s := &Server{cfg: cfg, log: log, loaders: grpcx.NewPool()}
	lbConn, err := grpcx.Dial(cfg.LBAddr)
	if err != nil {
		return nil, fmt.Errorf("atom lbclient: %w", err)
	}
	s.lbConn = lbConn
	s.grpcLn, err = net.Listen("tcp", cfg.GRPCListen)
	if err != nil {
		_ = lbConn.Close()
		return nil, fmt.Errorf("atom grpc listen %s: %w", cfg.GRPCListen, err)
	}
	s.admin, err = obs.NewAdmin(cfg.AdminListen, reg, s.Ready)
	if err != nil {
		_ = lbConn.Close()
		_ = s.grpcLn.Close()
		return nil, fmt.Errorf("atom: %w", err)
	}
	m := transport.NewMetrics(reg)
	router := route.New(transport.NewLBClient(lbConn), transport.NewLoaders(s.loaders), route.Options{
		OnceTimeout: cfg.OnceTimeout,
		Observer:    m,
		Log:         log,
	})
	s.grpc = grpcx.NewServer("atom", log, reg, grpc.MaxRecvMsgSize(64<<20))
	atompb.RegisterAtomServer(s.grpc.Server, transport.NewServer(router, m, log))
	return s, nil
}

// Start serves gRPC and admin HTTP and marks the service ready. The listeners are bound
// already, so it returns at once.
func (s *Server) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("atom: already started")
	}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		if err := s.grpc.Serve(s.grpcLn); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
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
	return nil
}

// Ready reports whether the service accepts requests.
func (s *Server) Ready() bool { return s.ready.Load() }

// GRPCAddr is the bound gRPC address.
func (s *Server) GRPCAddr() string { return s.grpcLn.Addr().String() }

// AdminAddr is the bound admin HTTP address.
func (s *Server) AdminAddr() string { return s.admin.Addr() }

// Shutdown: (1) mark not ready (/readyz 503, gRPC health NOT_SERVING) so no new work
// comes, (2) GracefulStop the gRPC server, letting running calls and sessions finish
// until ctx ends, then Stop (which cancels them and so aborts their loader sessions),
// (3) close the loader connections and the lbclient connection, (4) stop the admin
// server, (5) wait for the serve goroutines. It is idempotent.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() { s.stopErr = s.shutdown(ctx) })
	return s.stopErr
}

func (s *Server) shutdown(ctx context.Context) error {
	s.ready.Store(false)
	s.grpc.SetServing(false)

	done := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		s.grpc.Stop()
		<-done
	}
	if !s.started.Load() {
		_ = s.grpcLn.Close() // Serve never took it over
	}

	s.loaders.Close()
	err := s.lbConn.Close()

	if aerr := s.admin.Shutdown(ctx); aerr != nil {
		err = errors.Join(err, fmt.Errorf("admin shutdown: %w", aerr))
	}
	if !s.started.Load() {
		// obs.Admin has no Close: Serve on a shut-down server closes its listener and returns.
		_ = s.admin.Serve()
	}
	s.wg.Wait()
	if err != nil {
		return fmt.Errorf("atom shutdown: %w", err)
	}
	return nil
}
