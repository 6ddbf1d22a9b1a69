// Command lbclient runs the load-aggregation service. Configuration: defaults →
// --config YAML → ASF_LBCLIENT_* environment → flags (--grpc-listen, --admin-listen,
// --polaris, --nats-url, --report-interval, --stale-after, --strategy, --strategies,
// --pick-lease, --hash-epsilon, --replica-service, --advertise, --start-wait,
// --log-level). See docs/load-balancing.md.
package main

import (
	"github.com/athenaserving/asf/libs/svcmain"
	"github.com/athenaserving/asf/services/lbclient"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

func main() {
	svcmain.Main("lbclient", lbclient.DefaultConfig(), func(cfg lbclient.Config, log zerolog.Logger, reg *prometheus.Registry) (svcmain.Service, error) {
		return lbclient.New(cfg, log, reg)
	})
}
