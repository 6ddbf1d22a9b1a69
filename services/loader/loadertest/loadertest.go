// Package loadertest runs a real loader on 127.0.0.1:0 for other modules' tests.
//
//	s := loadertest.Start(t, func(c *loader.Config) { c.Licence = 1; c.PolarisAddr = polarisAddr })
//	conn, _ := grpcx.Dial(s.GRPCAddr())
package loadertest

import (
	"context"
	"testing"
	"time"

	"github.com/athenaserving/asf/services/loader"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Config returns the test defaults: listeners on 127.0.0.1:0, no polaris registration,
// no warm-up, licence 10, a short drain and heartbeat interval.
func Config() loader.Config {
	cfg := loader.DefaultConfig()
	cfg.GRPCListen, cfg.AdminListen, cfg.PolarisAddr = "127.0.0.1:0", "127.0.0.1:0", ""
	cfg.WarmUp, cfg.DrainTimeout, cfg.HeartbeatInterval = 0, 2*time.Second, 200*time.Millisecond
	return cfg
}

// Start runs a loader built from Config() changed by opts, waits until it is ready
// (registered when PolarisAddr is set) and shuts it down at the end of the test.
func Start(t testing.TB, opts ...func(*loader.Config)) *loader.Server {
	t.Helper()
	cfg := Config()
	for _, o := range opts {
		o(&cfg)
	}
	s, err := loader.New(cfg, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatalf("loadertest: %v", err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatalf("loadertest: %v", err)
	}
	return s
}
