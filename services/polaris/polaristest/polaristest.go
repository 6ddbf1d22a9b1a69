// Package polaristest runs a real polaris (memory backend, embedded NATS) on 127.0.0.1:0
// for other packages' and modules' tests.
//
//	p := polaristest.Start(t)
//	l := loadertest.Start(t, func(c *loader.Config) { c.PolarisAddr = p.GRPCAddr() })
package polaristest

import (
	"context"
	"testing"
	"time"

	"github.com/athenaserving/asf/services/polaris"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Config returns the test defaults: every listener on 127.0.0.1:0, the memory backend,
// the data directory in t.TempDir(), and the internal plane in plaintext (NATS without
// credentials).
func Config(t testing.TB) polaris.Config {
	cfg := polaris.DefaultConfig()
	cfg.GRPCListen, cfg.AdminListen, cfg.NATSListen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.ConsoleListen, cfg.DataDir, cfg.Backend = "127.0.0.1:0", t.TempDir(), polaris.BackendMemory
	cfg.TLS.Insecure = true
	return cfg
}

// Start runs a polaris built from Config(t) changed by opts, waits until it serves and
// shuts it down at the end of the test.
func Start(t testing.TB, opts ...func(*polaris.Config)) *polaris.Server {
	t.Helper()
	cfg := Config(t)
	for _, o := range opts {
		o(&cfg)
	}
	s, err := polaris.New(cfg, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatalf("polaristest: %v", err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatalf("polaristest: %v", err)
	}
	return s
}
