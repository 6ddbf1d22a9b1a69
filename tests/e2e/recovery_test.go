package e2e

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/natsbus"
	"github.com/athenaserving/asf/services/atom"
	"github.com/athenaserving/asf/services/lbclient"
	"github.com/athenaserving/asf/tests/asetest"
	"github.com/athenaserving/asf/tests/suitetest"
	"github.com/rs/zerolog"
)

// recoveryBound is how soon after a restarted peer is ready the last failed request may
// have been seen: one reconnect back-off at most (grpcx.ReconnectMaxDelay, 1 s) plus half
// a second for connection set-up (TCP, mutual TLS) and scheduling on a loaded machine.
const recoveryBound = 1500 * time.Millisecond

// onceLoad sends once requests through webgate from a few workers until stopped, and
// records when each failure was seen.
type onceLoad struct {
	ok       atomic.Int64
	mu       sync.Mutex
	failures []time.Time
	lastErr  string
	stop     context.CancelFunc
	wg       sync.WaitGroup
}

func startOnceLoad(t *testing.T, c *asetest.Client, workers int) *onceLoad {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l := &onceLoad{stop: cancel}
	for range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for ctx.Err() == nil {
				rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
				r, err := c.Once(rctx, "echo", onceFrame("load"))
				rcancel()
				if ctx.Err() != nil {
					return
				}
				if err == nil && r.Header.Code == 0 {
					l.ok.Add(1)
					continue
				}
				l.mu.Lock()
				l.failures = append(l.failures, time.Now())
				if err != nil {
					l.lastErr = err.Error()
				} else {
					l.lastErr = string(r.Raw)
				}
				l.mu.Unlock()
				// Pace the failing requests of an outage (they fail fast).
				select {
				case <-ctx.Done():
				case <-time.After(10 * time.Millisecond):
				}
			}
		}()
	}
	t.Cleanup(l.close)
	return l
}

func (l *onceLoad) close() { l.stop(); l.wg.Wait() }

// failed is how many requests failed, and when the last one was seen.
func (l *onceLoad) failed() (int, time.Time, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failures) == 0 {
		return 0, time.Time{}, ""
	}
	return len(l.failures), l.failures[len(l.failures)-1], l.lastErr
}

// outage keeps a peer down for d while the load runs: long enough for grpc's default
// reconnect back-off (1 s × 1.6ⁿ, up to 120 s) to have grown past several seconds.
func outage(t *testing.T, l *onceLoad, d time.Duration) {
	t.Helper()
	start := time.Now()
	suitetest.WaitFor(t, d+5*time.Second, func() bool {
		n, _, _ := l.failed()
		return n > 0 && time.Since(start) >= d
	})
}

// settle lets the load run on for d after a restart, and at least until 50 more
// requests succeeded.
func settle(t *testing.T, l *onceLoad, d time.Duration) {
	t.Helper()
	start, ok := time.Now(), l.ok.Load()
	deadline := start.Add(d + 20*time.Second)
	for time.Since(start) < d || l.ok.Load() < ok+50 {
		if time.Now().After(deadline) {
			n, _, msg := l.failed()
			t.Fatalf("%d requests succeeded within %v of the restart (%d failures in all, last: %s)", l.ok.Load()-ok, d+20*time.Second, n, msg)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func stopNow(t *testing.T, shutdown func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // no grace: calls in flight are cut, as by a crash
	_ = shutdown(ctx)
}

func logger(t *testing.T, svc string) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel).With().Str("svc", svc).Logger()
}

// TestRecoveryWithinASecondOfRestart stops atom, then lbclient, for 5 s each under a
// steady once load through webgate and starts them again on the same address: requests
// fail only while the peer is away and succeed again within recoveryBound of it being
// ready (grpc's default back-off kept them failing for 12–19 s).
func TestRecoveryWithinASecondOfRestart(t *testing.T) {
	s := suitetest.Start(t, suitetest.Options{Loaders: 2})
	load := startOnceLoad(t, s.Client(), 4)
	suitetest.WaitFor(t, 10*time.Second, func() bool { return load.ok.Load() >= 50 })
	if n, _, msg := load.failed(); n > 0 {
		t.Fatalf("%d failures before any outage: %s", n, msg)
	}

	suiteT := t // the restarted services live as long as the suite, not the subtest
	t.Run("atom", func(t *testing.T) {
		old := s.Atoms[0]
		addr := old.GRPCAddr()
		stopNow(t, old.Shutdown)
		outage(t, load, 5*time.Second)
		ac := atom.DefaultConfig()
		ac.GRPCListen, ac.AdminListen, ac.LBAddr = addr, "127.0.0.1:0", s.LB.GRPCAddr()
		ac.Polaris, ac.DataDir, ac.TLS = s.Polaris.GRPCAddr(), t.TempDir(), s.TLS("atom")
		a, err := atom.New(ac, logger(suiteT, "atom-restarted"), nil)
		if err != nil {
			t.Fatalf("atom on %s again: %v", addr, err)
		}
		suiteT.Cleanup(func() { _ = a.Shutdown(context.Background()) })
		if err := a.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		ready := time.Now()
		settle(t, load, 3*time.Second)
		n, last, msg := load.failed()
		t.Logf("%d failed requests; last %v after atom was ready (%s)", n, last.Sub(ready), msg)
		if d := last.Sub(ready); d > recoveryBound {
			t.Fatalf("requests failed until %v after atom was ready, want ≤ %v: %s", d, recoveryBound, msg)
		}
	})

	t.Run("lbclient", func(t *testing.T) {
		addr := s.LB.GRPCAddr()
		stopNow(t, s.LB.Shutdown)
		outage(t, load, 5*time.Second)
		lc := lbclient.DefaultConfig()
		lc.GRPCListen, lc.AdminListen, lc.PolarisAddr = addr, "127.0.0.1:0", s.Polaris.GRPCAddr()
		lc.NATS.NKeySeedFile = filepath.Join(s.NATSDir, natsbus.UserLBClient+natsbus.SeedExt)
		lc.TLS = s.TLS("lbclient")
		lb, err := lbclient.New(lc, logger(suiteT, "lbclient-restarted"), nil)
		if err != nil {
			t.Fatalf("lbclient on %s again: %v", addr, err)
		}
		suiteT.Cleanup(func() { _ = lb.Shutdown(context.Background()) })
		if err := lb.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		suitetest.WaitFor(t, 10*time.Second, func() bool { return lb.Ready() && lb.Live("echo") == 2 })
		ready := time.Now()
		settle(t, load, 3*time.Second)
		n, last, msg := load.failed()
		t.Logf("%d failed requests in all; last %v after lbclient was ready (%s)", n, last.Sub(ready), msg)
		if d := last.Sub(ready); d > recoveryBound {
			t.Fatalf("requests failed until %v after lbclient was ready, want ≤ %v: %s", d, recoveryBound, msg)
		}
	})
}
