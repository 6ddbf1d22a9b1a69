// Package obs builds what every service uses to be observed: a zerolog JSON logger,
// a Prometheus registry, and the admin HTTP server with /metrics, /healthz, /readyz and,
// when enabled, the runtime profiles under /debug/pprof/.
//
//	log := obs.NewLogger(os.Stderr, "loader", "info")
//	reg := obs.NewRegistry()
//	adm, _ := obs.NewAdmin("127.0.0.1:0", reg, srv.Ready, obs.WithPprof(cfg.Pprof))
//	go adm.Serve()            // owned by the service; stopped by adm.Shutdown(ctx)
package obs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// NewLogger returns a JSON logger writing to w with a "svc" field, a "time" field in RFC
// 3339 UTC with milliseconds (TimeLayout) and the given level (trace, debug, info, warn,
// error; unknown → info: a service's config loader rejects an unknown level before this).
func NewLogger(w io.Writer, service, level string) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(strings.ToLower(level))
	if err != nil || level == "" {
		lvl = zerolog.InfoLevel
	}
	return zerolog.New(w).Level(lvl).Hook(Timestamp).With().Str("svc", service).Logger()
}

// TimeLayout is the layout of every log line's "time": RFC 3339 in UTC with milliseconds,
// 2026-01-02T15:04:05.123Z.
const TimeLayout = "2006-01-02T15:04:05.000Z07:00"

// Timestamp is the hook that writes "time" (TimeLayout, UTC) into each event that is
// logged. It stands in for zerolog's Timestamp(), whose format is the package-global
// zerolog.TimeFieldFormat (seconds by default): setting that global would change every
// logger in the process, and a logger here owns its format.
var Timestamp zerolog.Hook = zerolog.HookFunc(func(e *zerolog.Event, _ zerolog.Level, _ string) {
	var b [32]byte
	buf := append(b[:0], '"')
	buf = time.Now().UTC().AppendFormat(buf, TimeLayout)
	e.RawJSON(zerolog.TimestampFieldName, append(buf, '"'))
})

// NewRegistry returns a Prometheus registry with the Go and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Admin is the admin HTTP server of a service.
type Admin struct {
	ln  net.Listener
	srv *http.Server
	mux *http.ServeMux
}

// AdminOption tunes NewAdmin.
type AdminOption func(*adminOptions)

type adminOptions struct {
	pprof    bool
	timeouts HTTPTimeouts
}

// HTTPTimeouts bound what one connection of an HTTP server may hold: the time to send the
// request headers (ReadHeader), the whole request with its body (Read), and an idle
// keep-alive connection (Idle). Zero fields take DefaultAdminTimeouts'.
type HTTPTimeouts struct {
	ReadHeader time.Duration
	Read       time.Duration
	Idle       time.Duration
}

// DefaultAdminTimeouts are the admin servers' timeouts when none are configured.
var DefaultAdminTimeouts = HTTPTimeouts{ReadHeader: 5 * time.Second, Read: 30 * time.Second, Idle: 60 * time.Second}

// orDefault fills the zero fields of t from d.
func (t HTTPTimeouts) orDefault(d HTTPTimeouts) HTTPTimeouts {
	if t.ReadHeader <= 0 {
		t.ReadHeader = d.ReadHeader
	}
	if t.Read <= 0 {
		t.Read = d.Read
	}
	if t.Idle <= 0 {
		t.Idle = d.Idle
	}
	return t
}

// Apply sets t on srv (zero fields: DefaultAdminTimeouts') and wraps its handler with
// ClearReadDeadline, so Read bounds reading a request but not a long answer.
func (t HTTPTimeouts) Apply(srv *http.Server) {
	t = t.orDefault(DefaultAdminTimeouts)
	srv.ReadHeaderTimeout, srv.ReadTimeout, srv.IdleTimeout = t.ReadHeader, t.Read, t.Idle
	if srv.Handler != nil {
		srv.Handler = ClearReadDeadline(srv.Handler)
	}
}

