// Command loader runs one loader: it hosts an engine, serves asf.loader.v1.Loader and
// registers with polaris. Configuration: defaults → --config YAML → ASF_LOADER_* → flags.
//
//	loader [flags]                 serve (see loader --help)
//	loader dryrun [flags]          run the engine locally on files and print its outputs (see loader dryrun --help)
//	loader engine-worker [flags]   (internal) one worker process of isolation process
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/athenaserving/asf/libs/svcmain"
	"github.com/athenaserving/asf/services/loader"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "dryrun":
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			code := dryrun(ctx, os.Args[2:], os.Getenv, os.Stdout, os.Stderr)
			stop()
			os.Exit(code)
		case loader.EngineWorkerCommand:
			// The pool stops a worker by closing its socket; SIGINT from a terminal's process
			// group is left to the parent loader.
			signal.Ignore(os.Interrupt)
			os.Exit(loader.EngineWorkerMain(context.Background(), os.Args[2:], os.Getenv))
		}
	}
	svcmain.Main("loader", loader.DefaultConfig(), func(cfg loader.Config, log zerolog.Logger, reg *prometheus.Registry) (svcmain.Service, error) {
		return loader.New(cfg, log, reg)
	})
}
