// Command asfchaos runs the chaos table (tools/chaos) against the built binaries: each
// fault on a fresh suite under steady once and stream load, the results written to
// <out>/<timestamp>/chaos.md. It exits 1 when a row misses its threshold. `make chaos`
// runs it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/athenaserving/asf/libs/buildinfo"
	"github.com/athenaserving/asf/tools/chaos"
)

func main() {
	if buildinfo.PrintIfAsked(os.Stdout, "asfchaos", os.Args[1:]) {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "asfchaos:", err)
		os.Exit(1)
	}
}

// errThreshold is returned when the run completed and a row missed its threshold.
var errThreshold = errors.New("a threshold failed: see the table")

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("asfchaos", flag.ContinueOnError)
	bin := fs.String("bin", "bin", "directory with the service binaries")
	out := fs.String("out", "bench/results", "results directory: the table goes to <out>/<timestamp>/chaos.md")
	only := fs.String("only", "", "run only the rows whose name contains this text (case-insensitive)")
	warm := fs.Duration("warm", 3*time.Second, "load before each fault")
	window := fs.Duration("window", 8*time.Second, "load after each fault (a freeze: at least its hold + 4 s)")
	once := fs.Int("once-workers", 4, "concurrent once request loops")
	streams := fs.Int("stream-workers", 3, "concurrent session loops")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	dir := filepath.Join(*out, time.Now().Format("20060102-150405"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	o := chaos.Options{BinDir: *bin, LogDir: dir, Warm: *warm, Window: *window, OnceWorkers: *once, StreamWorkers: *streams, Progress: stdout}
	var results []chaos.Result
	for _, f := range chaos.Faults() {
		if *only != "" && !strings.Contains(strings.ToLower(f.Name), strings.ToLower(*only)) {
			continue
		}
		r, err := chaos.RunFault(ctx, o, f)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			fmt.Fprintf(stdout, "   error: %v\n", err)
		}
		results = append(results, r)
		verdict := "PASS"
		if !r.Pass() {
			verdict = "FAIL " + strings.Join(r.Violations, "; ")
		}
		fmt.Fprintf(stdout, "   once %d/%d failed, sessions %d/%d failed, recovery %s: %s\n",
			r.Once.Failed, r.Once.Total, r.Stream.Failed, r.Stream.Total, r.Recovery.Round(10*time.Millisecond), verdict)
	}
	table := chaos.Markdown(results)
	doc := fmt.Sprintf("# Chaos run %s\n\nTwo echo loaders, two atoms, two lbclients, polaris with embedded NATS, webgate; "+
		"%d once loops and %d session loops (5 frames, 40 ms apart); %s of load before each fault and %s after it.\n"+
		"cut = failures of ops running at the fault; late = failures of ops started after it; "+
		"bad = sessions that ended without their results and without exactly one error frame; "+
		"recovery = fault → end of the last failed op; restart = time until the restarted process was ready.\n\n%s",
		time.Now().Format(time.RFC3339), *once, *streams, *warm, *window, table)
	path := filepath.Join(dir, "chaos.md")
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\n%s\nwritten to %s\n", table, path)
	for _, r := range results {
		if !r.Pass() {
			return errThreshold
		}
	}
	return nil
}
