// Command loader runs one loader: it hosts an engine, serves asf.loader.v1.Loader and
// registers with polaris. Configuration: defaults → aiges.toml (-c) → --config YAML →
// ASF_LOADER_* → flags.
//
//	loader [flags]                 serve (see loader --help)
//	loader -c aiges.toml -s svc    serve an AIGES configuration, as AIservice -m 0 -c aiges.toml -s svc
//	loader dryrun [flags]          run the engine locally on files and print its outputs (see loader dryrun --help)
//	loader engine-worker [flags]   (internal) one worker process of isolation process
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/athenaserving/asf/libs/lifecycle"
	"github.com/athenaserving/asf/services/loader"
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
	// The first SIGINT/SIGTERM starts the bounded shutdown; a second exits at once.
	ctx, stop := lifecycle.SignalContext(context.Background(), nil)
	wd, _ := os.Getwd()
	code := serve(ctx, os.Args[1:], os.Getenv, wd, os.Stderr)
	stop()
	os.Exit(code)
}
