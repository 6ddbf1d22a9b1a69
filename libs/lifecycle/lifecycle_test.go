package lifecycle

import (
	"context"
	"errors"
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestStackClosesLastFirstAndJoinsErrors(t *testing.T) {
	var s Stack
	var order []int
	e1, e3 := errors.New("one"), errors.New("three")
	s.Push(func() error { order = append(order, 1); return e1 })
	s.PushFunc(func() { order = append(order, 2) })
	s.Push(func() error { order = append(order, 3); return e3 })
	err := s.Close()
	require.Equal(t, []int{3, 2, 1}, order)
	require.ErrorIs(t, err, e1)
	require.ErrorIs(t, err, e3)
	require.NoError(t, s.Close(), "a closed stack is empty")
	require.Equal(t, []int{3, 2, 1}, order)
}

func TestCloseIfClosesOnlyOnError(t *testing.T) {
	closed := 0
	build := func(fail bool) (err error) {
		var s Stack
		defer s.CloseIf(&err)
		s.PushFunc(func() { closed++ })
		if fail {
			return errors.New("listen")
		}
		return nil
	}
	require.NoError(t, build(false))
	require.Equal(t, 0, closed)
	require.Error(t, build(true))
	require.Equal(t, 1, closed)
}

// stopper stands in for *grpc.Server: GracefulStop waits for running calls, which end on
// release or when Stop cancels them.
type stopper struct {
	release  chan struct{}
	stopped  chan struct{}
	hardStop bool
}

func newStopper() *stopper {
	return &stopper{release: make(chan struct{}), stopped: make(chan struct{})}
}

func (s *stopper) GracefulStop() {
	select {
	case <-s.release:
	case <-s.stopped:
	}
}

func (s *stopper) Stop() { s.hardStop = true; close(s.stopped) }

func TestStopWithinIsGracefulWhenCallsEndInTime(t *testing.T) {
	s := newStopper()
	StopWithin(context.Background(), s, func() { close(s.release) })
	require.False(t, s.hardStop)
}

func TestStopWithinStopsAtTheDeadline(t *testing.T) {
	s := newStopper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	StopWithin(ctx, s)
	require.True(t, s.hardStop)
}

func TestFirstSignalEndsContextSecondExits(t *testing.T) {
	sigs := make(chan os.Signal, 2)
	exited := make(chan int, 1)
	ctx, stop := WatchSignals(context.Background(), sigs, func(code int) { exited <- code })
	defer stop()
	require.NoError(t, ctx.Err())
	sigs <- syscall.SIGTERM
	<-ctx.Done()
	require.Empty(t, exited, "one signal asks for a graceful shutdown only")
	sigs <- os.Interrupt
	require.Equal(t, ExitCodeSecondSignal, <-exited)
}

func TestStopEndsTheWatcher(t *testing.T) {
	sigs := make(chan os.Signal, 2)
	exited := make(chan int, 1)
	ctx, stop := WatchSignals(context.Background(), sigs, func(code int) { exited <- code })
	stop()
	stop()
	<-ctx.Done()
	sigs <- syscall.SIGTERM
	sigs <- syscall.SIGTERM
	require.Len(t, sigs, 2, "no watcher reads them")
	require.Empty(t, exited)
}

func TestSignalContextStopReleasesTheSignals(t *testing.T) {
	exited := make(chan int, 1)
	ctx, stop := SignalContext(context.Background(), func(code int) { exited <- code })
	stop()
	stop()
	<-ctx.Done()
	require.Empty(t, exited)
}
