package e2e

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/grpcx"
	loaderpb "github.com/athenaserving/asf/libs/proto/loader/v1"
	"github.com/athenaserving/asf/libs/tlsx"
	"github.com/athenaserving/asf/services/atom"
	"github.com/athenaserving/asf/services/loader"
	"github.com/athenaserving/asf/services/polaris"
	"github.com/athenaserving/asf/services/webgate"
	"github.com/athenaserving/asf/tests/asetest"
	"github.com/athenaserving/asf/tests/suitetest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// startService starts svc within 20 s and shuts it down when the test ends (errors of a
// shutdown without polaris are expected and ignored).
func startService(t *testing.T, svc interface {
	Start(context.Context) error
	Shutdown(context.Context) error
}) error {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = svc.Shutdown(ctx)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return svc.Start(ctx)
}

func readyz(t *testing.T, adminAddr string) int {
	t.Helper()
	resp, err := http.Get("http://" + adminAddr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// With polaris down, an atom and a webgate started on the disk caches their first runs
// left (in their data dirs) are ready and serve signed requests to the running loaders;
// a webgate with an empty data dir is not ready.
func TestStartFromDiskCacheWhilePolarisDown(t *testing.T) {
	var wcfg webgate.Config
	var acfg atom.Config
	s := suitetest.Start(t, suitetest.Options{Loaders: 1,
		Webgate: func(c *webgate.Config) { wcfg = *c },
		Atom:    func(c *atom.Config) { acfg = *c }})
	mustOK(t, once(t, s.Client(), "polaris up"), "with polaris")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	if err := s.Polaris.Shutdown(ctx); err != nil {
		t.Fatalf("polaris shutdown: %v", err)
	}
	cancel()

	// atom: the capability schemas come from its cache.
	ac := acfg
	ac.GRPCListen, ac.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
	a, err := atom.New(ac, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := startService(t, a); err != nil {
		t.Fatalf("atom with polaris down and a cache: %v", err)
	}
	if !a.Ready() || readyz(t, a.AdminAddr()) != http.StatusOK {
		t.Fatal("atom started from its cache is not ready")
	}

	// webgate: schemas and apps come from its cache; requests go through the new atom.
	wc := wcfg
	wc.HTTPListen, wc.AdminListen, wc.AtomAddr = "127.0.0.1:0", "127.0.0.1:0", a.GRPCAddr()
	w, err := webgate.New(wc, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := startService(t, w); err != nil {
		t.Fatal(err)
	}
	if !w.Ready() || readyz(t, w.AdminAddr()) != http.StatusOK {
		t.Fatal("webgate started from its cache is not ready")
	}
	if got, want := w.Schemas().Len(), s.Webgate.Schemas().Len(); got != want {
		t.Fatalf("webgate started from its cache holds %d schemas, want %d", got, want)
	}
	c := asetest.New("http://"+w.HTTPAddr(), &suitetest.DemoApp)
	for range 5 {
		mustOK(t, once(t, c, "from the cache"), "webgate and atom from their caches, polaris down")
	}

	// A webgate with nothing cached has neither schemas nor apps: not ready.
	bare := wcfg
	bare.HTTPListen, bare.AdminListen, bare.AtomAddr = "127.0.0.1:0", "127.0.0.1:0", a.GRPCAddr()
	bare.DataDir, bare.ConfigWait = t.TempDir(), 300*time.Millisecond
	b, err := webgate.New(bare, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := startService(t, b); err != nil {
		t.Fatal(err)
	}
	if b.Ready() || readyz(t, b.AdminAddr()) != http.StatusServiceUnavailable {
		t.Fatal("webgate without polaris and without a cache reports ready")
	}
}

// A loader whose polaris is down starts, serves direct calls, and appears in the registry
// once polaris starts.
func TestLoaderServesWithoutPolarisAndRegistersLater(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	polarisAddr := ln.Addr().String()
	_ = ln.Close()

	lc := loader.DefaultConfig()
	lc.GRPCListen, lc.AdminListen, lc.PolarisAddr = "127.0.0.1:0", "127.0.0.1:0", polarisAddr
	lc.Service, lc.WarmUp, lc.HeartbeatInterval, lc.RegisterWait = "echo-late", 0, 200*time.Millisecond, 200*time.Millisecond
	lc.TLS = tlsx.Config{Insecure: true}
	l, err := loader.New(lc, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := startService(t, l); err != nil {
		t.Fatalf("loader with polaris down: %v", err)
	}
	if !l.Ready() || readyz(t, l.AdminAddr()) != http.StatusOK {
		t.Fatal("loader with polaris down is not ready")
	}
	cc, err := grpcx.Dial(l.GRPCAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	out, err := loaderpb.NewLoaderClient(cc).Once(t.Context(), &loaderpb.LoaderInput{
		ServiceId: "echo-late", Headers: map[string]string{"sid": "late-1"},
		Pl: []*loaderpb.Payload{{Meta: &loaderpb.MetaDesc{Name: "input", DataType: loaderpb.DataType_DATA_TYPE_TEXT}, Data: []byte("hi")}},
	})
	if err != nil || len(out.GetPl()) != 1 || string(out.GetPl()[0].GetData()) != "hi" {
		t.Fatalf("direct call with polaris down: %v, %v", out, err)
	}

	pc := polaris.DefaultConfig()
	pc.GRPCListen, pc.AdminListen, pc.ConsoleListen, pc.NATSListen = polarisAddr, "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	pc.DataDir, pc.TLS = t.TempDir(), tlsx.Config{Insecure: true}
	var p *polaris.Server
	deadline := time.Now().Add(10 * time.Second)
	for { // the port was free a moment ago; another process may hold it briefly
		if p, err = polaris.New(pc, zerolog.Nop(), prometheus.NewRegistry()); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // retry interval for the port
	}
	if err != nil {
		t.Fatalf("polaris on %s: %v", polarisAddr, err)
	}
	if err := startService(t, p); err != nil {
		t.Fatal(err)
	}
	suitetest.WaitFor(t, 15*time.Second, func() bool {
		for _, st := range p.Registry().List("echo-late") {
			if st.Instance.Addr == l.AdvertisedAddr() && st.Load.Live > 0 {
				return true
			}
		}
		return false
	})
}
