// Package transport adapts lbclient's domain (package balance) to the wire: the
// lbpb.Lb gRPC service, the Prometheus metrics read from the view, and the admin
// /v1/view JSON dump.
package transport

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/grpcx"
	lbpb "github.com/athenaserving/asf/libs/proto/lb/v1"
	"github.com/athenaserving/asf/libs/tracing"
	"github.com/athenaserving/asf/services/lbclient/balance"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// unknownService is the metric label of picks for a service the view never saw, so
// callers cannot grow the label set.
const unknownService = "_unknown"

// LB serves lbpb.Lb from a balance.View.
type LB struct {
	lbpb.UnimplementedLbServer
	view *balance.View
	now  func() time.Time

	picks   *prometheus.CounterVec
	seconds *prometheus.HistogramVec
	leases  *prometheus.CounterVec

	leaseMax   int           // most picks one Lease grants; 0: leases off
	leaseValid time.Duration // how long granted picks may be used

	ending  chan struct{} // closed by EndStreams
	endOnce sync.Once

	wmu         sync.Mutex // guards watchers
	watchers    map[chan *lbpb.Dropped]struct{}
	dropsMissed prometheus.Counter

	tracer trace.Tracer // nil: tracing off
}

// Trace makes every pick that carries a caller's trace context (PickRequest.trace_context)
// a span "pick" of that trace; nil or a provider that is off traces nothing. Call it
// before serving.
func (l *LB) Trace(tp *tracing.Provider) {
	if tp.On() {
		l.tracer = tp.Tracer("lbclient")
	}
}

var _ lbpb.LbServer = (*LB)(nil)

// NewLB returns the gRPC adapter and registers its metrics and the view collector on
// reg (nil registers nothing). now is the clock (nil means time.Now).
func NewLB(view *balance.View, now func() time.Time, reg prometheus.Registerer) (*LB, error) {
	if now == nil {
		now = time.Now
	}
	l := &LB{
		view:   view,
		now:    now,
		ending: make(chan struct{}),
		picks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "asf_lbclient_picks_total",
			Help: "Pick calls answered, by service (bounded: registered services only), strategy and ASE code.",
		}, []string{"service", "strategy", "code"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "asf_lbclient_pick_seconds",
			Help:    "Time to answer a Pick from the view.",
			Buckets: prometheus.ExponentialBuckets(0.000005, 3, 10),
		}, []string{"strategy"}),
		leases: newLeasesCounter(),
		dropsMissed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "asf_lbclient_drops_missed_total",
			Help: "Dropped-loader notices not sent to a WatchDropped stream that lagged too far behind.",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{l.picks, l.seconds, l.leases, l.dropsMissed, &viewCollector{view: view, now: now}} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return l, nil
}

// Pick answers with up to n (0 means 1) distinct loaders of the service, best first.
func (l *LB) Pick(_ context.Context, req *lbpb.PickRequest) (*lbpb.PickResponse, error) {
	addrs, err := l.pick(req)
	if err != nil {
		return nil, grpcx.ToStatus(err)
	}
	return &lbpb.PickResponse{Addrs: addrs}, nil
}

// EndStreams ends every PickStream and WatchDropped stream (open or opened later) without an error, so a server
// shutting down gracefully is not held up by callers' long-lived streams: they open new
// ones, on another replica once this one's GOAWAY has reached them.
func (l *LB) EndStreams() { l.endOnce.Do(func() { close(l.ending) }) }

// PickStream answers each pick (or lease) on the stream in order, as Pick (or Lease)
// would, until the caller closes its side, the stream breaks or EndStreams is called. A
// pick's error travels in its answer (code and message); the stream itself stays open.
//
// The picks are answered inline by one goroutine (no hand-off per pick); the handler
// waits for it or for EndStreams. On EndStreams it returns, which ends the stream and so
// the answering goroutine's Recv; mu and ended keep that goroutine from picking or sending
// once the handler has returned.
func (l *LB) PickStream(stream lbpb.Lb_PickStreamServer) error {
	var mu sync.Mutex
	ended := false
	done := make(chan error, 1)
	go func() {
		for {
			req, err := stream.Recv()
			if err != nil {
				done <- err
				return
			}
			mu.Lock()
			if ended {
				mu.Unlock()
				return // no pick charged for an answer nobody will read
			}
			resp := &lbpb.PickStreamResponse{Id: req.GetId()}
			if lr := req.GetLease(); lr != nil {
				if resp.Lease, err = l.lease(lr); err != nil {
					resp.Lease = &lbpb.LeaseResponse{} // the answer to a lease always holds one
				}
			} else {
				resp.Addrs, err = l.pick(req.GetPick())
			}
			if err != nil {
				resp.Code, resp.Message = int32(aserr.CodeOf(err)), aserr.MessageOf(err)
			}
			err = stream.Send(resp)
			mu.Unlock()
			if err != nil {
				done <- err
				return
			}
		}
	}()
	select {
	case err := <-done:
		if errors.Is(err, io.EOF) {
			return nil
		}
		return err
	case <-l.ending:
		mu.Lock()
		ended = true
		mu.Unlock()
		return nil
	}
}

