package transport

import (
	"context"
	"fmt"
	"sync"

	"github.com/athenaserving/asf/libs/natsbus"
	polarispb "github.com/athenaserving/asf/libs/proto/polaris/v1"
	"github.com/athenaserving/asf/services/polaris/config"
	"github.com/athenaserving/asf/services/polaris/internal/fanout"
	"github.com/athenaserving/asf/services/polaris/registry"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"
)

// publisherBuffer is how far the publisher may fall behind the registry before it
// resubscribes; NATS publishing only buffers, so this is rarely reached.
const publisherBuffer = 8192

// Publisher publishes registry and config changes on NATS as protobuf:
// membership (ADDED/REMOVED/CHANGED) on <prefix>.registry.<service>, heartbeats (LOAD)
// on <prefix>.load.<service>, config pushes and deletes on <prefix>.config.<service>.
// Consumers (kind "consumer") are not published: they are never routed to.
type Publisher struct {
	nc     *nats.Conn
	prefix string
	reg    *registry.Registry
	center *config.Center
	log    zerolog.Logger
	wg     sync.WaitGroup

	published *prometheus.CounterVec
	failed    prometheus.Counter
	resyncs   prometheus.Counter
}

// NewPublisher returns a publisher of reg and center changes on nc; its counters are
// registered on promReg when it is not nil.
func NewPublisher(nc *nats.Conn, prefix string, reg *registry.Registry, center *config.Center, log zerolog.Logger, promReg prometheus.Registerer) *Publisher {
	p := &Publisher{
		nc: nc, prefix: prefix, reg: reg, center: center, log: log,
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "asf_polaris_nats_published_total",
			Help: "Events published on NATS, by subject kind (registry, load, config).",
		}, []string{"kind"}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "asf_polaris_nats_publish_errors_total",
			Help: "NATS publishes that failed.",
		}),
		resyncs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "asf_polaris_nats_resyncs_total",
			Help: "Times the publisher fell behind and republished the registry as ADDED events.",
		}),
	}
	if promReg != nil {
		promReg.MustRegister(p.published, p.failed, p.resyncs)
	}
	return p
}

// Start subscribes to the registry and the config center, so nothing that happens after
// it returns is missed, and publishes from two goroutines until ctx ends or the
// registry and config center close their watchers; Wait waits for them.
func (p *Publisher) Start(ctx context.Context) error {
	rsub, err := p.reg.Subscribe("", publisherBuffer)
	if err != nil {
		return fmt.Errorf("publisher: %w", err)
	}
	cw, err := p.center.Changes(publisherBuffer)
	if err != nil {
		rsub.Close()
		return fmt.Errorf("publisher: %w", err)
	}
	p.wg.Add(2)
	go func() { defer p.wg.Done(); p.runRegistry(ctx, rsub) }()
	go func() { defer p.wg.Done(); p.runConfig(ctx, cw) }()
	return nil
}

// Wait waits until the goroutines started by Start have returned.
func (p *Publisher) Wait() { p.wg.Wait() }

func (p *Publisher) runRegistry(ctx context.Context, sub *registry.Subscription) {
	resync := false
	for {
		err := p.pumpRegistry(ctx, sub, resync)
		sub.Close()
		if err != fanout.ErrOverflow { //nolint:errorlint // the sentinel itself (see fanout.ErrClosed)
			return
		}
		p.log.Warn().Msg("nats publisher fell behind the registry; resyncing")
		p.resyncs.Inc()
		resync = true
		if sub, err = p.reg.Subscribe("", publisherBuffer); err != nil {
			return // registry closed
		}
	}
}

func (p *Publisher) pumpRegistry(ctx context.Context, sub *registry.Subscription, resync bool) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-sub.C():
			if !ok {
				return sub.Err()
			}
			if ev.Type == registry.EventSnapshot {
				if !resync {
					continue
				}
				ev.Type = registry.EventAdded // consumers treat ADDED as an upsert
			}
			for _, st := range ev.Instances {
				if st.Instance.Kind == registry.KindConsumer {
					continue
				}
				kind, subj := "registry", natsbus.RegistrySubject(p.prefix, st.Instance.Service)
				if ev.Type == registry.EventLoad {
					kind, subj = "load", natsbus.LoadSubject(p.prefix, st.Instance.Service)
				}
				one := &polarispb.RegistryEvent{Type: eventTypes[ev.Type], Instances: []*polarispb.InstanceState{StateToPB(st)}}
				p.publish(kind, subj, one)
			}
		}
	}
}

func (p *Publisher) runConfig(ctx context.Context, w *config.Watch) {
	for {
		err := p.pumpConfig(ctx, w)
		w.Close()
		if err != fanout.ErrOverflow { //nolint:errorlint // the sentinel itself (see fanout.ErrClosed)
			return
		}
		p.log.Warn().Msg("nats publisher fell behind the config center; some config events were lost")
		p.resyncs.Inc()
		if w, err = p.center.Changes(publisherBuffer); err != nil {
			return
		}
	}
}

func (p *Publisher) pumpConfig(ctx context.Context, w *config.Watch) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-w.C():
			if !ok {
				return w.Err()
			}
			if ev.Type == config.EventSnapshot {
				continue
			}
			for _, f := range ev.Files {
				one := &polarispb.ConfigEvent{Type: configEventTypes[ev.Type], Files: []*polarispb.ConfigFile{FileToPB(f)}}
				p.publish("config", natsbus.ConfigSubject(p.prefix, f.Key.Service), one)
			}
		}
	}
}

func (p *Publisher) publish(kind, subject string, m proto.Message) {
	data, err := proto.Marshal(m)
	if err == nil {
		err = p.nc.Publish(subject, data)
	}
	if err != nil {
		p.failed.Inc()
		p.log.Warn().Err(err).Str("subject", subject).Msg("nats publish")
		return
	}
	p.published.WithLabelValues(kind).Inc()
}
