package lifecycle

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// ExitCodeSecondSignal is the exit code after a second signal cut the shutdown short.
const ExitCodeSecondSignal = 1

// SignalContext returns a context that ends at the first SIGINT or SIGTERM. A second one
// does not wait for the shutdown the first started: it calls exit(ExitCodeSecondSignal) at
// once (os.Exit when exit is nil), as consul does. stop releases the signals.
func SignalContext(parent context.Context, exit func(int)) (ctx context.Context, stop func()) {
	if exit == nil {
		exit = os.Exit
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	ctx, unwatch := WatchSignals(parent, sigs, exit)
	return ctx, func() {
		signal.Stop(sigs)
		unwatch()
	}
}

// WatchSignals is SignalContext over a channel of signals: the first ends ctx, the second
// calls exit. stop ends ctx and the goroutine that watches.
func WatchSignals(parent context.Context, sigs <-chan os.Signal, exit func(int)) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancel(parent)
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-sigs:
			cancel()
		case <-quit:
			return
		}
		select {
		case <-sigs:
			exit(ExitCodeSecondSignal)
		case <-quit:
		}
	}()
	var once sync.Once
	return ctx, func() {
		once.Do(func() {
			close(quit)
			<-done
		})
		cancel()
	}
}
