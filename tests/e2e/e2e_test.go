// Package e2e holds the cross-service tests: all five services in one process, driven
// through webgate like a real client (signed HTTP and WebSocket, tests/asetest).
package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/athenaserving/asf/tests/asetest"
	"github.com/athenaserving/asf/tests/suitetest"
)

func onceFrame(text string) asetest.Frame {
	return asetest.Frame{Status: 3, Header: map[string]any{"uid": "u1"}, Payload: map[string]asetest.Data{"input": asetest.Text(text)}}
}

func once(t *testing.T, c *asetest.Client, text string) *asetest.Response {
	t.Helper()
	r, err := c.Once(t.Context(), "echo", onceFrame(text))
	if err != nil {
		t.Fatalf("once: %v", err)
	}
	return r
}

func mustOK(t *testing.T, r *asetest.Response, what string) {
	t.Helper()
	if r.HTTPStatus != http.StatusOK || r.Header.Code != 0 || r.Header.Sid == "" {
		t.Fatalf("%s: HTTP %d %s", what, r.HTTPStatus, r.Raw)
	}
}

func TestOnceOverHTTP(t *testing.T) {
	s := suitetest.Start(t, suitetest.Options{Loaders: 2})
	r := once(t, s.Client(), "hello athena")
	mustOK(t, r, "once")
	if b, err := r.Bytes("input"); err != nil || string(b) != "hello athena" {
		t.Fatalf("echo = %q, %v", b, err)
	}
	if r.StatusValue() != 3 {
		t.Fatalf("status = %d, want 3", r.StatusValue())
	}
	// polaris records who uses what: atom is a consumer of echo (never routed to).
	suitetest.WaitFor(t, 5*time.Second, func() bool {
		for _, st := range s.Polaris.Registry().List("echo") {
			if st.Instance.Kind == "consumer" && st.Instance.Addr == s.Atoms[0].GRPCAddr() {
				return true
			}
		}
		return false
	})
	if got := s.LB.Live("echo"); got != 2 {
		t.Fatalf("lbclient routes to %d echo instances, want the 2 loaders only", got)
	}
}

func TestErrorsAtTheEdge(t *testing.T) {
	s := suitetest.Start(t, suitetest.Options{Loaders: 1})
	c := s.Client()
	r, err := c.Once(t.Context(), "nosuch", onceFrame("x"))
	if err != nil {
		t.Fatal(err)
	}
	if r.HTTPStatus != http.StatusNotFound || r.Message != "not found" {
		t.Fatalf("unknown capability: %d %s", r.HTTPStatus, r.Raw)
	}
	r, err = c.Post(t.Context(), asetest.Route("echo"), []byte(`{"header":`))
	if err != nil {
		t.Fatal(err)
	}
	if r.HTTPStatus != http.StatusBadRequest || r.Header.Code != 10163 || r.Header.Sid == "" {
		t.Fatalf("bad json: %d %s", r.HTTPStatus, r.Raw)
	}
	// Unsigned and wrongly signed requests never reach atom.
	r, err = asetest.New(s.URL(), nil).Once(t.Context(), "echo", onceFrame("x"))
	if err != nil {
		t.Fatal(err)
	}
	if r.HTTPStatus != http.StatusUnauthorized || r.Message != "Unauthorized" {
		t.Fatalf("unsigned: %d %s", r.HTTPStatus, r.Raw)
	}
	bad := suitetest.DemoApp
	bad.APISecret = "wrong"
	r, err = asetest.New(s.URL(), &bad).Once(t.Context(), "echo", onceFrame("x"))
	if err != nil {
		t.Fatal(err)
	}
	if r.HTTPStatus != http.StatusUnauthorized || r.Message != "HMAC signature does not match" {
		t.Fatalf("bad signature: %d %s", r.HTTPStatus, r.Raw)
	}
	// The body's app_id must be the authenticated app.
	f := onceFrame("x")
	f.AppID = "someone-else"
	r, err = c.Once(t.Context(), "echo", f)
	if err != nil {
		t.Fatal(err)
	}
	if r.Header.Code != 10313 {
		t.Fatalf("foreign app_id: %d %s", r.HTTPStatus, r.Raw)
	}
}

// streamSession runs one signed WebSocket session of three frames (status 0, 1, 2) against
// echo and returns the result statuses; every result must echo its frame under one sid.
func streamSession(t *testing.T, c *asetest.Client) []int {
	t.Helper()
	ss, err := c.Stream(t.Context(), "echo")
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	for i, st := range []int{0, 1, 2} {
		f := asetest.Frame{Status: st, Seq: asetest.Int(i), OnlyPayload: i > 0,
			Payload: map[string]asetest.Data{"input": asetest.Audio([]byte(fmt.Sprintf("frame-%d", i)))}}
		if err := ss.Send(f); err != nil {
			t.Fatal(err)
		}
	}
	all, err := ss.RecvUntilEnd(10 * time.Second)
	if err != nil {
		t.Fatalf("session: %v", err)
	}
	var statuses []int
	for i, r := range all {
		if r.Header.Code != 0 || r.Header.Sid == "" || r.Header.Sid != all[0].Header.Sid {
			t.Fatalf("result %d: %s", i, r.Raw)
		}
		if b, _ := r.Bytes("input"); string(b) != fmt.Sprintf("frame-%d", i) {
			t.Fatalf("result %d = %q", i, b)
		}
		statuses = append(statuses, r.StatusValue())
	}
	if ce, err := ss.WaitClose(5 * time.Second); err != nil || ce.Code != 1000 {
		t.Fatalf("close: %v %v", ce, err)
	}
	return statuses
}

