// Package hotconfig tests, across the whole suite, a loader config kept in polaris and
// changed while requests and sessions run: licence up and down, a new engine config, and
// a broken one.
package hotconfig

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/athenaserving/asf/services/loader"
	"github.com/athenaserving/asf/services/polaris/config"
	"github.com/athenaserving/asf/tests/asetest"
	"github.com/athenaserving/asf/tests/suitetest"
)

const file = "loader.yaml"

// load runs once requests and three-frame sessions until stop, counting failures.
type load struct {
	ok, failed, sessions atomic.Int64
	mu                   sync.Mutex
	lastCfg              string // attribute cfg of the latest once answer
	errs                 []string
	wg                   sync.WaitGroup
}

func (l *load) fail(format string, a ...any) {
	l.failed.Add(1)
	l.mu.Lock()
	if len(l.errs) < 10 {
		l.errs = append(l.errs, fmt.Sprintf(format, a...))
	}
	l.mu.Unlock()
}

func (l *load) once(ctx context.Context, c *asetest.Client) {
	defer l.wg.Done()
	for ctx.Err() == nil {
		r, err := c.Once(context.Background(), "echo", asetest.Frame{Status: 3, Payload: map[string]asetest.Data{"input": asetest.Text("hi")}})
		switch {
		case err != nil:
			l.fail("once: %v", err)
		case r.Header.Code != 0:
			l.fail("once: %s", r.Raw)
		default:
			l.ok.Add(1)
			l.mu.Lock()
			l.lastCfg = r.Attr("input", "cfg")
			l.mu.Unlock()
		}
	}
}

func (l *load) session(ctx context.Context, c *asetest.Client) {
	defer l.wg.Done()
	for ctx.Err() == nil {
		all, err := c.ThreeFrameSession(context.Background(), "echo", []byte("a"), 10*time.Second)
		if err != nil {
			l.fail("session: %v", err)
			continue
		}
		good := len(all) == 3
		for _, r := range all {
			good = good && r.Header.Code == 0
		}
		if !good {
			l.fail("session results: %d, last %s", len(all), all[len(all)-1].Raw)
			continue
		}
		l.sessions.Add(1)
	}
}

func (l *load) cfg() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastCfg
}

// latest returns the revision of the loader config polaris serves.
func latest(t *testing.T, s *suitetest.Suite, k config.Key) int64 {
	f, err := s.Polaris.ConfigCenter().Get(t.Context(), k, config.Caller{})
	if err != nil {
		t.Fatal(err)
	}
	return f.Revision
}

// reported waits until every loader reported revision rev with applied, and returns the
// reasons given.
func reported(t *testing.T, s *suitetest.Suite, k config.Key, rev int64, applied bool) []string {
	t.Helper()
	var reasons []string
	suitetest.WaitFor(t, 10*time.Second, func() bool {
		reasons = reasons[:0]
		n := 0
		for _, a := range s.Polaris.ConfigCenter().Applied(k) {
			if a.Revision == rev && a.Applied == applied {
				n++
				reasons = append(reasons, a.Reason)
			}
		}
		return n == len(s.Loaders)
	})
	return reasons
}

