package transport

import (
	"strconv"
	"sync"
	"time"

	"github.com/athenaserving/asf/services/atom/route"
	"github.com/prometheus/client_golang/prometheus"
)

// maxCapabilities bounds the capability label: past it, new capabilities count as "other".
const maxCapabilities = 100

// Metrics are atom's business metrics. They implement route.Observer.
type Metrics struct {
	requests     *prometheus.CounterVec
	sessions     *prometheus.CounterVec
	retries      *prometheus.CounterVec
	loaderErrors *prometheus.CounterVec
	hops         *prometheus.HistogramVec
	waits        *prometheus.HistogramVec

	mu   sync.Mutex
	caps map[string]struct{}
}

// NewMetrics registers atom's metrics with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "asf_atom_requests_total", Help: "Once requests served, by capability and ASE code.",
		}, []string{"capability", "code"}),
		sessions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "asf_atom_sessions_total", Help: "Stream sessions served, by capability and ASE code.",
		}, []string{"capability", "code"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "asf_atom_retries_total", Help: "Moves to the next loader after a refusal, by capability and refusal code.",
		}, []string{"capability", "code"}),
		loaderErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "asf_atom_loader_errors_total", Help: "Loader calls and sessions that failed, by capability and code.",
		}, []string{"capability", "code"}),
		hops: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "asf_atom_hop_seconds", Help: "Latency per hop: lb (pick), loader (once round trip), session_first_result, atom (whole call).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 14),
		}, []string{"hop"}),
		waits: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "asf_atom_loader_wait_seconds",
			Help:    "Time from a once request's or session's arrival at atom to the start of the loader attempt that took it (picks and refusals 10110/10222 included), by capability: the loader tier's autoscaling signal.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"capability"}),
		caps: map[string]struct{}{},
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.sessions, m.retries, m.loaderErrors, m.hops, m.waits)
	}
	return m
}

// capability returns a bounded label value for c.
func (m *Metrics) capability(c string) string {
	if c == "" {
		return "unknown"
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.caps[c]; ok {
		return c
	}
	if len(m.caps) >= maxCapabilities {
		return "other"
	}
	m.caps[c] = struct{}{}
	return c
}

// code renders an ASE code as a label; "canceled" for a client that went away.
func code(c int, canceled bool) string {
	if canceled {
		return "canceled"
	}
	return strconv.Itoa(c)
}

// Request counts one once request.
func (m *Metrics) Request(capability, code string) {
	m.requests.WithLabelValues(m.capability(capability), code).Inc()
}

// Session counts one stream session.
func (m *Metrics) Session(capability, code string) {
	m.sessions.WithLabelValues(m.capability(capability), code).Inc()
}

// Retry implements route.Observer.
func (m *Metrics) Retry(capability string, code int) {
	m.retries.WithLabelValues(m.capability(capability), strconv.Itoa(code)).Inc()
}

// LoaderError implements route.Observer.
func (m *Metrics) LoaderError(capability string, code int) {
	m.loaderErrors.WithLabelValues(m.capability(capability), strconv.Itoa(code)).Inc()
}

var _ route.WaitObserver = (*Metrics)(nil)

// Wait implements route.WaitObserver.
func (m *Metrics) Wait(capability string, d time.Duration) {
	m.waits.WithLabelValues(m.capability(capability)).Observe(d.Seconds())
}

// Hop implements route.Observer.
func (m *Metrics) Hop(hop string, d time.Duration) {
	m.hops.WithLabelValues(hop).Observe(d.Seconds())
}
