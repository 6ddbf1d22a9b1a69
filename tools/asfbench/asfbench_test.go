package asfbench

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/url"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestHistogramBucketsHoldTheirValues(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		v := rng.Uint64N(1 << 31)
		lo, hi := bucketBounds(bucketOf(v))
		require.LessOrEqual(t, lo, v)
		require.GreaterOrEqual(t, hi, v)
		if v >= subCount {
			// relative width of the bucket is below 1/128
			require.Less(t, float64(hi-lo)/float64(lo), 1.0/subCount)
		}
	}
	for v := uint64(0); v < subCount; v++ {
		lo, hi := bucketBounds(bucketOf(v))
		require.Equal(t, v, lo)
		require.Equal(t, v, hi)
	}
}

// exactQuantile is the nearest-rank quantile of sorted values.
func exactQuantile(sorted []uint64, q float64) uint64 {
	rank := int(float64(len(sorted))*q + 0.999999999)
	rank = max(rank, 1)
	return sorted[rank-1]
}

func TestHistogramQuantilesMatchNearestRank(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var h Histogram
	vals := make([]uint64, 0, 50000)
	for range 50000 {
		// log-uniform between 10 µs and 1 s: the shape of latencies
		v := uint64(10 * mathPow(1e5, rng.Float64()))
		vals = append(vals, v)
		h.Record(time.Duration(v) * time.Microsecond)
	}
	sort.Slice(vals, func(i, j int) bool { return vals[i] < vals[j] })
	for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 0.999} {
		want := float64(exactQuantile(vals, q))
		got := float64(h.Quantile(q) / time.Microsecond)
		assert.InEpsilon(t, want, got, 0.01, "q=%v", q)
	}
	assert.Equal(t, time.Duration(vals[0])*time.Microsecond, h.Min())
	assert.Equal(t, time.Duration(vals[len(vals)-1])*time.Microsecond, h.Max())
	assert.Equal(t, uint64(50000), h.Count())
}

func TestHistogramSmallExactAndMerge(t *testing.T) {
	var a, b Histogram
	for i := 1; i <= 50; i++ {
		a.Record(time.Duration(i) * time.Microsecond)
	}
	for i := 51; i <= 100; i++ {
		b.Record(time.Duration(i) * time.Microsecond)
	}
	a.Merge(&b)
	assert.Equal(t, 50*time.Microsecond, a.Quantile(0.5))
	assert.Equal(t, 90*time.Microsecond, a.Quantile(0.9))
	assert.Equal(t, 99*time.Microsecond, a.Quantile(0.99))
	assert.Equal(t, 100*time.Microsecond, a.Quantile(1))
	assert.Equal(t, time.Microsecond, a.Quantile(0))
	assert.Equal(t, 50*time.Microsecond, a.Mean()) // (1+…+100)/100 = 50.5 → 50 µs
	var empty Histogram
	assert.Zero(t, empty.Quantile(0.99))
	a.Reset()
	assert.Zero(t, a.Count())
}

func TestStabilityRule(t *testing.T) {
	r := StabilityRule{Windows: 3, Tolerance: 0.10}
	assert.True(t, r.Stable([]float64{50, 100, 95, 91})) // last three within 10 %
	assert.False(t, r.Stable([]float64{100, 100, 89}))   // 11 % spread
	assert.False(t, r.Stable([]float64{100, 100}))       // too few windows
	assert.True(t, r.Stable([]float64{1, 100, 100, 100}, []float64{5, 5, 5}))
	assert.False(t, r.Stable([]float64{100, 100, 100}, []float64{5, 5, 9})) // every series must pass
	assert.True(t, r.Stable([]float64{0, 0, 0}))
	assert.False(t, r.Stable([]float64{0, 0, 1}))
}

// fakeClock is a single-goroutine virtual clock: sleeping jumps the time forward.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}
func (c *fakeClock) SleepUntil(ctx context.Context, t time.Time) error {
	c.mu.Lock()
	if t.After(c.now) {
		c.now = t
	}
	c.mu.Unlock()
	return ctx.Err()
}