func (l *LB) pick(req *lbpb.PickRequest) ([]string, error) {
	start := time.Now()
	var span trace.Span
	if l.tracer != nil && len(req.GetTraceContext()) > 0 {
		_, span = l.tracer.Start(tracing.Extract(context.Background(), req.GetTraceContext()), "pick",
			trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(start),
			trace.WithAttributes(attribute.String("asf.service", req.GetService()), attribute.Int("asf.n", int(req.GetN()))))
	}
	addrs, err := l.view.Pick(req.GetService(), int(req.GetN()), req.GetExclude(), req.GetKey(), l.now())
	if span != nil {
		span.SetAttributes(attribute.StringSlice("asf.loaders", addrs), attribute.Int("asf.code", aserr.CodeOf(err)))
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
	svc, _, _ := strings.Cut(req.GetService(), balance.VersionSep) // versions share their service's label
	strategy := l.view.StrategyName(svc)
	if aserr.CodeOf(err) == aserr.ErrNotFound.Code || !l.view.Known(svc) {
		svc = unknownService
	}
	l.picks.WithLabelValues(svc, strategy, strconv.Itoa(aserr.CodeOf(err))).Inc()
	l.seconds.WithLabelValues(strategy).Observe(time.Since(start).Seconds())
	return addrs, err
}

// viewCollector exports per-service gauges and counters read from the view at scrape.
type viewCollector struct {
	view *balance.View
	now  func() time.Time
}

var (
	descLive = prometheus.NewDesc("asf_lbclient_loaders_live",
		"Loaders in rotation, by service.", []string{"service"}, nil)
	descKnown = prometheus.NewDesc("asf_lbclient_loaders_known",
		"Loaders held in memory (in rotation or not), by service.", []string{"service"}, nil)
	descOver = prometheus.NewDesc("asf_lbclient_overcommits_total",
		"Picks whose first loader had no room left in this replica's share of its idle slots, by service.", []string{"service"}, nil)
	descLeased = prometheus.NewDesc("asf_lbclient_leased_picks_total",
		"Picks granted in leases (Lb.Lease), by service; each is charged like a pick.", []string{"service"}, nil)
	descReplicas = prometheus.NewDesc("asf_lbclient_replicas",
		"lbclient replicas sharing the loaders' idle slots (0: replica accounting off).", nil, nil)
)

// Describe sends the collector's descriptors.
func (c *viewCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descLive
	ch <- descKnown
	ch <- descOver
	ch <- descLeased
	ch <- descReplicas
}

// Collect reads the view.
func (c *viewCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.now()
	members, _ := c.view.Replicas(now)
	ch <- prometheus.MustNewConstMetric(descReplicas, prometheus.GaugeValue, float64(len(members)))
	for _, st := range c.view.Stats(now) {
		ch <- prometheus.MustNewConstMetric(descLive, prometheus.GaugeValue, float64(st.Live), st.Service)
		ch <- prometheus.MustNewConstMetric(descKnown, prometheus.GaugeValue, float64(st.Known), st.Service)
		ch <- prometheus.MustNewConstMetric(descOver, prometheus.CounterValue, float64(st.Overcommits), st.Service)
		ch <- prometheus.MustNewConstMetric(descLeased, prometheus.CounterValue, float64(st.Leased), st.Service)
	}
}

// ViewDump is the body of GET /v1/view: the default strategy, the lbclient replicas
// sharing the loaders (and this one's index among them), and every service's loaders.
type ViewDump struct {
	Strategy string                `json:"strategy"`
	Ready    bool                  `json:"ready"`
	Replicas []string              `json:"replicas"`
	Self     int                   `json:"self_index"`
	Extra    any                   `json:"source,omitempty"`
	Services []balance.ServiceDump `json:"services"`
}

// ViewHandler serves the view as JSON. extra, when set, adds a "source" field (for
// example the NATS URL in use).
func ViewHandler(view *balance.View, now func() time.Time, ready func() bool, extra func() any) http.Handler {
	if now == nil {
		now = time.Now
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		t := now()
		d := ViewDump{Strategy: view.StrategyName(""), Services: view.Dump(t)}
		d.Replicas, d.Self = view.Replicas(t)
		if ready != nil {
			d.Ready = ready()
		}
		if extra != nil {
			d.Extra = extra()
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(d)
	})
}
