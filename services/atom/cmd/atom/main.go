// Command atom runs the atom service: ASE frames in, loader calls out.
// Configuration: defaults → --config YAML → env ASF_ATOM_<KEY> → flags (see --help).
package main

import (
	"github.com/athenaserving/asf/libs/svcmain"
	"github.com/athenaserving/asf/services/atom"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

func main() {
	svcmain.Main("atom", atom.DefaultConfig(), func(cfg atom.Config, log zerolog.Logger, reg *prometheus.Registry) (svcmain.Service, error) {
		return atom.New(cfg, log, reg)
	})
}
