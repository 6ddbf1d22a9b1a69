// Package source keeps a balance.View in step with polaris: a Registry.List snapshot at
// start and after every NATS reconnect, and the registry and load events published on
// NATS in between. It is lbclient's only transport towards the control plane.
//
// When the source is cut off from the registry — the latest polaris call failed and the
// NATS connection is down or no event arrived for QuietAfter — it freezes the view:
// loaders stop going stale, so routing goes on over the last known loads instead of
// every loader leaving rotation. A snapshot loaded again (or events flowing again) thaws
// it.
//
//	src, err := source.New(source.Config{PolarisAddr: "127.0.0.1:6868"}, view, log, reg)
//	if err != nil { return err }
//	go src.Run(ctx)      // retries polaris and NATS until ctx ends
//	... src.Ready()      // true once the first snapshot is applied with NATS subscribed
package source

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/athenaserving/asf/libs/grpcx"
	"github.com/athenaserving/asf/libs/natsbus"
	polarispb "github.com/athenaserving/asf/libs/proto/polaris/v1"
	"github.com/athenaserving/asf/services/lbclient/balance"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
)

// eventBuffer is how many NATS messages may wait for the event loop. Both
// subscriptions share one channel so events are applied in the order polaris sent them.
const eventBuffer = 8192

// Config configures a Source.
type Config struct {
	// PolarisAddr is polaris's gRPC address.
	PolarisAddr string
	// NATSURL overrides the NATS URL that polaris announces in Registry.Info.
	NATSURL string
	// NATSOptions are added to the NATS connection's options (its credentials).
	NATSOptions []nats.Option
	// DialOptions are added to the polaris connection's (its transport credentials).
	DialOptions []grpc.DialOption
	// CallTimeout bounds each polaris call and NATS flush (default 2 s).
	CallTimeout time.Duration
	// RetryMin and RetryMax bound the back-off between failed attempts (200 ms, 5 s).
	RetryMin, RetryMax time.Duration
	// SweepEvery is how often loaders silent for long are forgotten, and polaris polled
	// while NATS is down (default 1 s).
	SweepEvery time.Duration
	// QuietAfter is the silence (no registry or load event) after which polaris is
	// probed, and the view frozen when the probe fails (default StaleAfter/3 of the view:
	// before a loader that reported just ahead of an outage goes stale).
	QuietAfter time.Duration
	// CheckEvery is how often the cut-off condition is checked (default QuietAfter/4).
	CheckEvery time.Duration
	// ProbeTimeout bounds a probe of polaris (default min(CallTimeout, StaleAfter/4)).
	ProbeTimeout time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (c *Config) defaults() {
	if c.CallTimeout <= 0 {
		c.CallTimeout = 2 * time.Second
	}
	if c.RetryMin <= 0 {
		c.RetryMin = 200 * time.Millisecond
	}
	if c.RetryMax < c.RetryMin {
		c.RetryMax = max(5*time.Second, c.RetryMin)
	}
	if c.SweepEvery <= 0 {
		c.SweepEvery = time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// freezeDefaults derives the cut-off timings from the view's staleness limit.
func (c *Config) freezeDefaults(staleAfter time.Duration) {
	if c.QuietAfter <= 0 {
		c.QuietAfter = max(staleAfter/3, time.Millisecond)
	}
	if c.CheckEvery <= 0 {
		c.CheckEvery = max(c.QuietAfter/4, time.Millisecond)
	}
	if c.ProbeTimeout <= 0 {
		c.ProbeTimeout = min(c.CallTimeout, max(staleAfter/4, time.Millisecond))
	}
}

// Source feeds a balance.View from polaris and NATS. Run owns every goroutine it needs
// (the NATS client's own goroutines are stopped by closing the connection on return);
// Close releases the polaris connection.
type Source struct {
	cfg  Config
	view *balance.View
	log  zerolog.Logger
	cc   *grpc.ClientConn
	reg  polarispb.RegistryClient

	ready     atomic.Bool
	connected atomic.Bool
	reload    chan struct{} // cap 1: a snapshot reload is wanted (NATS reconnected)
	probe     chan struct{} // cap 1: check the cut-off now (NATS disconnected)
	running   atomic.Bool
	cut       *cutoff // owned by the Run goroutine

	mu     sync.Mutex // guards info
	info   Info
	events *prometheus.CounterVec
	loads  *prometheus.CounterVec
	frozen prometheus.Gauge
}

// Info is what the Source learnt from polaris, and whether the view is frozen.
type Info struct {
	NATSURL string `json:"nats_url"`
	Prefix  string `json:"subject_prefix"`
	// Frozen tells whether the source is cut off from the registry and the view frozen.
	Frozen bool `json:"frozen"`
	// FrozenSince is when the view froze (nil when not frozen).
	FrozenSince *time.Time `json:"frozen_since,omitempty"`
}

// New prepares a Source; nothing runs until Run. reg may be nil.
func New(cfg Config, view *balance.View, log zerolog.Logger, reg prometheus.Registerer) (*Source, error) {
	cfg.defaults()
	cfg.freezeDefaults(view.StaleAfter())
	if cfg.PolarisAddr == "" {
		return nil, errors.New("source: polaris address is empty")
	}
	// Reconnect to polaris within seconds of it coming back, not after grpc's default
	// back-off of up to two minutes.
	cc, err := grpcx.Dial(cfg.PolarisAddr, append([]grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
		Backoff:           backoff.Config{BaseDelay: cfg.RetryMin, Multiplier: 1.6, Jitter: 0.2, MaxDelay: cfg.RetryMax},
		MinConnectTimeout: cfg.CallTimeout,
	})}, cfg.DialOptions...)...)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	s := &Source{
		cfg: cfg, view: view, log: log, cc: cc, reg: polarispb.NewRegistryClient(cc),
		reload: make(chan struct{}, 1), probe: make(chan struct{}, 1),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "asf_lbclient_registry_events_total",
			Help: "Registry and load events received on NATS, by type (undecodable ones as \"bad\").",
		}, []string{"type"}),
		loads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "asf_lbclient_snapshot_loads_total",
			Help: "Registry.List snapshots loaded from polaris, by result.",
		}, []string{"result"}),
		frozen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "asf_lbclient_view_frozen",
			Help: "1 while the source is cut off from polaris and the view is frozen (no staleness eviction), else 0.",
		}),
	}
	if reg != nil {
		if err := reg.Register(s.events); err != nil {
			_ = cc.Close()
			return nil, fmt.Errorf("source metrics: %w", err)
		}
		if err := reg.Register(s.loads); err != nil {
			_ = cc.Close()
			return nil, fmt.Errorf("source metrics: %w", err)
		}
		if err := reg.Register(s.frozen); err != nil {
			_ = cc.Close()
			return nil, fmt.Errorf("source metrics: %w", err)
		}
	}
	return s, nil
}

