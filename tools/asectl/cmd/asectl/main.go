// Command asectl is Athena Serving's command line: engine projects (new, dryrun, schema,
// pack, run), operations through polaris's admin API (svc, top, cfg, schema, app) and
// signed calls to the edge (call once|stream). See docs/asectl.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/athenaserving/asf/tools/asectl/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], cli.IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr, Getenv: os.Getenv})
	stop()
	os.Exit(code)
}
