package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/athenaserving/asf/services/polaris"
	"github.com/athenaserving/asf/services/polaris/registry"
	"github.com/athenaserving/asf/tests/suitetest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// lbSource is the "source" part of lbclient's GET /v1/view.
type lbSource struct {
	Frozen        bool `json:"frozen"`
	NATSConnected bool `json:"nats_connected"`
}

func lbView(t *testing.T, s *suitetest.Suite) lbSource {
	t.Helper()
	var v struct {
		Source lbSource `json:"source"`
	}
	getJSON(t, "http://"+s.LB.AdminAddr()+"/v1/view", &v)
	return v.Source
}

func getJSON(t *testing.T, url string, dst any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(dst); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
}

// getRaw is the body at url, or the error, as text.
func getRaw(url string) string {
	resp, err := http.Get(url)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// frozenGauge is asf_lbclient_view_frozen as lbclient's /metrics shows it.
func frozenGauge(t *testing.T, s *suitetest.Suite) string {
	t.Helper()
	resp, err := http.Get("http://" + s.LB.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "asf_lbclient_view_frozen "); ok {
			return v
		}
	}
	t.Fatal("asf_lbclient_view_frozen not exported")
	return ""
}

// restartPolaris starts a polaris on the stopped one's gRPC and NATS addresses with its
// data dir, as a restarted process would, and stops it when the test ends.
func restartPolaris(t *testing.T, s *suitetest.Suite, dataDir string) *polaris.Server {
	t.Helper()
	old := s.Polaris
	pc := polaris.DefaultConfig()
	pc.GRPCListen, pc.AdminListen, pc.ConsoleListen = old.GRPCAddr(), "127.0.0.1:0", "127.0.0.1:0"
	pc.NATSListen = strings.TrimPrefix(strings.TrimPrefix(old.NATSURL(), "nats://"), "tls://")
	pc.DataDir, pc.NATSUsers = dataDir, s.NATSDir
	pc.TLS, pc.AdminToken = s.TLS("polaris"), suitetest.AdminToken
	var p *polaris.Server
	var err error
	// The old listeners are closed; the kernel may take a moment to hand the port back.
	deadline := time.Now().Add(10 * time.Second)
	for {
		p, err = polaris.New(pc, zerolog.Nop(), prometheus.NewRegistry())
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // retry interval for the port
	}
	if err != nil {
		t.Fatalf("restart polaris: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.Start(ctx); err != nil {
		t.Fatalf("start restarted polaris: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = p.Shutdown(ctx)
	})
	return p
}

// polarisDataDir is the suite's polaris data dir: the one of the test's TempDirs (which
// suitetest.Start creates) that holds polaris.db.
func polarisDataDir(t *testing.T) string {
	t.Helper()
	dbs, err := filepath.Glob(filepath.Join(filepath.Dir(t.TempDir()), "*", "polaris.db"))
	if err != nil || len(dbs) != 1 {
		t.Fatalf("suite polaris data dir not found: %v %v", dbs, err)
	}
	return filepath.Dir(dbs[0])
}

func TestPolarisOutageSurvivedFromCaches(t *testing.T) {
	const staleAfter = 3 * time.Second // lbclient's default StaleAfter
	s := suitetest.Start(t, suitetest.Options{Loaders: 2})
	dataDir := polarisDataDir(t)
	c := s.Client()
	send := func(what string) {
		t.Helper()
		mustOK(t, once(t, c, what), what)
	}
	for range 10 {
		send("before the outage")
	}
	if v := lbView(t, s); v.Frozen {
		t.Fatal("frozen before the outage")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	if err := s.Polaris.Shutdown(ctx); err != nil {
		t.Fatalf("polaris shutdown: %v", err)
	}
	cancel()
	down := time.Now()

	// Every request succeeds for well over 2 × StaleAfter without polaris and NATS.
	sent := 0
	for time.Since(down) < 2*staleAfter+time.Second {
		send("during the outage")
		sent++
	}
	if v := lbView(t, s); !v.Frozen || v.NATSConnected {
		t.Fatalf("lbclient view source during the outage = %+v, want frozen and NATS down", v)
	}
	if g := frozenGauge(t, s); g != "1" {
		t.Fatalf("asf_lbclient_view_frozen = %s during the outage", g)
	}
	if n := s.LB.Live("echo"); n != 2 {
		t.Fatalf("%d loaders in rotation during the outage, want 2", n)
	}
	t.Logf("%d requests answered during %s without polaris", sent, time.Since(down).Round(time.Millisecond))

	// Polaris comes back on the same address and data dir: the loaders register again,
	// lbclient reloads the snapshot, thaws, and the loaders report live load again.
	p := restartPolaris(t, s, dataDir)
	back := time.Now()
	suitetest.WaitFor(t, 15*time.Second, func() bool {
		return !lbView(t, s).Frozen
	})
	thawed := time.Since(back)
	if g := frozenGauge(t, s); g != "0" {
		t.Fatalf("asf_lbclient_view_frozen = %s after polaris returned", g)
	}
	// The loaders reach the new polaris after their polaris client's reconnect back-off
	// (at most 1 s); until then polaris may expire the restored registrations. Once they
	// heartbeat again they are live again and requests succeed.
	var last string // what the condition saw last, for a failure
	t.Cleanup(func() {
		if t.Failed() && last != "" {
			t.Logf("last seen: %s; lbclient view: %s", last, getRaw("http://"+s.LB.AdminAddr()+"/v1/view"))
		}
	})
	suitetest.WaitFor(t, 20*time.Second, func() bool {
		live := 0
		var regs []string
		for _, st := range p.Registry().List("echo") {
			regs = append(regs, fmt.Sprintf("%s %s live=%d seq=%d", st.Instance.Kind, st.Instance.Addr, st.Load.Live, st.Seq))
			// atom's consumer entry for echo is listed too; only the loaders count.
			if st.Instance.Kind == registry.KindProvider && st.Load.Live > 0 {
				live++
			}
		}
		v, lbLive := lbView(t, s), s.LB.Live("echo")
		last = fmt.Sprintf("polaris %v, lbclient live %d, source %+v", regs, lbLive, v)
		return live == 2 && lbLive == 2 && v.NATSConnected
	})
	t.Logf("thawed %s and both loaders live %s after polaris returned", thawed.Round(time.Millisecond), time.Since(back).Round(time.Millisecond))
	for range 10 {
		send("after the outage")
	}
}