// Ready tells whether the first snapshot was applied with the NATS subscriptions in
// place. It stays true afterwards: later outages freeze the view (see Frozen).
func (s *Source) Ready() bool { return s.ready.Load() }

// Connected tells whether the NATS connection is up.
func (s *Source) Connected() bool { return s.connected.Load() }

// Frozen tells whether the source is cut off from the registry and the view frozen.
func (s *Source) Frozen() bool {
	f, _ := s.view.Frozen()
	return f
}

// Info returns the NATS URL and subject prefix in use (empty before polaris answered)
// and the frozen state.
func (s *Source) Info() Info {
	s.mu.Lock()
	in := s.info
	s.mu.Unlock()
	if f, since := s.view.Frozen(); f {
		in.Frozen, in.FrozenSince = true, &since
	}
	return in
}

// Close closes the connection to polaris. Call it once Run has returned (or when Run
// was never called).
func (s *Source) Close() error { return s.cc.Close() }

// Run connects to polaris and NATS, retrying until they answer, and keeps the view in
// step until ctx ends; it closes the NATS connection before returning. It returns nil
// when ctx ends and an error only when called twice.
func (s *Source) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("source: Run called twice")
	}
	url, prefix, ok := s.discover(ctx)
	if !ok {
		return nil
	}
	nc, ok := s.connect(ctx, url)
	if !ok {
		return nil
	}
	defer nc.Close()
	msgs, err := s.subscribe(nc, prefix)
	if err != nil {
		return err
	}
	// The subscriptions are in place at the server once a flush round-trips.
	if !s.retry(ctx, "nats flush", func(context.Context) error { return nc.FlushTimeout(s.cfg.CallTimeout) }) {
		return nil
	}
	s.connected.Store(nc.IsConnected())
	if !s.retry(ctx, "registry snapshot", s.loadSnapshot) {
		return nil
	}
	s.cut = newCutoff(s.cfg.QuietAfter, s.cfg.RetryMin, min(s.cfg.RetryMax, s.view.StaleAfter()), min(s.cfg.SweepEvery, s.cfg.QuietAfter), s.cfg.Now())
	s.ready.Store(true)
	s.log.Info().Str("nats", url).Str("prefix", prefix).Msg("registry view ready")
	s.follow(ctx, msgs)
	return nil
}

// discover asks polaris, until it answers, for the NATS URL (unless configured) and the
// subject prefix. ok is false when ctx ended first.
func (s *Source) discover(ctx context.Context) (url, prefix string, ok bool) {
	var info *polarispb.InfoResponse
	if !s.retry(ctx, "polaris info", func(ctx context.Context) (err error) {
		info, err = s.reg.Info(ctx, &polarispb.InfoRequest{})
		return err
	}) {
		return "", "", false
	}
	url = s.cfg.NATSURL
	if url == "" {
		url = info.GetNatsUrl()
	}
	prefix = info.GetSubjectPrefix()
	if prefix == "" {
		prefix = "asf"
	}
	s.mu.Lock()
	s.info = Info{NATSURL: url, Prefix: prefix}
	s.mu.Unlock()
	return url, prefix, true
}

