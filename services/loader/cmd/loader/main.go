// Command loader runs one loader: it hosts an engine, serves asf.loader.v1.Loader and
// registers with polaris. Configuration: defaults → --config YAML → ASF_LOADER_* → flags.
package main

import (
	"github.com/athenaserving/asf/libs/svcmain"
	"github.com/athenaserving/asf/services/loader"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

func main() {
	svcmain.Main("loader", loader.DefaultConfig(), func(cfg loader.Config, log zerolog.Logger, reg *prometheus.Registry) (svcmain.Service, error) {
		return loader.New(cfg, log, reg)
	})
}
