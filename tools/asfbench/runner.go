package asfbench

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Doer sends one request (or one stream frame) and waits for its result. A Doer is used by one
// worker goroutine at a time and repairs itself after errors (reconnects on the next Do).
type Doer interface {
	// Do returns the server-reported latency split, if any.
	Do(ctx context.Context) (Timing, error)
	// Close releases the Doer's connections.
	Close() error
}

// Target makes one Doer per worker.
type Target interface {
	NewDoer(ctx context.Context, worker int) (Doer, error)
}

// Load says how requests are offered.
type Load struct {
	// Concurrency is the number of workers (closed loop) or the most requests in flight (open loop).
	Concurrency int
	// Pace, when set in closed loop, makes each worker send one request every Pace (for example a
	// 40 ms audio frame); latency is then measured from the intended send time.
	Pace time.Duration
	// Rate, when > 0, selects open loop: requests are scheduled at Rate per second whatever the
	// responses do, and latency is measured from each request's intended send time, so queueing
	// behind a slow server is counted (no coordinated omission).
	Rate float64
}

// String names the load for reports.
func (l Load) String() string {
	switch {
	case l.Rate > 0:
		return fmt.Sprintf("open %.0f/s (≤%d in flight)", l.Rate, l.Concurrency)
	case l.Pace > 0:
		return fmt.Sprintf("%d × every %v", l.Concurrency, l.Pace)
	default:
		return fmt.Sprintf("closed c=%d", l.Concurrency)
	}
}

// Plan is the measurement schedule.
type Plan struct {
	// Warmup runs before measuring; its samples are dropped.
	Warmup time.Duration
	// Window is the length of one measurement window.
	Window time.Duration
	// MinWindows and MaxWindows bound the number of windows; the run stops at the first window
	// count ≥ MinWindows at which Rule holds, or at MaxWindows.
	MinWindows, MaxWindows int
	// Rule is the stability rule.
	Rule StabilityRule
}

// Validate checks the plan and the load.
func (p Plan) validate(l Load) error {
	switch {
	case p.Window <= 0:
		return errors.New("plan: window must be > 0")
	case p.MaxWindows < 1 || p.MinWindows > p.MaxWindows:
		return errors.New("plan: need 1 ≤ MinWindows ≤ MaxWindows")
	case l.Concurrency < 1:
		return errors.New("load: concurrency must be ≥ 1")
	}
	return nil
}

// Window is the outcome of one measurement window.
type Window struct {
	Duration time.Duration
	OK       uint64
	Errors   uint64
	Hist     *Histogram
	// ErrorKinds counts errors by kind (at most maxErrorKinds kinds, then "other").
	ErrorKinds map[string]uint64
	// TimingSum adds up the server-reported split of the OK samples that carried one.
	TimingSum Timing
	TimingN   uint64
}

// Throughput returns successful requests per second.
func (w *Window) Throughput() float64 {
	if w.Duration <= 0 {
		return 0
	}
	return float64(w.OK) / w.Duration.Seconds()
}

// merge adds o into w.
func (w *Window) merge(o *Window) {
	w.Duration += o.Duration
	w.OK += o.OK
	w.Errors += o.Errors
	if w.Hist == nil {
		w.Hist = &Histogram{}
	}
	if o.Hist != nil {
		w.Hist.Merge(o.Hist)
	}
	for k, v := range o.ErrorKinds {
		if w.ErrorKinds == nil {
			w.ErrorKinds = map[string]uint64{}
		}
		w.ErrorKinds[k] += v
	}
	w.TimingSum = w.TimingSum.add(o.TimingSum)
	w.TimingN += o.TimingN
}

// Summary is the result over the windows that decided the run (the trailing Rule.Windows).
type Summary struct {
	Requests   uint64
	Errors     uint64
	Throughput float64
	Mean       time.Duration
	P50        time.Duration
	P90        time.Duration
	P99        time.Duration
	Max        time.Duration
	ErrorKinds map[string]uint64
	// Timing is the mean server-reported split (zero when the server reports none).
	Timing    Timing
	HasTiming bool
}

// Result is a whole run.
type Result struct {
	Load    Load
	Windows []Window
	Stable  bool
	Summary Summary
	// Elapsed is the wall time of the measured part (windows only).
	Elapsed time.Duration
}