// connect connects to NATS, retrying until it answers. After a reconnect the registry
// snapshot is reloaded; after a disconnect polaris is probed. ok is false when ctx ended
// first.
func (s *Source) connect(ctx context.Context, url string) (nc *nats.Conn, ok bool) {
	if !s.retry(ctx, "nats connect", func(context.Context) (err error) {
		if url == "" {
			return errors.New("polaris announced no NATS URL and none is configured")
		}
		nc, err = natsbus.Connect(url, "lbclient", s.log, s.cfg.NATSOptions...)
		return err
	}) {
		return nil, false
	}
	nc.SetReconnectHandler(func(c *nats.Conn) {
		s.log.Info().Str("server", c.ConnectedUrlRedacted()).Msg("nats reconnected; reloading the registry snapshot")
		s.connected.Store(true)
		wake(s.reload)
	})
	nc.SetDisconnectErrHandler(func(_ *nats.Conn, err error) {
		s.connected.Store(false)
		s.log.Warn().Err(err).Msg("nats disconnected")
		wake(s.probe)
	})
	return nc, true
}

// wake wakes the loop through c without blocking (one pending wake-up is enough).
func wake(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// subscribe subscribes to every registry and load event into one channel.
func (s *Source) subscribe(nc *nats.Conn, prefix string) (chan *nats.Msg, error) {
	msgs := make(chan *nats.Msg, eventBuffer)
	for _, subj := range []string{natsbus.RegistrySubject(prefix, ">"), natsbus.LoadSubject(prefix, ">")} {
		sub, err := nc.ChanSubscribe(subj, msgs)
		if err != nil {
			// Only an invalid subject or a closed connection fail here.
			return nil, fmt.Errorf("source: subscribe %s: %w", subj, err)
		}
		_ = sub.SetPendingLimits(-1, -1) // the shared channel's capacity is the bound
	}
	return msgs, nil
}

// follow applies events to the view until ctx ends, reloads the snapshot when asked (with
// backoff while polaris fails), probes polaris while NATS is down or quiet, and sweeps
// loaders silent for long.
func (s *Source) follow(ctx context.Context, msgs <-chan *nats.Msg) {
	sweep := time.NewTicker(s.cfg.SweepEvery)
	defer sweep.Stop()
	check := time.NewTicker(s.cfg.CheckEvery)
	defer check.Stop()
	r := &reloader{backoff: s.cfg.RetryMin}
	defer r.stop()
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-msgs:
			s.handle(m.Data)
			if s.Frozen() {
				// Events flow again: the registry is back; reload its snapshot too.
				s.checkCutoff(s.cfg.Now())
				wake(s.reload)
			}
		case <-s.reload:
			s.reloadSnapshot(ctx, r)
		case <-r.c:
			s.reloadSnapshot(ctx, r)
		case <-s.probe:
			if !r.waiting() {
				s.probePolaris(ctx)
			}
			s.checkCutoff(s.cfg.Now())
		case <-check.C:
			// While NATS is down or quiet no load event arrives: poll polaris instead, so
			// loaders that keep heartbeating stay in rotation, and freeze the view when
			// polaris does not answer either.
			if !r.waiting() && s.cut.probeDue(s.cfg.Now(), s.connected.Load()) {
				s.probePolaris(ctx)
			}
			s.checkCutoff(s.cfg.Now())
		case <-sweep.C:
			if n := s.view.Sweep(s.cfg.Now()); n > 0 {
				s.log.Info().Int("forgotten", n).Msg("swept loaders silent for long")
			}
		}
	}
}

// reloader is the backoff of snapshot reloads that failed; c fires when the next is due
// (nil: none pending).
type reloader struct {
	t       *time.Timer
	c       <-chan time.Time
	backoff time.Duration
}

func (r *reloader) waiting() bool { return r.c != nil }

func (r *reloader) stop() {
	if r.t != nil {
		r.t.Stop()
	}
}

// reloadSnapshot reloads the registry snapshot; on failure it schedules the next try.
func (s *Source) reloadSnapshot(ctx context.Context, r *reloader) {
	err := s.loadSnapshot(ctx)
	s.cut.polaris(err == nil, s.cfg.Now())
	s.checkCutoff(s.cfg.Now())
	if err != nil {
		s.log.Warn().Err(err).Dur("retry_in", r.backoff).Msg("registry snapshot reload")
		r.t = time.NewTimer(r.backoff)
		r.c = r.t.C
		r.backoff = min(2*r.backoff, s.cfg.RetryMax)
		return
	}
	r.backoff = s.cfg.RetryMin
	r.c = nil
}