func TestStreamOverWebSocket(t *testing.T) {
	s := suitetest.Start(t, suitetest.Options{Loaders: 2})
	if got := fmt.Sprint(streamSession(t, s.Client())); got != "[0 1 2]" {
		t.Fatalf("statuses = %v, want [0 1 2]", got)
	}
}

// Two atom replicas behind one webgate: sessions spread over both, each served by one.
func TestTwoAtomReplicas(t *testing.T) {
	s := suitetest.Start(t, suitetest.Options{Loaders: 2, Atoms: 2})
	const n = 20
	for i := 0; i < n; i++ {
		if got := fmt.Sprint(streamSession(t, s.Client())); got != "[0 1 2]" {
			t.Fatalf("session %d statuses = %v", i, got)
		}
	}
	// atom counts a session once its stream has ended, which may be just after the
	// client has read the final frame.
	var a, b float64
	suitetest.WaitFor(t, 5*time.Second, func() bool {
		a = s.Counter("atom-0", "asf_atom_sessions_total")
		b = s.Counter("atom-1", "asf_atom_sessions_total")
		return a+b >= n
	})
	if a+b != n || a == 0 || b == 0 {
		t.Fatalf("sessions per atom replica: %v and %v of %d", a, b, n)
	}
	t.Logf("atom-0 served %v sessions, atom-1 %v", a, b)
}

// A client that drops its socket mid-session frees the loader's licence slot at once:
// with licence 1 the next session succeeds.
func TestAbortedSessionFreesLoaderSlot(t *testing.T) {
	s := suitetest.Start(t, suitetest.Options{Loaders: 1, Licence: 1})
	c := s.Client()
	ss, err := c.Stream(t.Context(), "echo")
	if err != nil {
		t.Fatal(err)
	}
	if err := ss.Send(asetest.Frame{Status: 0, Payload: map[string]asetest.Data{"input": asetest.Audio([]byte("a"))}}); err != nil {
		t.Fatal(err)
	}
	if r, err := ss.Recv(5 * time.Second); err != nil || r.Header.Code != 0 {
		t.Fatalf("first result: %v %v", r, err)
	}
	// The slot is taken: a once request is refused with 10110.
	if r := once(t, c, "busy"); r.Header.Code != 10110 {
		t.Fatalf("with the slot taken: %s", r.Raw)
	}
	if err := ss.Abort(); err != nil {
		t.Fatal(err)
	}
	suitetest.WaitFor(t, 5*time.Second, func() bool {
		return once(t, c, "free").Header.Code == 0
	})
	if got := fmt.Sprint(streamSession(t, c)); got != "[0 1 2]" {
		t.Fatalf("next session: %v", got)
	}
}

func TestOnceSpreadsOverLoadersAndSurvivesLoaderDeath(t *testing.T) {
	s := suitetest.Start(t, suitetest.Options{Loaders: 2})
	c := s.Client()
	const n = 200
	for i := 0; i < n; i++ {
		mustOK(t, once(t, c, fmt.Sprint("req-", i)), fmt.Sprint("request ", i))
	}
	a := s.Counter("loader-0", "asf_loader_once_requests_total")
	b := s.Counter("loader-1", "asf_loader_once_requests_total")
	if a+b != n || a < 0.3*n || b < 0.3*n {
		t.Fatalf("spread: loader0=%v loader1=%v of %d (each must serve ≥30%%)", a, b, n)
	}

	s.Loaders[0].Kill()
	killed := time.Now()
	// Requests keep succeeding while the dead loader is still in the view: atom retries
	// on the other one.
	for i := 0; i < 20; i++ {
		mustOK(t, once(t, c, "after-kill"), fmt.Sprint("after kill ", i))
	}
	suitetest.WaitFor(t, 5*time.Second, func() bool { return s.LB.Live("echo") == 1 })
	left := time.Since(killed)
	t.Logf("killed loader left rotation after %s", left.Round(time.Millisecond))
	if left > 3500*time.Millisecond {
		t.Fatalf("killed loader left rotation after %s, want ≤ 3 s", left)
	}
	before := s.Counter("loader-1", "asf_loader_once_requests_total")
	for i := 0; i < 20; i++ {
		mustOK(t, once(t, c, "after-evict"), fmt.Sprint("after evict ", i))
	}
	if got := s.Counter("loader-1", "asf_loader_once_requests_total") - before; got != 20 {
		t.Fatalf("surviving loader served %v of 20", got)
	}
}

// OIP v2 (KServe/Triton REST) is a second front door to the same pipeline.
func TestOIPInferThroughSuite(t *testing.T) {
	s := suitetest.Start(t, suitetest.Options{Loaders: 1, Webgate: nil})
	c := s.Client()
	for _, path := range []string{"/v2/health/live", "/v2/health/ready"} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, s.URL()+path, nil)
		signed, err := asetest.SignURL(req.URL.String(), http.MethodGet, suitetest.DemoApp, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get(signed)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
	}
	body := `{"id":"r1","inputs":[{"name":"input","datatype":"BYTES","shape":[1],"data":["hello oip"]}]}`
	r, err := c.Post(context.Background(), "/v2/models/echo/infer", []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if r.HTTPStatus != http.StatusOK || !strings.Contains(string(r.Raw), "hello oip") {
		t.Fatalf("infer: %d %s", r.HTTPStatus, r.Raw)
	}
}