// ClearReadDeadline lifts the connection's read deadline (http.Server.ReadTimeout) for a
// request without a body before calling next. net/http keeps that deadline while the
// handler runs and cancels the request's context when it passes, which would cut a long
// answer (a 30 s CPU profile, a watch) although the request was read long ago. A request
// with a body keeps it: its handler reads the body within it.
func ClearReadDeadline(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
		}
		next.ServeHTTP(w, r)
	})
}

// AdminConfig holds the admin server's config keys; services embed it in their Config
// (cfgload reads the fields of an embedded struct as keys of the service).
type AdminConfig struct {
	AdminReadHeaderTimeout time.Duration `cfg:"admin-read-header-timeout" help:"admin server: longest time a client may take to send a request's headers"`
	AdminReadTimeout       time.Duration `cfg:"admin-read-timeout" help:"admin server: longest time a client may take to send a whole request"`
	AdminIdleTimeout       time.Duration `cfg:"admin-idle-timeout" help:"admin server: an idle keep-alive connection is closed after this long"`
}

// DefaultAdminConfig returns AdminConfig with DefaultAdminTimeouts.
func DefaultAdminConfig() AdminConfig {
	d := DefaultAdminTimeouts
	return AdminConfig{AdminReadHeaderTimeout: d.ReadHeader, AdminReadTimeout: d.Read, AdminIdleTimeout: d.Idle}
}

// Timeouts is c as HTTPTimeouts.
func (c AdminConfig) Timeouts() HTTPTimeouts {
	return HTTPTimeouts{ReadHeader: c.AdminReadHeaderTimeout, Read: c.AdminReadTimeout, Idle: c.AdminIdleTimeout}
}

// WithTimeouts sets the admin server's timeouts (zero fields: DefaultAdminTimeouts').
func WithTimeouts(t HTTPTimeouts) AdminOption { return func(o *adminOptions) { o.timeouts = t } }

// WithPprof serves the runtime profiles (CPU, heap, goroutines, traces) under
// /debug/pprof/ when on. Off is the default: profiles expose the program's internals and
// cost CPU while taken. /debug/pprof/cmdline is never served, even when on, because a
// command line can hold secrets.
func WithPprof(on bool) AdminOption { return func(o *adminOptions) { o.pprof = on } }

// NewAdmin listens on addr and serves /metrics from reg, /healthz (200 while the process
// serves), /readyz (200 when ready returns true, else 503) and, with WithPprof(true),
// /debug/pprof/. Handle adds more routes. The server times out slow and idle connections
// (WithTimeouts, else DefaultAdminTimeouts).
func NewAdmin(addr string, reg *prometheus.Registry, ready func() bool, opts ...AdminOption) (*Admin, error) {
	var o adminOptions
	for _, opt := range opts {
		opt(&o)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	// OpenMetrics when the scraper asks for it (Accept: application/openmetrics-text): only
	// that format carries the latency histograms' exemplars (the trace id of a sampled
	// request); the text format stays the default.
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg, EnableOpenMetrics: true}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if ready != nil && !ready() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	})
	if o.pprof {
		// CPU, heap and goroutine profiles for operators, on the internal admin port only.
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	// The command line may carry secrets (a flag's value): never served.
	mux.Handle("/debug/pprof/cmdline", http.NotFoundHandler())
	srv := &http.Server{Handler: mux}
	o.timeouts.Apply(srv) // a client that stalls cannot hold a connection
	return &Admin{ln: ln, mux: mux, srv: srv}, nil
}

// Handle registers an extra admin route (for example a debug dump).
func (a *Admin) Handle(pattern string, h http.Handler) { a.mux.Handle(pattern, h) }

// Addr is the address the admin server listens on.
func (a *Admin) Addr() string { return a.ln.Addr().String() }

// Serve serves until Shutdown; it returns nil after a clean shutdown.
func (a *Admin) Serve() error {
	if err := a.srv.Serve(a.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("admin serve: %w", err)
	}
	return nil
}

// Shutdown stops the admin server, waiting for in-flight scrapes until ctx ends. It also
// releases the listener when Serve never ran, so a service that fails between New and
// Start frees its admin port.
func (a *Admin) Shutdown(ctx context.Context) error {
	err := a.srv.Shutdown(ctx)
	if cerr := a.ln.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) && err == nil {
		err = fmt.Errorf("admin listener: %w", cerr)
	}
	return err
}
