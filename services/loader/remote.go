package loader

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	polarispb "github.com/athenaserving/asf/libs/proto/polaris/v1"
	"github.com/athenaserving/asf/services/loader/engine/hotswap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"gopkg.in/yaml.v3"
)

// RemoteConfig is the part of a loader's configuration that may live in polaris (the
// file named by remote-config) and change while the loader serves. A key the file does
// not hold keeps the loader's local value (defaults, aiges.toml, YAML, env, flags).
type RemoteConfig struct {
	Licence        *int              `yaml:"licence"`
	EngineConfig   map[string]string `yaml:"engine-config"`
	SessionIdleTTL *time.Duration    `yaml:"session-idle-ttl"`
	ReorderWait    *time.Duration    `yaml:"reorder-wait"`
	DrainTimeout   *time.Duration    `yaml:"drain-timeout"`
}

// ParseRemoteConfig reads a remote config file (YAML or JSON). Keys other than
// RemoteConfig's (they change only with a restart), bad values and bad syntax are
// errors with code 10107.
func ParseRemoteConfig(b []byte) (RemoteConfig, error) {
	var rc RemoteConfig
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&rc); err != nil && !errors.Is(err, io.EOF) {
		return RemoteConfig{}, fmt.Errorf("remote config: %v (keys that change at run time: licence, engine-config, session-idle-ttl, reorder-wait, drain-timeout): %w", err, aserr.ErrInvalidParam)
	}
	switch {
	case rc.Licence != nil && *rc.Licence < 1:
		return RemoteConfig{}, fmt.Errorf("remote config: licence %d: must be at least 1: %w", *rc.Licence, aserr.ErrInvalidParam)
	case negative(rc.SessionIdleTTL), negative(rc.ReorderWait), negative(rc.DrainTimeout):
		return RemoteConfig{}, fmt.Errorf("remote config: durations must not be negative: %w", aserr.ErrInvalidParam)
	}
	return rc, nil
}

func negative(d *time.Duration) bool { return d != nil && *d < 0 }

// over returns base with rc's keys set.
func (rc RemoteConfig) over(base Config) Config {
	c := base
	c.EngineConfig = maps.Clone(base.EngineConfig)
	if rc.Licence != nil {
		c.Licence = *rc.Licence
	}
	if rc.EngineConfig != nil {
		c.EngineConfig = maps.Clone(rc.EngineConfig)
	}
	if rc.SessionIdleTTL != nil {
		c.SessionIdleTTL = *rc.SessionIdleTTL
	}
	if rc.ReorderWait != nil {
		c.ReorderWait = *rc.ReorderWait
	}
	if rc.DrainTimeout != nil {
		c.DrainTimeout = *rc.DrainTimeout
	}
	return c
}

// RemoteConfigKey is where the loader of service looks for file in polaris:
// asf/default/<service>/v1/<file>.
func RemoteConfigKey(service, file string) *polarispb.ConfigKey {
	return &polarispb.ConfigKey{Project: "asf", Group: "default", Service: service, Version: "v1", File: file}
}

// fetchRemote gets the remote config before the engine starts, within register-wait: a
// file that does not exist, or polaris not answering, leaves the local config (the watch
// applies the file when it comes).
func (s *Server) fetchRemote(ctx context.Context) (RemoteConfig, bool) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RegisterWait)
	defer cancel()
	f, err := s.polaris.GetConfig(ctx, RemoteConfigKey(s.cfg.Service, s.cfg.RemoteConfig))
	if err != nil {
		if status.Code(errors.Unwrap(err)) != codes.NotFound {
			s.log.Warn().Err(err).Str("remote-config", s.cfg.RemoteConfig).Msg("remote config not read at start: starting on the local config")
		}
		return RemoteConfig{}, false
	}
	rc, err := ParseRemoteConfig(f.GetContent())
	if err != nil {
		s.log.Warn().Err(err).Int64("revision", f.GetRevision()).Msg("remote config refused at start: starting on the local config")
		return RemoteConfig{}, false
	}
	return rc, true
}

// applyRemote makes the loader run f's config (the reload of the remote config watch;
// its error becomes polaris's apply report). An engine-config change swaps the engine
// first; when the new instance fails, nothing of f is applied and the running engine
// keeps serving.
func (s *Server) applyRemote(ctx context.Context, f *polarispb.ConfigFile) error {
	rc, err := ParseRemoteConfig(f.GetContent())
	if err != nil {
		return err
	}
	want := rc.over(s.cfg)
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	cur := s.eff
	log := s.log.With().Int64("revision", f.GetRevision()).Logger()
	if !maps.Equal(want.EngineConfig, cur.EngineConfig) {
		if err := s.swapEngine(ctx, want); err != nil {
			log.Warn().Err(err).Msg("remote config: new engine config refused, the running engine keeps serving")
			return err
		}
	}
	if want.Licence != cur.Licence {
		s.pool.SetMax(want.Licence) // the registrar reports the new total at once
	}
	if want.SessionIdleTTL != cur.SessionIdleTTL || want.ReorderWait != cur.ReorderWait {
		s.mgr.SetTimeouts(want.SessionIdleTTL, want.ReorderWait)
	}
	s.drain.Store(int64(want.DrainTimeout))
	s.eff = want
	log.Info().Int("licence", want.Licence).Dur("session-idle-ttl", want.SessionIdleTTL).Msg("remote config applied")
	return nil
}

// swapEngine starts a new engine instance with want's engine-config beside the running
// one (a new worker pool for python and isolation process) and moves new work to it.
func (s *Server) swapEngine(ctx context.Context, want Config) error {
	hs, ok := hotswap.Of(s.eng)
	if !ok {
		return fmt.Errorf("engine-config: the engine cannot be replaced while serving: %w", aserr.ErrInvalidOp)
	}
	if want.Engine == EngineC && want.Isolation != IsolationProcess {
		return fmt.Errorf("engine-config: engine c inside the loader process cannot run two instances at once: set isolation process, or restart the loader: %w", aserr.ErrInvalidOp)
	}
	// A replacement instance exports no metrics of its own: the first instance's
	// collectors stay registered.
	next, err := NewEngine(want, s.log, nil)
	if err != nil {
		return fmt.Errorf("engine-config: %w", err)
	}
	if err := hs.Swap(ctx, next, want.EngineConfig); err != nil {
		return fmt.Errorf("engine-config: %w", err)
	}
	return nil
}

// EngineGeneration counts the engine instances that served: 1 until an engine-config
// change from polaris replaced the first.
func (s *Server) EngineGeneration() int {
	if hs, ok := hotswap.Of(s.eng); ok {
		return hs.Generation()
	}
	return 1
}

// Licence is the current number of engine slots (it changes with the remote config).
func (s *Server) Licence() int { return s.pool.Max() }