// slowDoer takes service time on the fake clock and cancels the run after n calls.
type slowDoer struct {
	clk     *fakeClock
	service time.Duration
	n       int
	calls   int
	cancel  context.CancelFunc
}

func (d *slowDoer) Do(context.Context) (Timing, error) {
	d.calls++
	if d.calls > d.n {
		d.cancel()
		return Timing{}, nil
	}
	d.clk.advance(d.service)
	return Timing{}, nil
}
func (d *slowDoer) Close() error { return nil }

func runFake(t *testing.T, mk func(start time.Time) schedule) []time.Duration {
	t.Helper()
	clk := &fakeClock{now: time.Unix(1000, 0)}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	d := &slowDoer{clk: clk, service: 10 * time.Millisecond, n: 5, cancel: cancel}
	var lats []time.Duration
	runWorker(ctx, clk, d, mk(clk.Now()), func(l time.Duration, _ Timing, err error) {
		require.NoError(t, err)
		lats = append(lats, l)
	})
	return lats
}

func TestOpenLoopCountsQueueingFromIntendedTime(t *testing.T) {
	// Arrivals every 5 ms, service 10 ms, one in flight: request i is due at 5i ms but starts at
	// 10i ms and ends at 10(i+1) ms, so its latency is 5i+10 ms. A closed loop would report 10 ms.
	lats := runFake(t, func(start time.Time) schedule {
		return &openArrivals{start: start, interval: 5 * time.Millisecond}
	})
	ms := time.Millisecond
	assert.Equal(t, []time.Duration{10 * ms, 15 * ms, 20 * ms, 25 * ms, 30 * ms}, lats)

	closed := runFake(t, func(time.Time) schedule { return unpaced{} })
	assert.Equal(t, []time.Duration{10 * ms, 10 * ms, 10 * ms, 10 * ms, 10 * ms}, closed)

	// A pace slower than the service time adds no latency.
	paced := runFake(t, func(start time.Time) schedule { return &perWorkerPace{start: start, pace: 40 * ms} })
	assert.Equal(t, []time.Duration{10 * ms, 10 * ms, 10 * ms, 10 * ms, 10 * ms}, paced)
}

type funcTarget func(ctx context.Context) (Timing, error)

type funcDoer funcTarget

func (f funcDoer) Do(ctx context.Context) (Timing, error) { return f(ctx) }
func (funcDoer) Close() error                             { return nil }
func (f funcTarget) NewDoer(context.Context, int) (Doer, error) {
	return funcDoer(f), nil
}

type kindErr string

func (k kindErr) Error() string { return string(k) }
func (k kindErr) Kind() string  { return string(k) }

func TestRunMeasuresWindowsAndErrors(t *testing.T) {
	var mu sync.Mutex
	n := 0
	target := funcTarget(func(ctx context.Context) (Timing, error) {
		mu.Lock()
		n++
		fail := n%10 == 0
		mu.Unlock()
		if fail {
			return Timing{}, kindErr("code 10110")
		}
		return Timing{Webgate: 100 * time.Microsecond, Engine: 10 * time.Microsecond, Present: true}, nil
	})
	var seen int
	measured := 0
	r := Runner{OnWindow: func(int, *Window) { seen++ }, OnMeasure: func() { measured++ }}
	res, err := r.Run(t.Context(), target, Load{Concurrency: 2, Pace: time.Millisecond}, Plan{
		Warmup: 20 * time.Millisecond, Window: 50 * time.Millisecond, MinWindows: 2, MaxWindows: 3,
		Rule: StabilityRule{Windows: 2, Tolerance: 1},
	})
	require.NoError(t, err)
	assert.True(t, res.Stable)
	assert.Equal(t, 2, len(res.Windows))
	assert.Equal(t, 2, seen)
	assert.Equal(t, 1, measured)
	s := res.Summary
	assert.Greater(t, s.Requests, uint64(20))
	assert.Greater(t, s.Errors, uint64(0))
	assert.Equal(t, s.Errors, s.ErrorKinds["code 10110"])
	assert.True(t, s.HasTiming)
	assert.Equal(t, 100*time.Microsecond, s.Timing.Webgate)
	assert.Equal(t, 10*time.Microsecond, s.Timing.Engine)
	// 2 workers × 1 per ms ≈ 2000/s; allow a slow machine.
	assert.Greater(t, s.Throughput, 300.0)
	assert.Less(t, s.Throughput, 2500.0)
}

