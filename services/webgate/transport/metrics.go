package transport

import (
	"sync"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/prometheus/client_golang/prometheus"
)

// Metric label values.
const (
	kindOnce   = "once"
	kindStream = "stream"

	// labelUnknown is the capability label of requests for routes or capabilities that do
	// not exist; labelOther of capabilities beyond the label budget.
	labelUnknown = "unknown"
	labelOther   = "other"
)

// DefaultMaxCapabilityLabels bounds the capability label's cardinality.
const DefaultMaxCapabilityLabels = 64

type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	sessions prometheus.Gauge

	mu   sync.Mutex
	seen map[string]struct{}
	max  int
}

func newMetrics(reg prometheus.Registerer, maxLabels int) *metrics {
	if maxLabels <= 0 {
		maxLabels = DefaultMaxCapabilityLabels
	}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "asf_webgate_requests_total",
			Help: "ASE requests (once) and sessions (stream) finished, by capability, kind and ASE code.",
		}, []string{"capability", "kind", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "asf_webgate_request_seconds",
			Help:    "Duration of once requests and of whole stream sessions.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 14),
		}, []string{"capability", "kind"}),
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "asf_webgate_sessions_active",
			Help: "WebSocket sessions currently open.",
		}),
		seen: map[string]struct{}{},
		max:  maxLabels,
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.latency, m.sessions)
	}
	return m
}

// admit adds configured capabilities to the label set up front.
func (m *metrics) admit(capabilities []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range capabilities {
		if len(m.seen) < m.max {
			m.seen[c] = struct{}{}
		}
	}
}

// capabilityLabel bounds the capability label, since the capability comes from the client's
// URL: a capability becomes a label once configured or once a request for it succeeded
// (proving it exists); until then it is "unknown", and beyond max labels it is "other".
func (m *metrics) capabilityLabel(capability string, code int) string {
	if code == aserr.ErrNotFound.Code {
		return labelUnknown
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.seen[capability]; ok {
		return capability
	}
	if code != 0 {
		return labelUnknown
	}
	if len(m.seen) >= m.max {
		return labelOther
	}
	m.seen[capability] = struct{}{}
	return capability
}
