package polaris

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"

	"github.com/athenaserving/asf/libs/obs"
	polarispb "github.com/athenaserving/asf/libs/proto/polaris/v1"
	"github.com/athenaserving/asf/services/polaris/adminapi"
	"github.com/athenaserving/asf/services/polaris/adminapi/auth"
	"github.com/athenaserving/asf/services/polaris/console"
	"github.com/athenaserving/asf/services/polaris/service"
	"github.com/athenaserving/asf/services/polaris/transport"
)

// consoleServer is the HTTP listener of the admin API (/api/v1/) and the web console
// (/ui/, /login), with the token store, the config catalog and the service layer
// behind them. The gRPC transport serves the same endpoints (eps).
type consoleServer struct {
	ln      net.Listener
	srv     *http.Server
	tokens  *auth.Store
	catalog *service.Catalog
	svc     *service.Service
	eps     service.Endpoints
}

// newConsole opens the token store in cfg.DataDir (creating the first admin token on
// the first start and logging it once), builds the service layer (the endpoints every
// entrance calls), the API and console, and binds cfg.ConsoleListen.
func (s *Server) newConsole() (*consoleServer, error) {
	if err := os.MkdirAll(s.cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	tokens, err := auth.Open(filepath.Join(s.cfg.DataDir, auth.FileName), nil)
	if err != nil {
		return nil, err
	}
	if s.cfg.AdminToken != "" {
		if err := tokens.Seed(s.cfg.AdminToken); err != nil {
			return nil, fmt.Errorf("admin-token: %w", err)
		}
	}
	secret, created, err := tokens.Bootstrap()
	if err != nil {
		return nil, err
	}
	if created {
		// Shown once: only its hash is stored.
		s.log.Warn().Str("token", secret).Str("file", filepath.Join(s.cfg.DataDir, auth.FileName)).
			Msg("first start: admin token created; store it now, it is not shown again (console login and Authorization: Bearer)")
	}
	cat, err := service.NewCatalog(context.Background(), s.center, nil, s.log)
	if err != nil {
		return nil, err
	}
	insecure := s.insecure()
	if insecure {
		s.log.Warn().Msg("insecure: gRPC callers without a client certificate are trusted as internal services (admin operations still need an admin token)")
	}
	svc := service.New(service.Options{Registry: s.reg, Center: s.center, Catalog: cat, Tokens: tokens, Resources: s.res,
		NATSURL: s.NATSURL, Prefix: s.cfg.SubjectPrefix, Insecure: insecure, WatchBuffer: s.cfg.WatchBuffer})
	eps := service.MakeEndpoints(svc, s.log, s.promReg)
	con := console.New(console.Options{Service: svc, Endpoints: eps, Log: s.log})
	api := adminapi.New(adminapi.Options{Service: svc, Endpoints: eps, ResourceMax: s.res.MaxSize(), Log: s.log, LoginLink: con.LoginLink})
	mux := http.NewServeMux()
	mux.Handle("/api/", api.Handler())
	mux.Handle("/", con.Handler())
	ln, err := net.Listen("tcp", s.cfg.ConsoleListen)
	if err != nil {
		return nil, fmt.Errorf("console listen %s: %w", s.cfg.ConsoleListen, err)
	}
	srv := &http.Server{Handler: mux}
	// A client that stalls cannot hold a connection; zero keys take obs's admin defaults.
	obs.HTTPTimeouts{ReadHeader: s.cfg.ConsoleReadHeaderTimeout, Read: s.cfg.ConsoleReadTimeout, Idle: s.cfg.ConsoleIdleTimeout}.Apply(srv)
	return &consoleServer{ln: ln, tokens: tokens, catalog: cat, svc: svc, eps: eps, srv: srv}, nil
}

// startConsole runs the catalog and serves the console until shutdown.
func (s *Server) startConsole(ctx context.Context) {
	s.wg.Add(2)
	go func() { defer s.wg.Done(); s.cons.catalog.Run(ctx) }()
	go func() {
		defer s.wg.Done()
		if err := s.cons.srv.Serve(s.cons.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error().Err(err).Msg("console serve")
		}
	}()
}

// ConsoleAddr is the bound address of the admin API and web console.
func (s *Server) ConsoleAddr() string { return s.cons.ln.Addr().String() }

// Tokens is the admin API's token store, for embedding and tests.
func (s *Server) Tokens() *auth.Store { return s.cons.tokens }

// insecure tells whether gRPC callers without a client certificate are trusted as
// internal services (config insecure).
func (s *Server) insecure() bool { return s.cfg.TLS.Insecure }

// registerGRPC registers the gRPC services, which call the service layer's endpoints.
func (s *Server) registerGRPC() {
	polarispb.RegisterRegistryServer(s.grpc.Server, transport.NewRegistryServer(s.cons.svc, s.cons.eps))
	polarispb.RegisterConfigServer(s.grpc.Server, transport.NewConfigServer(s.cons.svc, s.cons.eps))
	polarispb.RegisterResourcesServer(s.grpc.Server, transport.NewResourcesServer(s.cons.svc, s.cons.eps))
}
