// Package svcmain is the whole of every service's main: load config, build the logger and
// the metrics registry, start the service, log one "ready" line with its addresses, wait
// for SIGINT/SIGTERM, shut down within a bound (a second signal exits at once).
//
//	func main() {
//	    svcmain.Main("loader", loader.DefaultConfig(), func(cfg loader.Config, log zerolog.Logger, reg *prometheus.Registry) (svcmain.Service, error) {
//	        return loader.New(cfg, log, reg)
//	    })
//	}
package svcmain

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	"github.com/athenaserving/asf/libs/buildinfo"
	"github.com/athenaserving/asf/libs/cfgload"
	"github.com/athenaserving/asf/libs/lifecycle"
	"github.com/athenaserving/asf/libs/obs"
	"github.com/athenaserving/asf/libs/tlsx"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Service is what every service's Server provides.
type Service interface {
	Start(ctx context.Context) error
	Shutdown(ctx context.Context) error
}

// DefaultGCPercent is the GC target every service runs with unless GOGC is set.
const DefaultGCPercent = 400

// ShutdownTimeout bounds the whole shutdown after a signal, unless the service asks for
// more with a ShutdownBudget() time.Duration method (its drain timeout plus the steps
// around it).
const ShutdownTimeout = 15 * time.Second

// Main runs a service until a signal and exits the process: 0 after a clean shutdown,
// 1 on a start-up or shutdown error, 2 on bad configuration (the message names the key and
// its value). --help prints the keys and --version the build (libs/buildinfo); both exit 0.
func Main[C any](name string, cfg C, build func(C, zerolog.Logger, *prometheus.Registry) (Service, error)) {
	// The first SIGINT/SIGTERM starts the bounded shutdown; a second exits at once.
	ctx, stop := lifecycle.SignalContext(context.Background(), nil)
	defer stop()
	code := Run(ctx, name, os.Args[1:], os.Getenv, cfg, build)
	stop()
	os.Exit(code)
}

// Run is Main without the process: it returns the exit code. ctx ending asks for shutdown.
func Run[C any](ctx context.Context, name string, args []string, getenv func(string) string, cfg C, build func(C, zerolog.Logger, *prometheus.Registry) (Service, error)) int {
	if err := cfgload.Load(name, args, getenv, &cfg); err != nil {
		if errors.Is(err, cfgload.ErrHelp) {
			return 0
		}
		if errors.Is(err, cfgload.ErrVersion) {
			fmt.Println(buildinfo.Get().String(name))
			return 0
		}
		fmt.Fprintf(os.Stderr, "%s: config: %v\n", name, err)
		return 2
	}
	// A service process runs its internal plane (gRPC) with mutual TLS, or plaintext only
	// when insecure is set explicitly; an embedded server (tests) decides in New.
	if c, ok := any(cfg).(interface{ InternalTLS() tlsx.Config }); ok {
		if err := c.InternalTLS().Check(); err != nil {
			fmt.Fprintf(os.Stderr, "%s: config: %v\n", name, err)
			return 2
		}
	}
	if getenv("GOGC") == "" {
		// The services keep little live heap (tens of MB) and allocate per request; a
		// sparser GC buys measurable throughput for a little memory. GOGC overrides it.
		debug.SetGCPercent(DefaultGCPercent)
	}
	conf := cfgload.Redacted(&cfg)
	log := obs.NewLogger(os.Stderr, name, conf["log-level"])
	reg := obs.NewRegistry()
	log.Info().Interface("config", conf).Msg("starting")

	svc, err := build(cfg, log, reg)
	if err != nil {
		log.Error().Err(err).Msg("build")
		return 1
	}
	startCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	err = svc.Start(startCtx)
	cancel()
	if err != nil {
		log.Error().Err(err).Msg("start")
		shutdown(svc, log)
		return 1
	}
	ev := log.Info()
	if a, ok := svc.(interface{ GRPCAddr() string }); ok {
		ev = ev.Str("grpc", a.GRPCAddr())
	}
	if a, ok := svc.(interface{ HTTPAddr() string }); ok {
		ev = ev.Str("http", a.HTTPAddr())
	}
	if a, ok := svc.(interface{ AdminAddr() string }); ok {
		ev = ev.Str("admin", a.AdminAddr())
	}
	if a, ok := svc.(interface{ ConsoleAddr() string }); ok {
		ev = ev.Str("console", a.ConsoleAddr())
	}
	if a, ok := svc.(interface{ NATSURL() string }); ok {
		ev = ev.Str("nats", a.NATSURL())
	}
	if r, ok := svc.(interface{ Ready() bool }); ok {
		ev = ev.Bool("serving", r.Ready())
	}
	ev.Msg("ready")

	<-ctx.Done()
	log.Info().Msg("signal received: shutting down")
	if err := shutdown(svc, log); err != nil {
		return 1
	}
	log.Info().Msg("stopped")
	return 0
}

// shutdownBudget is how long svc's shutdown may take: ShutdownTimeout, or longer when the
// service says its drain needs more (ShutdownBudget, e.g. a drain timeout plus its steps).
func shutdownBudget(svc Service) time.Duration {
	if b, ok := svc.(interface{ ShutdownBudget() time.Duration }); ok {
		return max(ShutdownTimeout, b.ShutdownBudget())
	}
	return ShutdownTimeout
}

func shutdown(svc Service, log zerolog.Logger) error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownBudget(svc))
	defer cancel()
	if err := svc.Shutdown(ctx); err != nil {
		log.Error().Err(err).Msg("shutdown")
		return err
	}
	return nil
}
