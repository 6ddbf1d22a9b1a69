// Package lbclienttest runs a real lbclient on 127.0.0.1:0, following a polaris, for other
// packages' and modules' tests.
//
//	p := polaristest.Start(t)
//	lb := lbclienttest.Start(t, p.GRPCAddr())
//	conn, _ := grpcx.Dial(lb.GRPCAddr())
package lbclienttest

import (
	"context"
	"testing"
	"time"

	"github.com/athenaserving/asf/services/lbclient"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Config returns the test defaults: listeners on 127.0.0.1:0, the given polaris, and the
// internal plane in plaintext (NATS without credentials).
func Config(polarisAddr string) lbclient.Config {
	cfg := lbclient.DefaultConfig()
	cfg.GRPCListen, cfg.AdminListen, cfg.PolarisAddr = "127.0.0.1:0", "127.0.0.1:0", polarisAddr
	cfg.TLS.Insecure = true
	return cfg
}

// Start runs an lbclient built from Config(polarisAddr) changed by opts, waits until its
// view is ready (the first registry snapshot applied) and shuts it down at the end of
// the test.
func Start(t testing.TB, polarisAddr string, opts ...func(*lbclient.Config)) *lbclient.Server {
	t.Helper()
	cfg := Config(polarisAddr)
	for _, o := range opts {
		o(&cfg)
	}
	s, err := lbclient.New(cfg, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatalf("lbclienttest: %v", err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatalf("lbclienttest: %v", err)
	}
	if !s.Ready() {
		t.Fatalf("lbclienttest: not ready: polaris %s did not answer", polarisAddr)
	}
	return s
}
