// Command webgate runs the ASE public edge. Configuration: defaults → --config YAML →
// ASF_WEBGATE_<KEY> → flags (--http-listen, --admin-listen, --atom, --polaris, --auth,
// --demo-app, --read-timeout, --session-timeout, --max-body-bytes, --max-frame-bytes,
// --max-payload-bytes, --drain-timeout, --require-schema, --config-*, --schema-*, --apps-*,
// --dc, --log-level; --help lists them all).
package main

import (
	"github.com/athenaserving/asf/libs/svcmain"
	"github.com/athenaserving/asf/services/webgate"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

func main() {
	svcmain.Main("webgate", webgate.DefaultConfig(), func(cfg webgate.Config, log zerolog.Logger, reg *prometheus.Registry) (svcmain.Service, error) {
		return webgate.New(cfg, log, reg)
	})
}
