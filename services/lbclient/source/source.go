// Package source keeps a balance.View in step with polaris: a Registry.List snapshot at
// start and after every NATS reconnect, and the registry and load events published on
// NATS in between. It is lbclient's only transport towards the control plane.
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
	// CallTimeout bounds each polaris call and NATS flush (default 2 s).
	CallTimeout time.Duration
	// RetryMin and RetryMax bound the back-off between failed attempts (200 ms, 5 s).
	RetryMin, RetryMax time.Duration
	// SweepEvery is how often loaders silent for long are forgotten (default 1 s).
	SweepEvery time.Duration
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
	running   atomic.Bool

	mu     sync.Mutex // guards info
	info   Info
	events *prometheus.CounterVec
	loads  *prometheus.CounterVec
}

// Info is what the Source learnt from polaris.
type Info struct {
	NATSURL string `json:"nats_url"`
	Prefix  string `json:"subject_prefix"`
}

// New prepares a Source; nothing runs until Run. reg may be nil.
func New(cfg Config, view *balance.View, log zerolog.Logger, reg prometheus.Registerer) (*Source, error) {
	cfg.defaults()
	if cfg.PolarisAddr == "" {
		return nil, errors.New("source: polaris address is empty")
	}
	// Reconnect to polaris within seconds of it coming back, not after grpc's default
	// back-off of up to two minutes.
	cc, err := grpcx.Dial(cfg.PolarisAddr, grpc.WithConnectParams(grpc.ConnectParams{
		Backoff:           backoff.Config{BaseDelay: cfg.RetryMin, Multiplier: 1.6, Jitter: 0.2, MaxDelay: cfg.RetryMax},
		MinConnectTimeout: cfg.CallTimeout,
	}))
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	s := &Source{
		cfg: cfg, view: view, log: log, cc: cc, reg: polarispb.NewRegistryClient(cc),
		reload: make(chan struct{}, 1),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "asf_lbclient_registry_events_total",
			Help: "Registry and load events received on NATS, by type (undecodable ones as \"bad\").",
		}, []string{"type"}),
		loads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "asf_lbclient_snapshot_loads_total",
			Help: "Registry.List snapshots loaded from polaris, by result.",
		}, []string{"result"}),
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
	}
	return s, nil
}

// Ready tells whether the first snapshot was applied with the NATS subscriptions in
// place. It stays true afterwards: later outages show as loaders going stale.
func (s *Source) Ready() bool { return s.ready.Load() }

// Connected tells whether the NATS connection is up.
func (s *Source) Connected() bool { return s.connected.Load() }

// Info returns the NATS URL and subject prefix in use (empty before polaris answered).
func (s *Source) Info() Info {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.info
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

	var info *polarispb.InfoResponse
	if !s.retry(ctx, "polaris info", func(ctx context.Context) (err error) {
		info, err = s.reg.Info(ctx, &polarispb.InfoRequest{})
		return err
	}) {
		return nil
	}
	url := s.cfg.NATSURL
	if url == "" {
		url = info.GetNatsUrl()
	}
	prefix := info.GetSubjectPrefix()
	if prefix == "" {
		prefix = "asf"
	}
	s.mu.Lock()
	s.info = Info{NATSURL: url, Prefix: prefix}
	s.mu.Unlock()

	var nc *nats.Conn
	if !s.retry(ctx, "nats connect", func(context.Context) (err error) {
		if url == "" {
			return errors.New("polaris announced no NATS URL and none is configured")
		}
		nc, err = natsbus.Connect(url, "lbclient", s.log)
		return err
	}) {
		return nil
	}
	defer nc.Close()
	nc.SetReconnectHandler(func(c *nats.Conn) {
		s.log.Info().Str("server", c.ConnectedUrlRedacted()).Msg("nats reconnected; reloading the registry snapshot")
		s.connected.Store(true)
		select {
		case s.reload <- struct{}{}:
		default:
		}
	})
	nc.SetDisconnectErrHandler(func(_ *nats.Conn, err error) {
		s.connected.Store(false)
		s.log.Warn().Err(err).Msg("nats disconnected")
	})

	msgs := make(chan *nats.Msg, eventBuffer)
	for _, subj := range []string{natsbus.RegistrySubject(prefix, ">"), natsbus.LoadSubject(prefix, ">")} {
		sub, err := nc.ChanSubscribe(subj, msgs)
		if err != nil {
			// Only an invalid subject or a closed connection fail here.
			return fmt.Errorf("source: subscribe %s: %w", subj, err)
		}
		_ = sub.SetPendingLimits(-1, -1) // the shared channel's capacity is the bound
	}
	// The subscriptions are in place at the server once a flush round-trips.
	if !s.retry(ctx, "nats flush", func(context.Context) error { return nc.FlushTimeout(s.cfg.CallTimeout) }) {
		return nil
	}
	s.connected.Store(nc.IsConnected())
	if !s.retry(ctx, "registry snapshot", s.loadSnapshot) {
		return nil
	}
	s.ready.Store(true)
	s.log.Info().Str("nats", url).Str("prefix", prefix).Msg("registry view ready")

	sweep := time.NewTicker(s.cfg.SweepEvery)
	defer sweep.Stop()
	var retryC <-chan time.Time
	var retryT *time.Timer
	backoff := s.cfg.RetryMin
	defer func() {
		if retryT != nil {
			retryT.Stop()
		}
	}()
	doReload := func() {
		if err := s.loadSnapshot(ctx); err != nil {
			s.log.Warn().Err(err).Dur("retry_in", backoff).Msg("registry snapshot reload")
			retryT = time.NewTimer(backoff)
			retryC = retryT.C
			backoff = min(2*backoff, s.cfg.RetryMax)
			return
		}
		backoff = s.cfg.RetryMin
		retryC = nil
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-msgs:
			s.handle(m.Data)
		case <-s.reload:
			doReload()
		case <-retryC:
			doReload()
		case <-sweep.C:
			// While NATS is down no load event arrives: poll polaris instead, so loaders
			// that keep heartbeating stay in rotation and picks go on being answered.
			if !s.connected.Load() && retryC == nil {
				if err := s.loadSnapshot(ctx); err != nil {
					s.log.Debug().Err(err).Msg("registry poll while nats is down")
				}
			}
			if n := s.view.Sweep(s.cfg.Now()); n > 0 {
				s.log.Info().Int("forgotten", n).Msg("swept loaders silent for long")
			}
		}
	}
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
	s.apply(ev, s.cfg.Now())
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