func TestRunOpenLoopRate(t *testing.T) {
	target := funcTarget(func(ctx context.Context) (Timing, error) { return Timing{}, nil })
	res, err := (&Runner{}).Run(t.Context(), target, Load{Concurrency: 4, Rate: 1000}, Plan{
		Window: 400 * time.Millisecond, MinWindows: 1, MaxWindows: 1, Rule: StabilityRule{Windows: 1, Tolerance: 1},
	})
	require.NoError(t, err)
	// A window of 400 arrivals: scheduling stalls on a loaded machine move it little.
	assert.InDelta(t, 1000, res.Summary.Throughput, 300)
}

func TestRunReportsDoerError(t *testing.T) {
	_, err := (&Runner{}).Run(t.Context(), badTarget{}, Load{Concurrency: 3}, Plan{
		Warmup: time.Second, Window: time.Second, MinWindows: 1, MaxWindows: 1,
	})
	require.ErrorContains(t, err, "dial refused")
	_, err = (&Runner{}).Run(t.Context(), badTarget{}, Load{}, Plan{Window: time.Second, MinWindows: 1, MaxWindows: 1})
	require.Error(t, err)
}

type badTarget struct{}

func (badTarget) NewDoer(context.Context, int) (Doer, error) { return nil, errors.New("dial refused") }

func TestSignURLKnownVector(t *testing.T) {
	// Expected signature computed outside Go:
	//   printf 'host: 127.0.0.1:8889\ndate: Wed, 10 Jul 2019 07:35:43 GMT\nPOST /v1/private/echo HTTP/1.1' |
	//     openssl dgst -sha256 -hmac bench-secret -binary | base64
	const wantSig = "PVVhoHMwonEGo+0qOt04ZjnDb9tHdgcXm2dXm8RVu2E="
	now := time.Date(2019, 7, 10, 7, 35, 43, 0, time.UTC)
	signed, err := SignURL("http://127.0.0.1:8889/v1/private/echo", "POST",
		Credentials{APIKey: "bench-key", APISecret: "bench-secret"}, now)
	require.NoError(t, err)
	u, err := url.Parse(signed)
	require.NoError(t, err)
	q := u.Query()
	assert.Equal(t, "Wed, 10 Jul 2019 07:35:43 GMT", q.Get("date"))
	assert.Equal(t, "127.0.0.1:8889", q.Get("host"))
	auth, err := base64Decode(q.Get("authorization"))
	require.NoError(t, err)
	assert.Equal(t, `api_key="bench-key", algorithm="hmac-sha256", headers="host date request-line", signature="`+wantSig+`"`, auth)
	assert.Equal(t, "/v1/private/echo", u.Path)
}

func TestParseTiming(t *testing.T) {
	tm, err := ParseTiming("webgate=120;atom=80; loader=40;engine=12;future=9")
	require.NoError(t, err)
	us := time.Microsecond
	assert.Equal(t, Timing{Webgate: 120 * us, Atom: 80 * us, Loader: 40 * us, Engine: 12 * us, Present: true}, tm)
	tm, err = ParseTiming("")
	require.NoError(t, err)
	assert.False(t, tm.Present)
	for _, bad := range []string{"webgate", "webgate=x", "webgate=-1", "other=1", "engine=99999999999999"} {
		_, err := ParseTiming(bad)
		assert.Error(t, err, bad)
	}
}

func FuzzParseTiming(f *testing.F) {
	f.Add("webgate=120;atom=80;loader=40;engine=12")
	f.Add(";;engine=1;")
	f.Add("atom==3")
	f.Fuzz(func(t *testing.T, s string) {
		tm, err := ParseTiming(s)
		if err != nil {
			return
		}
		if tm.Webgate < 0 || tm.Atom < 0 || tm.Loader < 0 || tm.Engine < 0 {
			t.Fatalf("negative timing from %q", s)
		}
	})
}
