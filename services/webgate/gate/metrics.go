package gate

import (
	"strconv"
	"sync"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/tracing"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
)

// Capability label values beyond the capabilities themselves.
const (
	// labelUnknown is the capability label of requests for routes or capabilities that do
	// not exist; labelOther of capabilities beyond the label budget.
	labelUnknown = "unknown"
	labelOther   = "other"
)

// DefaultMaxCapabilityLabels bounds the capability label's cardinality.
const DefaultMaxCapabilityLabels = 64

// Metrics are webgate's request metrics (asf_webgate_*): the adapters count bytes and
// finished requests, the gate bounds the capability label.
type Metrics struct {
	requests     *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	firstResult  *prometheus.HistogramVec
	lastResult   *prometheus.HistogramVec
	sessions     prometheus.Gauge
	authFailures *prometheus.CounterVec
	bytesIn      prometheus.Counter
	bytesOut     prometheus.Counter

	mu   sync.Mutex
	seen map[string]struct{}
	max  int
}

func newMetrics(reg prometheus.Registerer, maxLabels int) *Metrics {
	if maxLabels <= 0 {
		maxLabels = DefaultMaxCapabilityLabels
	}
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "asf_webgate_requests_total",
			Help: "ASE requests (once) and sessions (stream) finished, by capability, kind and ASE code.",
		}, []string{"capability", "kind", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "asf_webgate_request_seconds",
			Help:    "Duration of once requests and of whole stream sessions.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 14),
		}, []string{"capability", "kind"}),
		firstResult: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "asf_webgate_first_result_seconds",
			Help:    "Time from the request (or session start) to its first result.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 14),
		}, []string{"capability", "kind"}),
		lastResult: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "asf_webgate_last_result_seconds",
			Help:    "Time from the request (or session start) to its last result.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 14),
		}, []string{"capability", "kind"}),
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "asf_webgate_sessions_active",
			Help: "WebSocket sessions currently open (a multiplexed socket counts its sub-sessions).",
		}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "asf_webgate_auth_failures_total",
			Help: "Requests refused by authentication or app limits, by reason.",
		}, []string{"reason"}),
		bytesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "asf_webgate_received_bytes_total",
			Help: "Request bytes received: once bodies and WebSocket messages.",
		}),
		bytesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "asf_webgate_sent_bytes_total",
			Help: "Response bytes sent: once bodies and WebSocket messages.",
		}),
		seen: map[string]struct{}{},
		max:  maxLabels,
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.latency, m.firstResult, m.lastResult, m.sessions, m.authFailures, m.bytesIn, m.bytesOut)
	}
	return m
}

// admit adds configured capabilities to the label set up front.
func (m *Metrics) admit(capabilities []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range capabilities {
		if len(m.seen) < m.max {
			m.seen[c] = struct{}{}
		}
	}
}

// Results records the first- and last-result latencies of a request or session.
func (m *Metrics) Results(label, kind string, first, last time.Duration) {
	if first > 0 {
		m.firstResult.WithLabelValues(label, kind).Observe(first.Seconds())
	}
	if last > 0 {
		m.lastResult.WithLabelValues(label, kind).Observe(last.Seconds())
	}
}

// Label bounds the capability label, since the capability comes from the client's
// URL: a capability becomes a label once configured or once a request for it succeeded
// (proving it exists) or has a schema (known); until then it is "unknown", and beyond max
// labels it is "other".
func (m *Metrics) Label(capability string, code int, known bool) string {
	if code == aserr.ErrNotFound.Code {
		return labelUnknown
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.seen[capability]; ok {
		return capability
	}
	if code != 0 && !known {
		return labelUnknown
	}
	if len(m.seen) >= m.max {
		return labelOther
	}
	m.seen[capability] = struct{}{}
	return capability
}

// Finished counts a request or session that ended with code and records its duration,
// with the trace id of sc as exemplar when sc is sampled.
func (m *Metrics) Finished(label, kind string, code int, took time.Duration, sc trace.SpanContext) {
	m.requests.WithLabelValues(label, kind, strconv.Itoa(code)).Inc()
	o := m.latency.WithLabelValues(label, kind)
	if sc.IsSampled() {
		if eo, ok := o.(prometheus.ExemplarObserver); ok {
			eo.ObserveWithExemplar(took.Seconds(), prometheus.Labels{tracing.LogField: sc.TraceID().String()})
			return
		}
	}
	o.Observe(took.Seconds())
}

// NotFound counts a request for a route or capability that does not exist.
func (m *Metrics) NotFound(kind string) {
	m.requests.WithLabelValues(labelUnknown, kind, strconv.Itoa(aserr.ErrNotFound.Code)).Inc()
}

// Received counts request bytes: once bodies and WebSocket messages.
func (m *Metrics) Received(n int) { m.bytesIn.Add(float64(n)) }

// Sent counts response bytes: once bodies and WebSocket messages.
func (m *Metrics) Sent(n int) { m.bytesOut.Add(float64(n)) }

// SessionOpened counts a WebSocket session (or sub-session) that began.
func (m *Metrics) SessionOpened() { m.sessions.Inc() }

// SessionClosed uncounts a session of SessionOpened.
func (m *Metrics) SessionClosed() { m.sessions.Dec() }

// AuthFailure counts a request refused by authentication or app limits.
func (m *Metrics) AuthFailure(reason string) { m.authFailures.WithLabelValues(reason).Inc() }