// ErrorKind lets an error name its kind for the error table (for example "code 10110").
type ErrorKind interface{ Kind() string }

const maxErrorKinds = 16

// shard is one slice of the recorder; workers are spread over shards to keep lock contention low.
type shard struct {
	mu  sync.Mutex
	cur Window
	_   [64]byte // keep shards on separate cache lines
}

// recorder collects samples into the current window.
type recorder struct {
	shards []shard
}

func newRecorder() *recorder {
	r := &recorder{shards: make([]shard, runtime.GOMAXPROCS(0)*4)}
	for i := range r.shards {
		r.shards[i].cur.Hist = &Histogram{}
	}
	return r
}

func (r *recorder) record(worker int, lat time.Duration, t Timing, err error) {
	s := &r.shards[worker%len(r.shards)]
	s.mu.Lock()
	w := &s.cur
	if err != nil {
		w.Errors++
		k := "error"
		var ek ErrorKind
		if errors.As(err, &ek) {
			k = ek.Kind()
		}
		if w.ErrorKinds == nil {
			w.ErrorKinds = map[string]uint64{}
		}
		if _, ok := w.ErrorKinds[k]; !ok && len(w.ErrorKinds) >= maxErrorKinds {
			k = "other"
		}
		w.ErrorKinds[k]++
	} else {
		w.OK++
		w.Hist.Record(lat)
		if t.Present {
			w.TimingSum = w.TimingSum.add(t)
			w.TimingN++
		}
	}
	s.mu.Unlock()
}

// swap ends the current window: it returns everything recorded since the last swap.
func (r *recorder) swap(d time.Duration) Window {
	out := Window{Duration: d, Hist: &Histogram{}}
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		out.merge(&s.cur)
		s.cur.OK, s.cur.Errors, s.cur.TimingN = 0, 0, 0
		s.cur.TimingSum = Timing{}
		s.cur.ErrorKinds = nil
		s.cur.Hist.Reset()
		s.mu.Unlock()
	}
	out.Duration = d
	return out
}

// schedule yields intended send times for one worker. paced=false means "send now".
type schedule interface {
	next() (intended time.Time, paced bool)
}

// unpaced is a closed loop without pacing: send as soon as the previous response arrived.
type unpaced struct{}

func (unpaced) next() (time.Time, bool) { return time.Time{}, false }

// perWorkerPace sends one request every pace, starting at start (a per-worker open loop).
type perWorkerPace struct {
	start time.Time
	pace  time.Duration
	k     int64
}

func (p *perWorkerPace) next() (time.Time, bool) {
	t := p.start.Add(time.Duration(p.k) * p.pace)
	p.k++
	return t, true
}

// openArrivals is the shared arrival schedule of an open loop: request i is due at start+i/rate.
type openArrivals struct {
	start    time.Time
	interval time.Duration
	i        atomic.Int64
}

func (o *openArrivals) next() (time.Time, bool) {
	i := o.i.Add(1) - 1
	return o.start.Add(time.Duration(i) * o.interval), true
}

// Runner drives a Target under a Load and a Plan.
type Runner struct {
	// Clock defaults to SystemClock.
	Clock Clock
	// OnWindow, when set, is called after each measurement window (for progress output).
	OnWindow func(i int, w *Window)
	// OnMeasure, when set, is called once the warm-up ends and measuring starts (for example to
	// read the servers' CPU counters).
	OnMeasure func()
}