func TestLoaderConfigChangesUnderLoad(t *testing.T) {
	s := suitetest.Start(t, suitetest.Options{Loaders: 2, Licence: 4, Loader: func(_ int, c *loader.Config) {
		c.RemoteConfig = file
		c.RetireTimeout = 5 * time.Second
		c.EngineConfig = map[string]string{"attr.cfg": "a"}
	}})
	k := config.Key{Project: "asf", Group: "default", Service: "echo", Version: "v1", File: file}
	push := func(content string) int64 {
		s.PushConfig("echo", file, []byte(content))
		return latest(t, s, k)
	}
	total := func(want int) func() bool {
		return func() bool {
			for _, l := range s.Loaders {
				ld, _, ok := s.LB.View().LoaderLoad("echo", l.AdvertisedAddr())
				if !ok || int(ld.Total) != want || l.Licence() != want {
					return false
				}
			}
			return true
		}
	}

	ctx, stop := context.WithCancel(context.Background())
	l := &load{}
	c := s.Client()
	for i := 0; i < 2; i++ {
		l.wg.Add(2)
		go l.once(ctx, c)
		go l.session(ctx, c)
	}
	stopped := false
	stopLoad := func() {
		if !stopped {
			stopped = true
			stop()
			l.wg.Wait()
		}
	}
	t.Cleanup(stopLoad)
	suitetest.WaitFor(t, 10*time.Second, func() bool { return l.ok.Load() > 20 && l.sessions.Load() > 5 })

	// Licence up, then down: lbclient sees the new capacity, no restart.
	rev := push("licence: 8\n")
	suitetest.WaitFor(t, 10*time.Second, total(8))
	reported(t, s, k, rev, true)
	rev = push("licence: 2\n")
	suitetest.WaitFor(t, 10*time.Second, total(2))
	reported(t, s, k, rev, true)
	mark := l.ok.Load()
	suitetest.WaitFor(t, 10*time.Second, func() bool { return l.ok.Load() > mark+20 })

	// A new engine config: a new instance takes new work, the old one finishes.
	rev = push("licence: 4\nengine-config: {attr.cfg: b}\n")
	reported(t, s, k, rev, true)
	suitetest.WaitFor(t, 10*time.Second, func() bool { return l.cfg() == `"b"` })
	for i, ld := range s.Loaders {
		if g := ld.EngineGeneration(); g != 2 {
			t.Fatalf("loader %d runs engine generation %d, want 2", i, g)
		}
	}

	// A config the engine refuses: reported as not applied, the running engine serves on.
	rev = push("licence: 6\nengine-config: {attr.cfg: c, init-error: model file missing}\n")
	reasons := reported(t, s, k, rev, false)
	for _, r := range reasons {
		if r == "" {
			t.Fatalf("refused config reported without a reason: %q", reasons)
		}
	}
	t.Logf("refused: %s", reasons[0])
	mark, sess := l.ok.Load(), l.sessions.Load()
	suitetest.WaitFor(t, 10*time.Second, func() bool { return l.ok.Load() > mark+20 && l.sessions.Load() > sess+5 })
	if got := l.cfg(); got != `"b"` {
		t.Fatalf("after a refused config, answers come from %s, want the running engine b", got)
	}
	for i, ld := range s.Loaders {
		if g, lic := ld.EngineGeneration(), ld.Licence(); g != 2 || lic != 4 {
			t.Fatalf("loader %d after a refused config: generation %d licence %d, want 2 and 4", i, g, lic)
		}
	}

	stopLoad()
	t.Logf("once ok %d, sessions completed %d, failed %d", l.ok.Load(), l.sessions.Load(), l.failed.Load())
	if n := l.failed.Load(); n != 0 {
		t.Fatalf("%d failed requests or sessions: %q", n, l.errs)
	}
}

// TestLoaderStartsOnThePolarisConfig starts a loader while polaris holds its config: the
// engine is initialised with it at once (no second instance) and the licence is polaris's.
func TestLoaderStartsOnThePolarisConfig(t *testing.T) {
	s := suitetest.Start(t, suitetest.Options{Loaders: 1, Licence: 4, Loader: func(_ int, c *loader.Config) {
		c.RemoteConfig = file
	}})
	s.PushConfig("echo", file, []byte("licence: 3\nengine-config: {attr.cfg: remote}\n"))
	l := s.AddLoader()
	if g, lic := l.EngineGeneration(), l.Licence(); g != 1 || lic != 3 {
		t.Fatalf("new loader: generation %d licence %d, want 1 and 3", g, lic)
	}
	resp, err := http.Get("http://" + l.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"asf_loader_licence_slots 3\n", "asf_loader_engine_generation 1\n"} {
		if !strings.Contains(string(metrics), want) {
			t.Fatalf("loader metrics lack %q", want)
		}
	}
	k := config.Key{Project: "asf", Group: "default", Service: "echo", Version: "v1", File: file}
	reported(t, s, k, latest(t, s, k), true)
	r, err := s.Client().Once(t.Context(), "echo", asetest.Frame{Status: 3, Header: map[string]any{"uid": "x"}, Payload: map[string]asetest.Data{"input": asetest.Text("hi")}})
	if err != nil || r.Header.Code != 0 || r.Attr("input", "cfg") != `"remote"` {
		t.Fatalf("once: %v %s", err, r.Raw)
	}
}
