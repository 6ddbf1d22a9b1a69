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
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/athenaserving/asf/libs/grpcx"
	"github.com/athenaserving/asf/libs/obs"
	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
	"github.com/athenaserving/asf/services/webgate/ase"
	"github.com/athenaserving/asf/services/webgate/transport"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
)

// Config is webgate's configuration.
type Config struct {
	HTTPListen     string        `cfg:"http-listen" help:"address of the public ASE HTTP/WebSocket server"`
	AdminListen    string        `cfg:"admin-listen" help:"address of the admin server (/metrics /healthz /readyz)"`
	AtomAddr       string        `cfg:"atom" help:"address of atom's gRPC server"`
	ReadTimeout    time.Duration `cfg:"read-timeout" help:"WebSocket read timeout: no frame in or result out for this long ends the session (10200)"`
	SessionTimeout time.Duration `cfg:"session-timeout" help:"WebSocket session lifetime (10114)"`
	MaxBodyBytes   int64         `cfg:"max-body-bytes" help:"largest once request body and WebSocket message"`
	DataCenter     string        `cfg:"dc" help:"two-character data centre tag put into every sid"`
	LogLevel       string        `cfg:"log-level" help:"trace, debug, info, warn or error"`
}

// DefaultConfig returns the production defaults.
func DefaultConfig() Config {
	return Config{
		HTTPListen:     ":8889",
		AdminListen:    ":8890",
		AtomAddr:       "127.0.0.1:9988",
		ReadTimeout:    15 * time.Second,
		SessionTimeout: 180 * time.Second,
		MaxBodyBytes:   10 << 20,
		DataCenter:     "dx",
		LogLevel:       "info",
	}
}

// maxResultBytes bounds one atom result (synthesised audio and images can be large).
const maxResultBytes = 64 << 20

func (c Config) validate() error {
	switch {
	case c.HTTPListen == "", c.AdminListen == "", c.AtomAddr == "":
		return errors.New("webgate: http-listen, admin-listen and atom-addr are required")
	case c.ReadTimeout <= 0, c.SessionTimeout <= 0:
		return errors.New("webgate: read-timeout and session-timeout must be positive")
	case c.MaxBodyBytes <= 0:
		return errors.New("webgate: max-body-bytes must be positive")
	}
	return nil
}

// Server is an embeddable webgate.
type Server struct {
	cfg     Config
	log     zerolog.Logger
	ln      net.Listener
	admin   *obs.Admin
	atom    *grpc.ClientConn
	handler *transport.Handler
	http    *http.Server

	ready    atomic.Bool
	started  atomic.Bool
	wg       sync.WaitGroup // the HTTP and admin serve goroutines
	shutOnce sync.Once
	shutErr  error
}

// New validates cfg, binds the HTTP and admin listeners and prepares the atom connection
// (connected lazily); nothing runs until Start. A nil reg gets a private registry.
func New(cfg Config, log zerolog.Logger, reg *prometheus.Registry) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	s := &Server{cfg: cfg, log: log}
	cc, err := grpcx.Dial(cfg.AtomAddr, grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxResultBytes)))
	if err != nil {
		return nil, fmt.Errorf("webgate: %w", err)
	}
	s.atom = cc
	ln, err := net.Listen("tcp", cfg.HTTPListen)
	if err != nil {
		_ = cc.Close()
		return nil, fmt.Errorf("webgate: listen %s: %w", cfg.HTTPListen, err)
	}
	s.ln = &onceCloseListener{Listener: ln}
	s.admin, err = obs.NewAdmin(cfg.AdminListen, reg, s.Ready)
	if err != nil {
		_ = s.ln.Close()
		_ = cc.Close()
		return nil, fmt.Errorf("webgate: %w", err)
	}
	s.handler, err = transport.NewHandler(atompb.NewAtomClient(cc), transport.Options{
		ReadTimeout:    cfg.ReadTimeout,
		SessionTimeout: cfg.SessionTimeout,
		MaxBodyBytes:   cfg.MaxBodyBytes,
		SIDs:           ase.NewSIDGen(cfg.DataCenter, s.ln.Addr().String()),
	}, log, reg)
	if err != nil {
		_ = s.admin.Shutdown(context.Background())
		_ = s.ln.Close()
		_ = cc.Close()
		return nil, fmt.Errorf("webgate: %w", err)
	}
	s.http = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	return s, nil
}

// Start starts serving and returns once the server accepts requests.
func (s *Server) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("webgate: already started")
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

// Ready reports whether the server accepts requests.
func (s *Server) Ready() bool { return s.ready.Load() }

// HTTPAddr is the bound address of the public HTTP/WebSocket server.
func (s *Server) HTTPAddr() string { return s.ln.Addr().String() }

// AdminAddr is the bound address of the admin server.
func (s *Server) AdminAddr() string { return s.admin.Addr() }

// Shutdown: (1) stop accepting: not ready, close the public listener; (2) close every
// WebSocket with 1001 (going away), cancelling its atom stream; (3) wait for in-flight once
// requests and sessions until ctx ends; (4) stop the admin server; (5) close the atom
// connection. It is idempotent.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutOnce.Do(func() {
		s.ready.Store(false)
		_ = s.ln.Close() // (1); Serve returns, and http.Server.Shutdown below tolerates it
		s.handler.CloseSessions()
		errs := []error{
			s.http.Shutdown(ctx),
			s.handler.Wait(ctx),
			s.admin.Shutdown(ctx),
		}
		s.wg.Wait()
		errs = append(errs, s.atom.Close())
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
