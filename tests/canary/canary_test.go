// Package canary tests engine versions across the whole suite: requests pinned to a
// version, a canary split shifted 0 → 10 → 50 → 100 % under load and rolled back, with
// sessions kept on the version they started on.
package canary

import (
	"context"
	"fmt"
	"math"
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

// start runs a suite whose loaders 0 and 1 serve engine version 1 and loaders 2 and 3
// version 2; every answer carries attribute ver naming the version that served it.
func start(t *testing.T) *suitetest.Suite {
	return suitetest.Start(t, suitetest.Options{Loaders: 4, Licence: 8, Loader: func(i int, c *loader.Config) {
		v := "1"
		if i >= 2 {
			v = "2"
		}
		c.EngineVersion = v
		c.EngineConfig = map[string]string{"attr.ver": v}
	}})
}

func once(ctx context.Context, c *asetest.Client, header map[string]any) (*asetest.Response, error) {
	return c.Once(ctx, "echo", asetest.Frame{Status: 3, Header: header, Payload: map[string]asetest.Data{"input": asetest.Text("hi")}})
}

func TestPinnedVersion(t *testing.T) {
	s := start(t)
	c := s.Client()
	for _, v := range []string{"1", "2"} {
		for range 10 {
			r, err := once(t.Context(), c, map[string]any{"engine_version": v})
			if err != nil || r.Header.Code != 0 {
				t.Fatalf("pinned %s: %v %s", v, err, r.Raw)
			}
			if got := r.Attr("input", "ver"); got != `"`+v+`"` {
				t.Fatalf("pinned %s, served by %s", v, got)
			}
		}
	}
	// OIP: the version in the path pins the infer request.
	body := []byte(`{"id":"r1","inputs":[{"name":"input","datatype":"BYTES","shape":[1],"data":["hi"]}]}`)
	for _, v := range []string{"1", "2"} {
		r, err := c.Post(t.Context(), "/v2/models/echo/versions/"+v+"/infer", body)
		if err != nil || r.HTTPStatus != http.StatusOK || !strings.Contains(string(r.Raw), `"ver":"`+v+`"`) {
			t.Fatalf("OIP infer on version %s: %v HTTP %d %s", v, err, r.HTTPStatus, r.Raw)
		}
	}
	if r, err := c.Post(t.Context(), "/v2/models/echo/versions/99/infer", body); err != nil || r.HTTPStatus != http.StatusNotFound {
		t.Fatalf("OIP infer on an unknown version: %v HTTP %d %s", err, r.HTTPStatus, r.Raw)
	}
	get := func(path string) int {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, s.URL()+path, nil)
		asetest.SignHeaders(req, nil, suitetest.DemoApp, time.Now())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for path, want := range map[string]int{
		"/v2/models/echo/versions/2/ready": http.StatusOK, "/v2/models/echo/versions/2": http.StatusOK,
		"/v2/models/echo/versions/99/ready": http.StatusNotFound, "/v2/models/echo/versions/99": http.StatusNotFound,
	} {
		if st := get(path); st != want {
			t.Fatalf("GET %s: HTTP %d, want %d", path, st, want)
		}
	}

	// A version no loader serves: 404, as an unknown capability (atom's 10404).
	r, err := once(t.Context(), c, map[string]any{"engine_version": "99"})
	if err != nil || r.HTTPStatus != http.StatusNotFound {
		t.Fatalf("unknown version: %v HTTP %d %s", err, r.HTTPStatus, r.Raw)
	}
}

// tally counts, per version, the once requests and sessions served under load.
type tally struct {
	mu       sync.Mutex
	by       map[string]int
	failed   atomic.Int64
	errs     []string
	sessions atomic.Int64
}

func (y *tally) reset() map[string]int {
	y.mu.Lock()
	defer y.mu.Unlock()
	out := y.by
	y.by = map[string]int{}
	return out
}

func (y *tally) add(v string) int {
	y.mu.Lock()
	defer y.mu.Unlock()
	y.by[v]++
	n := 0
	for _, k := range y.by {
		n += k
	}
	return n
}

func (y *tally) total() int {
	y.mu.Lock()
	defer y.mu.Unlock()
	n := 0
	for _, k := range y.by {
		n += k
	}
	return n
}

func (y *tally) fail(format string, a ...any) {
	y.failed.Add(1)
	y.mu.Lock()
	if len(y.errs) < 10 {
		y.errs = append(y.errs, fmt.Sprintf(format, a...))
	}
	y.mu.Unlock()
}

func (y *tally) onceLoop(ctx context.Context, wg *sync.WaitGroup, c *asetest.Client) {
	defer wg.Done()
	for ctx.Err() == nil {
		r, err := once(context.Background(), c, nil)
		if err != nil || r.Header.Code != 0 {
			y.fail("once: %v %s", err, r.Raw)
			continue
		}
		y.add(r.Attr("input", "ver"))
	}
}

// sessionLoop runs three-frame sessions; every result of a session must come from the
// version its first result came from.
func (y *tally) sessionLoop(ctx context.Context, wg *sync.WaitGroup, c *asetest.Client) {
	defer wg.Done()
	for ctx.Err() == nil {
		all, err := c.ThreeFrameSession(context.Background(), "echo", []byte("a"), 10*time.Second)
		if err != nil || len(all) != 3 {
			y.fail("session: %v (%d results)", err, len(all))
			continue
		}
		v := all[0].Attr("input", "ver")
		for _, r := range all {
			if r.Header.Code != 0 || r.Attr("input", "ver") != v {
				y.fail("session changed version or failed: %s", r.Raw)
			}
		}
		y.sessions.Add(1)
		y.add(v)
	}
}

func TestCanaryShiftAndRollback(t *testing.T) {
	s := start(t)
	k := config.Key{Project: "asf", Group: "default", Service: "capabilities", Version: "v1", File: "traffic_echo.json"}
	atomAddr := s.Atoms[0].GRPCAddr()
	split := func(v2 int) {
		t.Helper()
		s.PushConfig("capabilities", k.File, fmt.Appendf(nil, `{"versions":{"1":%d,"2":%d}}`, 100-v2, v2))
		f, err := s.Polaris.ConfigCenter().Get(t.Context(), k, config.Caller{})
		if err != nil {
			t.Fatal(err)
		}
		suitetest.WaitFor(t, 10*time.Second, func() bool {
			for _, a := range s.Polaris.ConfigCenter().Applied(k) {
				if a.Revision == f.Revision && a.Applied && a.Addr == atomAddr {
					return true
				}
			}
			return false
		})
	}

	y := &tally{by: map[string]int{}}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	c := s.Client()
	for range 4 {
		wg.Add(1)
		go y.onceLoop(ctx, &wg, c)
	}
	for range 2 {
		wg.Add(1)
		go y.sessionLoop(ctx, &wg, c)
	}
	stopped := false
	stopLoad := func() {
		if !stopped {
			stopped = true
			stop()
			wg.Wait()
		}
	}
	t.Cleanup(stopLoad)

	const samples = 600
	measure := func(want int) {
		t.Helper()
		y.reset()
		suitetest.WaitFor(t, 60*time.Second, func() bool { return y.total() >= samples })
		got := y.reset()
		n := got[`"1"`] + got[`"2"`]
		share := 100 * float64(got[`"2"`]) / float64(n)
		t.Logf("split %3d %%: version 2 served %5.1f %% of %d (%v)", want, share, n, got)
		if math.Abs(share-float64(want)) > 3 {
			t.Fatalf("version 2 served %.1f %%, want %d ± 3", share, want)
		}
	}
	for _, pct := range []int{0, 10, 50, 100} {
		split(pct)
		measure(pct)
	}
	split(0) // rollback: one push
	measure(0)

	stopLoad()
	t.Logf("sessions completed %d, failed %d", y.sessions.Load(), y.failed.Load())
	if n := y.failed.Load(); n != 0 {
		t.Fatalf("%d failed requests or sessions: %q", n, y.errs)
	}
}
