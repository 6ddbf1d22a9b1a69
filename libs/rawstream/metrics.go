package rawstream

import "github.com/prometheus/client_golang/prometheus"

// Metrics counts a Listener's streams: asf_<service>_raw_streams_open (served now) and
// asf_<service>_raw_streams_total{result} (served, refused: a method unknown or a caller
// not admitted, failed: no valid hello within the handshake bound).
type Metrics struct {
	open                    prometheus.Gauge
	served, refused, failed prometheus.Counter
}

// NewMetrics registers a service's stream metrics on reg (nil: not registered).
func NewMetrics(service string, reg prometheus.Registerer) *Metrics {
	total := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "asf_" + service + "_raw_streams_total", Help: "Raw streams opened on the gRPC port, by result (served, refused, failed).",
	}, []string{"result"})
	m := &Metrics{
		open: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "asf_" + service + "_raw_streams_open", Help: "Raw streams being served on the gRPC port.",
		}),
		served: total.WithLabelValues("served"), refused: total.WithLabelValues("refused"), failed: total.WithLabelValues("failed"),
	}
	if reg != nil {
		reg.MustRegister(total, m.open)
	}
	return m
}
