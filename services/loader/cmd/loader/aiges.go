package main

import (
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/athenaserving/asf/libs/svcmain"
	"github.com/athenaserving/asf/services/loader"
	"github.com/athenaserving/asf/services/loader/aigestoml"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// aigesUsage is printed above the flag list by --help.
const aigesUsage = `AIGES compatibility: loader -c aiges.toml -s <svc> runs like AIservice -m 0 -c aiges.toml -s <svc>.
  -c FILE    aiges.toml, mapped onto the keys below (see docs/loader-config.md#aigestoml)
  -s NAME    service name: selects the [NAME] section and sets --service
  -m MODE    0 native; other modes have no effect (warned): -c is always a local file
  -p, -g, -u config-centre project, group and companion url: no effect (warned)
Precedence: defaults → aiges.toml (-c) → --config YAML → ASF_LOADER_* → flags.

`

// startup is the loader's configuration before cfgload: the defaults with the aiges.toml
// applied, the arguments left for cfgload, and the warnings to log once a logger exists.
type startup struct {
	cfg      loader.Config
	args     []string
	file     string
	warnings []aigestoml.Warning
	flagWarn []aigestoml.Warning
}

// prepare takes AIservice's flags out of args and applies the aiges.toml named by -c to
// the defaults; -s becomes a leading --service so an explicit --service still wins.
// workDir is where AIservice would have run (the engine is looked up there).
func prepare(args []string, getenv func(string) string, workDir string) (startup, error) {
	flags, rest, err := aigestoml.SplitArgs(args)
	if err != nil {
		return startup{}, err
	}
	st := startup{cfg: loader.DefaultConfig(), args: rest, flagWarn: flags.Warnings()}
	if flags.Service != "" {
		st.args = append([]string{"--service=" + flags.Service}, rest...)
	}
	if flags.Config == "" {
		return st, nil
	}
	res, err := aigestoml.Load(flags.Config, aigestoml.Options{Service: flags.Service, WorkDir: workDir, Getenv: getenv})
	if err != nil {
		return startup{}, err
	}
	applyAIGES(&st.cfg, res.Settings)
	st.file, st.warnings = res.Path, res.Warnings
	return st, nil
}

// logWarnings logs what prepare found, once, with the service's logger.
func (s startup) logWarnings(log zerolog.Logger) {
	aigestoml.LogWarnings(log, "", s.flagWarn)
	aigestoml.LogWarnings(log, s.file, s.warnings)
}

// wantsHelp reports whether cfgload will print its usage for args.
func wantsHelp(args []string) bool {
	return slices.ContainsFunc(args, func(a string) bool { return a == "-h" || a == "-help" || a == "--help" || a == "--h" })
}

func printAIGESUsage(w io.Writer) { fmt.Fprint(w, aigesUsage) }

// applyAIGES copies the keys an aiges.toml set onto cfg.
func applyAIGES(cfg *loader.Config, s aigestoml.Settings) {
	setIf(&cfg.GRPCListen, s.GRPCListen)
	setIf(&cfg.Licence, s.Licence)
	setIf(&cfg.SessionIdleTTL, s.SessionIdleTTL)
	setIf(&cfg.HeartbeatInterval, s.HeartbeatInterval)
	setIf(&cfg.Engine, s.Engine)
	setIf(&cfg.EnginePath, s.EnginePath)
	setIf(&cfg.Python, s.Python)
	setIf(&cfg.Async, s.Async)
	setIf(&cfg.RealtimeResult, s.RealtimeResult)
	setIf(&cfg.LogLevel, s.LogLevel)
	if len(s.EngineConfig) > 0 {
		cfg.EngineConfig = s.EngineConfig
	}
}

func setIf[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// serve runs the loader service until ctx ends and returns the exit code: 2 for a bad
// aiges.toml or flag (the message names the file and line), else svcmain.Run's.
func serve(ctx context.Context, args []string, getenv func(string) string, workDir string, stderr io.Writer) int {
	st, err := prepare(args, getenv, workDir)
	if err != nil {
		fmt.Fprintln(stderr, "loader: config:", err)
		return 2
	}
	if wantsHelp(st.args) {
		printAIGESUsage(stderr)
	}
	return svcmain.Run(ctx, "loader", st.args, getenv, st.cfg, func(cfg loader.Config, log zerolog.Logger, reg *prometheus.Registry) (svcmain.Service, error) {
		st.logWarnings(log)
		return loader.New(cfg, log, reg)
	})
}