// Run warms up, measures windows until the stability rule holds or MaxWindows, then stops every
// worker and closes every Doer before returning.
func (r *Runner) Run(ctx context.Context, target Target, load Load, plan Plan) (Result, error) {
	if err := plan.validate(load); err != nil {
		return Result{}, err
	}
	clk := r.Clock
	if clk == nil {
		clk = SystemClock{}
	}
	rec := newRecorder()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()

	start := clk.Now()
	var open *openArrivals
	if load.Rate > 0 {
		open = &openArrivals{start: start, interval: time.Duration(float64(time.Second) / load.Rate)}
	}
	var wg sync.WaitGroup
	errCh := make(chan error, 1)
	for i := 0; i < load.Concurrency; i++ {
		var s schedule = unpaced{}
		switch {
		case open != nil:
			s = open
		case load.Pace > 0:
			// Spread the workers' first sends over one pace so they do not all fire together.
			off := time.Duration(int64(load.Pace) * int64(i) / int64(load.Concurrency))
			s = &perWorkerPace{start: start.Add(off), pace: load.Pace}
		}
		wg.Add(1)
		go func(id int, s schedule) {
			defer wg.Done()
			d, err := target.NewDoer(wctx, id)
			if err != nil {
				select {
				case errCh <- fmt.Errorf("worker %d: %w", id, err):
				default:
				}
				cancel()
				return
			}
			defer d.Close()
			runWorker(wctx, clk, d, s, func(lat time.Duration, t Timing, err error) {
				rec.record(id, lat, t, err)
			})
		}(i, s)
	}
	defer wg.Wait()

	res := Result{Load: load}
	if err := clk.SleepUntil(wctx, start.Add(plan.Warmup)); err != nil {
		return res, firstErr(errCh, err)
	}
	prev := clk.Now()
	rec.swap(0) // drop the warm-up
	if r.OnMeasure != nil {
		r.OnMeasure()
	}
	measureStart := prev
	var tputs, p50s []float64
	for n := 1; n <= plan.MaxWindows; n++ {
		if err := clk.SleepUntil(wctx, prev.Add(plan.Window)); err != nil {
			return res, firstErr(errCh, err)
		}
		now := clk.Now()
		w := rec.swap(now.Sub(prev))
		prev = now
		res.Windows = append(res.Windows, w)
		if r.OnWindow != nil {
			r.OnWindow(n, &res.Windows[len(res.Windows)-1])
		}
		tputs = append(tputs, w.Throughput())
		p50s = append(p50s, float64(w.Hist.Quantile(0.5)))
		if n >= plan.MinWindows && plan.Rule.Stable(tputs, p50s) {
			res.Stable = true
			break
		}
	}
	res.Elapsed = prev.Sub(measureStart)
	cancel()
	wg.Wait()
	k := max(plan.Rule.Windows, 1)
	res.Summary = summarise(res.Windows[max(len(res.Windows)-k, 0):])
	return res, nil
}

func firstErr(ch chan error, fallback error) error {
	select {
	case err := <-ch:
		return err
	default:
		return fallback
	}
}

// runWorker is one worker's loop: wait for the intended send time (if paced), send, record the
// latency from the intended time. Requests cut short by the end of the run are not recorded.
func runWorker(ctx context.Context, clk Clock, d Doer, s schedule, record func(time.Duration, Timing, error)) {
	for ctx.Err() == nil {
		intended, paced := s.next()
		if paced {
			if err := clk.SleepUntil(ctx, intended); err != nil {
				return
			}
		} else {
			intended = clk.Now()
		}
		t, err := d.Do(ctx)
		done := clk.Now()
		if ctx.Err() != nil {
			return
		}
		record(done.Sub(intended), t, err)
	}
}

// summarise merges windows into a Summary.
func summarise(ws []Window) Summary {
	var all Window
	all.Hist = &Histogram{}
	for i := range ws {
		all.merge(&ws[i])
	}
	s := Summary{
		Requests:   all.OK + all.Errors,
		Errors:     all.Errors,
		Throughput: all.Throughput(),
		Mean:       all.Hist.Mean(),
		P50:        all.Hist.Quantile(0.50),
		P90:        all.Hist.Quantile(0.90),
		P99:        all.Hist.Quantile(0.99),
		Max:        all.Hist.Max(),
		ErrorKinds: all.ErrorKinds,
	}
	if all.TimingN > 0 {
		s.HasTiming = true
		s.Timing = all.TimingSum.div(all.TimingN)
	}
	return s
}

// TopErrors lists error kinds by count, largest first, as "kind×n".
func (s Summary) TopErrors(n int) []string {
	type kv struct {
		k string
		v uint64
	}
	var kvs []kv
	for k, v := range s.ErrorKinds {
		kvs = append(kvs, kv{k, v})
	}
	sort.Slice(kvs, func(i, j int) bool { return kvs[i].v > kvs[j].v || kvs[i].v == kvs[j].v && kvs[i].k < kvs[j].k })
	var out []string
	for i := 0; i < len(kvs) && i < n; i++ {
		out = append(out, fmt.Sprintf("%s×%d", kvs[i].k, kvs[i].v))
	}
	return out
}
