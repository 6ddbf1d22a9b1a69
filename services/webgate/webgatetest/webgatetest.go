// Package webgatetest runs a real webgate on 127.0.0.1:0 for other packages' and modules'
// tests.
//
//	a := atomtest.Start(t, lb.GRPCAddr())
//	w := webgatetest.Start(t, a.GRPCAddr())
//	resp, _ := http.Post("http://"+w.HTTPAddr()+"/v1/private/echo", "application/json", body)
package webgatetest

import (
	"context"
	"testing"
	"time"

	"github.com/athenaserving/asf/services/webgate"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Config returns the test defaults: listeners on 127.0.0.1:0, the given atom, no polaris,
// authentication off.
func Config(atomAddr string) webgate.Config {
	cfg := webgate.DefaultConfig()
	cfg.HTTPListen, cfg.AdminListen, cfg.AtomAddr = "127.0.0.1:0", "127.0.0.1:0", atomAddr
	cfg.Auth = "off"
	return cfg
}

// Start runs a webgate built from Config(atomAddr) changed by opts and shuts it down at
// the end of the test.
func Start(t testing.TB, atomAddr string, opts ...func(*webgate.Config)) *webgate.Server {
	t.Helper()
	cfg := Config(atomAddr)
	for _, o := range opts {
		o(&cfg)
	}
	s, err := webgate.New(cfg, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatalf("webgatetest: %v", err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatalf("webgatetest: %v", err)
	}
	return s
}
