// Package atomtest runs a real atom on 127.0.0.1:0 for other packages' and modules' tests.
//
//	lb := lbclienttest.Start(t, p.GRPCAddr())
//	a := atomtest.Start(t, lb.GRPCAddr())
//	conn, _ := grpcx.Dial(a.GRPCAddr())
package atomtest

import (
	"context"
	"testing"
	"time"

	"github.com/athenaserving/asf/services/atom"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Config returns the test defaults: listeners on 127.0.0.1:0, the given lbclient, no
// polaris.
func Config(lbAddr string) atom.Config {
	cfg := atom.DefaultConfig()
	cfg.GRPCListen, cfg.AdminListen, cfg.LBAddr = "127.0.0.1:0", "127.0.0.1:0", lbAddr
	return cfg
}

// Start runs an atom built from Config(lbAddr) changed by opts and shuts it down at the
// end of the test.
func Start(t testing.TB, lbAddr string, opts ...func(*atom.Config)) *atom.Server {
	t.Helper()
	cfg := Config(lbAddr)
	for _, o := range opts {
		o(&cfg)
	}
	s, err := atom.New(cfg, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatalf("atomtest: %v", err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatalf("atomtest: %v", err)
	}
	return s
}
