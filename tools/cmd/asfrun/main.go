// Command asfrun starts the whole suite locally from built binaries (see tools/suite),
// prints how to call it, and stops everything cleanly on Ctrl-C. `make run` uses it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/athenaserving/asf/tools/suite"
)

func main() {
	bin := flag.String("bin", "bin", "directory with the service binaries")
	loaders := flag.Int("loaders", 2, "echo loaders to start")
	licence := flag.Int("licence", 10, "licence (concurrent sessions) per loader")
	logDir := flag.String("logs", ".run/logs", "directory for the services' logs")
	free := flag.Bool("free-ports", false, "use free ports instead of the default ones")
	level := flag.String("log-level", "info", "log level of every service")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Println("starting polaris (with embedded NATS), lbclient, loaders, atom and webgate ...")
	s, err := suite.Start(ctx, suite.Options{BinDir: *bin, Loaders: *loaders, Engine: "echo", Licence: *licence,
		LogDir: *logDir, FixedPorts: !*free, LogLevel: *level})
	if err != nil {
		fmt.Fprintln(os.Stderr, "asfrun:", err)
		os.Exit(1)
	}
	printUsage(s, *bin)
	<-ctx.Done()
	fmt.Println("\nstopping ...")
	sctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := s.Stop(sctx); err != nil {
		fmt.Fprintln(os.Stderr, "asfrun:", err)
		os.Exit(1)
	}
	fmt.Println("stopped")
}

func printUsage(s *suite.Suite, bin string) {
	url := s.WebgateURL()
	fmt.Printf(`
Athena Serving is up.
  webgate  %s      (ASE over HTTP and WebSocket)
  atom     %s
  lbclient %s
  polaris  %s      (NATS %s)
  loaders  %v   (engine: echo)
  logs     %s

Once request (HTTP):
  curl -s -X POST %s/v1/private/echo -H 'Content-Type: application/json' \
    -d '{"header":{"app_id":"demo","status":3},"parameter":{"echo":{}},"payload":{"input":{"encoding":"utf8","status":3,"text":"aGVsbG8gYXRoZW5h"}}}'

Streaming session (WebSocket, three frames with status 0, 1, 2):
  %s/asfcall stream --url %s/v1/private/echo --frames 3 --text "hello athena"
  (any WebSocket client works: connect to ws://%s/v1/private/echo and send ASE frames)

Metrics: curl http://%s/metrics     Ctrl-C stops everything.
`, url, s.AtomAddr(), s.LBAddr(), s.PolarisAddr(), s.NATSURL(), s.LoaderAddrs(), s.LogDir(),
		url, bin, url, s.WebgateURL()[len("http://"):], s.AdminAddrs()["webgate"][0])
}
