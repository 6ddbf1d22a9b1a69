// Command polaris runs the service registry and config center (gRPC), its admin HTTP
// server and, by default, an in-process NATS server for the control-plane events.
// Configuration: defaults → --config YAML → ASF_POLARIS_* → flags (see --help).
package main

import (
	"github.com/athenaserving/asf/libs/svcmain"
	"github.com/athenaserving/asf/services/polaris"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

func main() {
	svcmain.Main("polaris", polaris.DefaultConfig(), func(cfg polaris.Config, log zerolog.Logger, reg *prometheus.Registry) (svcmain.Service, error) {
		return polaris.New(cfg, log, reg)
	})
}
