// Command loader runs one loader: it hosts an engine, serves asf.loader.v1.Loader and
// registers with polaris. Configuration: defaults → --config YAML → ASF_LOADER_* → flags.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/athenaserving/asf/libs/cfgload"
	"github.com/athenaserving/asf/libs/obs"
	"github.com/athenaserving/asf/services/loader"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv); err != nil {
		if errors.Is(err, cfgload.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "loader:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string) error {
	cfg := loader.DefaultConfig()
	if err := cfgload.Load("loader", args, getenv, &cfg); err != nil {
		return err
	}
	log := obs.NewLogger(os.Stderr, "loader", cfg.LogLevel)
	s, err := loader.New(cfg, log, obs.NewRegistry())
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := s.Shutdown(sctx); err != nil {
			log.Warn().Err(err).Msg("shutdown")
		}
	}()
	if err := s.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	log.Info().Msg("signal received: shutting down")
	return nil
}
