package source

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	polarispb "github.com/athenaserving/asf/libs/proto/polaris/v1"
	"github.com/athenaserving/asf/libs/testpoll"
	"github.com/athenaserving/asf/services/lbclient/balance"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
)

var c0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestCutoffNeedsFailedPolarisAndSilence(t *testing.T) {
	c := newCutoff(time.Second, 100*time.Millisecond, 400*time.Millisecond, time.Second, c0)
	// Healthy and connected: nothing to probe until the bus is quiet for 1 s.
	require.False(t, c.probeDue(c0.Add(time.Second), true))
	require.True(t, c.probeDue(c0.Add(time.Second+time.Millisecond), true))
	require.False(t, c.cut(c0.Add(5*time.Second), true), "quiet but polaris answered last")

	// A successful probe counts as an event.
	now := c0.Add(2 * time.Second)
	c.polaris(true, now)
	require.False(t, c.probeDue(now.Add(time.Second), true))
	require.False(t, c.cut(now.Add(10*time.Second), true))

	// Polaris fails while events still flow: not cut off.
	now = now.Add(100 * time.Millisecond)
	c.polaris(false, now)
	c.event(now)
	require.False(t, c.cut(now.Add(500*time.Millisecond), true))
	// ... cut off once the bus is quiet too, or at once when it is disconnected.
	require.True(t, c.cut(now.Add(time.Second+time.Millisecond), true))
	require.True(t, c.cut(now.Add(time.Millisecond), false))

	// Failed probes back off 200 (second failure), 400, 400 ms.
	at := now
	for _, d := range []time.Duration{200, 400, 400} {
		c.polaris(false, at)
		require.False(t, c.probeDue(at.Add(d*time.Millisecond-time.Millisecond), false))
		require.True(t, c.probeDue(at.Add(d*time.Millisecond), false))
		at = at.Add(d * time.Millisecond)
	}
	// An event alone ends the cut-off (a registry publishing again).
	c.event(at)
	require.False(t, c.cut(at, true))
	require.True(t, c.cut(at, false), "disconnected and polaris failing")
	// A successful call ends it for good; while disconnected polaris is polled every 1 s.
	c.polaris(true, at)
	require.False(t, c.cut(at, false))
	require.False(t, c.probeDue(at.Add(999*time.Millisecond), false))
	require.True(t, c.probeDue(at.Add(time.Second), false))
}

func TestCheckCutoffFreezesAndThawsWithInjectedClock(t *testing.T) {
	view := balance.MustNewView(balance.Options{StaleAfter: 3 * time.Second})
	reg := prometheus.NewRegistry()
	now := c0
	clock := func() time.Time { return now }
	src, err := New(Config{PolarisAddr: "127.0.0.1:1", Now: clock}, view, zerolog.Nop(), reg)
	require.NoError(t, err)
	defer src.Close()
	require.Equal(t, time.Second, src.cfg.QuietAfter)
	require.Equal(t, 250*time.Millisecond, src.cfg.CheckEvery)
	require.Equal(t, 750*time.Millisecond, src.cfg.ProbeTimeout)

	view.Apply([]balance.Instance{{Service: "echo", Addr: "a:1", Load: balance.Load{Total: 1, Idle: 1, Live: 1}, Seq: 1}}, now)
	src.cut = newCutoff(src.cfg.QuietAfter, src.cfg.RetryMin, 3*time.Second, time.Second, now)
	src.connected.Store(true)

	now = now.Add(1500 * time.Millisecond)
	src.cut.polaris(false, now)
	src.checkCutoff(now)
	require.True(t, src.Frozen())
	require.Equal(t, 1.0, testutil.ToFloat64(src.frozen))
	in := src.Info()
	require.True(t, in.Frozen)
	require.Equal(t, now, *in.FrozenSince)

	now = now.Add(time.Minute)
	require.Equal(t, 1, view.Live("echo", now))
	src.checkCutoff(now)
	require.True(t, src.Frozen(), "still cut off")

	src.cut.polaris(true, now)
	src.checkCutoff(now)
	require.False(t, src.Frozen())
	require.Equal(t, 0.0, testutil.ToFloat64(src.frozen))
	require.Nil(t, src.Info().FrozenSince)
	require.Equal(t, 1, view.Live("echo", now.Add(3*time.Second)))
	require.Equal(t, 0, view.Live("echo", now.Add(3*time.Second+time.Millisecond)), "eviction resumes from the thaw")
}

// heartbeatPolaris is a fake polaris whose List shows every loader with a new seq, as if
// each heartbeated since the last call.
type heartbeatPolaris struct {
	fakePolaris
	seq uint64
}

func (h *heartbeatPolaris) List(ctx context.Context, req *polarispb.ListRequest) (*polarispb.ListResponse, error) {
	h.mu.Lock()
	h.seq++
	for _, st := range h.instances {
		st.Seq = h.seq
	}
	h.mu.Unlock()
	return h.fakePolaris.List(ctx, req)
}

// serveStoppable serves f on addr and returns a stop function.
func serveStoppable(t *testing.T, addr string, f polarispb.RegistryServer) (string, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	gs := grpc.NewServer()
	polarispb.RegisterRegistryServer(gs, f)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = gs.Serve(ln)
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			gs.Stop()
			<-done
		})
	}
	t.Cleanup(stop)
	return ln.Addr().String(), stop
}

func TestSourceFreezesWhilePolarisAndNATSAreDown(t *testing.T) {
	emb := startNATS(t, "127.0.0.1:0")
	natsURL := emb.ClientURL()
	f := &heartbeatPolaris{fakePolaris: fakePolaris{natsURL: natsURL}}
	f.set(state("echo", "a:1", 4, 1), state("echo", "b:1", 4, 1))
	addr, stopPolaris := serveStoppable(t, "127.0.0.1:0", f)

	const stale = 300 * time.Millisecond
	view := balance.MustNewView(balance.Options{StaleAfter: stale})
	reg := prometheus.NewRegistry()
	src, err := New(Config{PolarisAddr: addr, RetryMin: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond, CallTimeout: time.Second}, view, zerolog.Nop(), reg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = src.Run(ctx)
	}()
	defer func() {
		cancel()
		<-done
		_ = src.Close()
	}()
	testpoll.Until(t, 5*time.Second, "ready", src.Ready)

	// Healthy but quiet bus: polaris probes keep both loaders in rotation.
	start := time.Now()
	for time.Since(start) < 3*stale {
		require.Equal(t, 2, view.Live("echo", time.Now()))
		require.False(t, src.Frozen())
		time.Sleep(10 * time.Millisecond) // sampling interval
	}

	// Polaris and its NATS go away: the view freezes, nobody goes stale.
	stopPolaris()
	emb.Shutdown()
	testpoll.Until(t, 5*time.Second, "frozen", src.Frozen)
	require.Equal(t, 1.0, testutil.ToFloat64(src.frozen))
	start = time.Now()
	for time.Since(start) < 4*stale {
		require.Equal(t, 2, view.Live("echo", time.Now()))
		time.Sleep(10 * time.Millisecond) // sampling interval
	}

	// Back on the same addresses: the snapshot reloads and the view thaws.
	emb = startNATS(t, natsURL[len("nats://"):])
	defer emb.Shutdown()
	_, _ = serveStoppable(t, addr, f)
	testpoll.Until(t, 10*time.Second, "thawed", func() bool { return !src.Frozen() })
	require.Equal(t, 0.0, testutil.ToFloat64(src.frozen))
	require.Equal(t, 2, view.Live("echo", time.Now()))
	testpoll.Until(t, 10*time.Second, "nats reconnected", src.Connected)
}