// retry calls f until it succeeds (true) or ctx ends (false), backing off in between.
func (s *Source) retry(ctx context.Context, what string, f func(context.Context) error) bool {
	backoff := s.cfg.RetryMin
	for attempt := 1; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
		err := f(cctx)
		cancel()
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		ev := s.log.Debug()
		if attempt == 1 || attempt%10 == 0 {
			ev = s.log.Warn()
		}
		ev.Err(err).Int("attempt", attempt).Dur("retry_in", backoff).Msg(what)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		backoff = min(2*backoff, s.cfg.RetryMax)
	}
}

// probePolaris loads a snapshot within ProbeTimeout and records the result.
func (s *Source) probePolaris(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, s.cfg.ProbeTimeout)
	err := s.loadSnapshot(pctx)
	cancel()
	if ctx.Err() != nil {
		return
	}
	s.cut.polaris(err == nil, s.cfg.Now())
	if err != nil {
		s.log.Debug().Err(err).Bool("nats_connected", s.connected.Load()).Msg("registry probe")
	}
}

// checkCutoff freezes the view when the source is cut off at now and thaws it when it
// is not, logging both transitions once at warn and keeping the gauge in step.
func (s *Source) checkCutoff(now time.Time) {
	connected := s.connected.Load()
	if s.cut.cut(now, connected) {
		if s.view.Freeze(now) {
			s.frozen.Set(1)
			s.log.Warn().Bool("nats_connected", connected).Dur("silent_for", now.Sub(s.cut.lastEvent)).
				Msg("cut off from polaris: view frozen, loaders no longer go stale; routing on the last known loads")
		}
		return
	}
	s.thaw(now)
}

// thaw ends frozen mode at now, if the view is frozen.
func (s *Source) thaw(now time.Time) {
	_, since := s.view.Frozen()
	if s.view.Thaw(now) {
		s.frozen.Set(0)
		s.log.Warn().Dur("frozen_for", now.Sub(since)).Msg("registry reachable again: view thawed, stale loaders leave rotation again")
	}
}

func (s *Source) loadSnapshot(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
	defer cancel()
	resp, err := s.reg.List(ctx, &polarispb.ListRequest{})
	if err != nil {
		s.loads.WithLabelValues("error").Inc()
		return fmt.Errorf("registry list: %w", grpcx.FromStatus(err))
	}
	snap := toSnapshot(resp.GetInstances())
	s.view.Apply(snap, s.cfg.Now())
	s.loads.WithLabelValues("ok").Inc()
	s.log.Debug().Int("instances", len(snap)).Msg("registry snapshot applied")
	return nil
}

// handle applies one NATS message to the view.
func (s *Source) handle(data []byte) {
	ev, err := decodeEvent(data)
	if err != nil {
		s.events.WithLabelValues("bad").Inc()
		s.log.Warn().Err(err).Msg("dropping registry event")
		return
	}
	s.events.WithLabelValues(typeLabel(ev.GetType())).Inc()
	now := s.cfg.Now()
	if s.cut != nil {
		s.cut.event(now)
	}
	s.apply(ev, now)
}

// apply applies a decoded event at now.
func (s *Source) apply(ev *polarispb.RegistryEvent, now time.Time) {
	for _, st := range ev.GetInstances() {
		if !isProvider(st) {
			continue
		}
		in, ok := toInstance(st)
		if !ok {
			continue
		}
		switch ev.GetType() {
		case polarispb.RegistryEvent_TYPE_ADDED, polarispb.RegistryEvent_TYPE_CHANGED, polarispb.RegistryEvent_TYPE_SNAPSHOT:
			// A SNAPSHOT on the bus may be partial (one service), so it only adds.
			s.view.Upsert(in, now)
		case polarispb.RegistryEvent_TYPE_REMOVED:
			s.view.Remove(in.Service, in.Addr, in.Seq, now)
		case polarispb.RegistryEvent_TYPE_LOAD:
			if st.GetLoad() == nil {
				continue
			}
			s.view.Report(in.Service, in.Addr, in.Load, in.Seq, now)
		}
	}
}

// typeLabel bounds the metric label to the known event types.
func typeLabel(t polarispb.RegistryEvent_Type) string {
	switch t {
	case polarispb.RegistryEvent_TYPE_SNAPSHOT:
		return "snapshot"
	case polarispb.RegistryEvent_TYPE_ADDED:
		return "added"
	case polarispb.RegistryEvent_TYPE_REMOVED:
		return "removed"
	case polarispb.RegistryEvent_TYPE_CHANGED:
		return "changed"
	case polarispb.RegistryEvent_TYPE_LOAD:
		return "load"
	}
	return "unknown"
}
