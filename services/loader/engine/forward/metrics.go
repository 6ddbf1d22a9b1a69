package forward

import "github.com/prometheus/client_golang/prometheus"

// Outcomes of an upstream call (label outcome).
const (
	outcomeOK        = "ok"
	outcomeConnect   = "connect_error"
	outcomeBroken    = "connection_broken"
	outcomeTimeout   = "timeout"
	outcomeStatus    = "error_status"
	outcomeCode      = "error_code"
	outcomeBadAnswer = "malformed_answer"
	outcomeClosed    = "closed_early"
)

type metrics struct {
	calls   *prometheus.CounterVec
	retries prometheus.Counter
	seconds prometheus.Observer
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "asf_loader_forward_upstream_calls_total",
			Help: "Calls to the upstream API by kind (http: once attempts; ws: session handshakes, and sessions ended by an upstream failure) and outcome.",
		}, []string{"kind", "outcome"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "asf_loader_forward_upstream_retries_total",
			Help: "Further attempts after a connect error or a 5xx answer (once requests and session handshakes).",
		}),
	}
	h := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "asf_loader_forward_upstream_seconds",
		Help:    "Time of one HTTP attempt to the upstream API, until its answer was read.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
	})
	m.seconds = h
	if reg != nil {
		reg.MustRegister(m.calls, m.retries, h)
	}
	return m
}

func (m *metrics) outcome(kind, o string) { m.calls.WithLabelValues(kind, o).Inc() }
