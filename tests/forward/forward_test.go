// Package forward_test runs capabilities served by loaders with the forward engine
// through the whole suite: a third-party API behind the same auth, limits, schema
// validation, load balancing and metrics as a local engine, and every kind of bad
// upstream behaviour reaching the client as a clear code.
package forward_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/testpoll"
	"github.com/athenaserving/asf/services/loader"
	"github.com/athenaserving/asf/tests/asetest"
	"github.com/athenaserving/asf/tests/suitetest"
	"github.com/gorilla/websocket"
)

// writeFile writes content to name in a new temporary directory and returns its path.
func writeFile(t testing.TB, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func text(s string) map[string]asetest.Data { return map[string]asetest.Data{"input": asetest.Text(s)} }

func output(t *testing.T, r *asetest.Response, name string) string {
	t.Helper()
	b, err := r.Bytes(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// forwardLoaders configures loaders from index first on as forward loaders of service
// svc with the spec at *spec (read when the loader starts).
func forwardLoaders(first int, svc string, spec *string) func(int, *loader.Config) {
	return func(i int, c *loader.Config) {
		if i >= first {
			c.Service, c.Engine, c.EnginePath = svc, loader.EngineForward, *spec
		}
	}
}

// The schema of capability fwd: parameter.fwd.lang is en or fr, payload.input is text.
const fwdSchema = `{
  "meta": {"serviceId": "fwd", "version": "v1", "service": ["fwd"],
           "fwd": {"input": {"input": {"dataType": "text"}}, "accept": {"input": {"dataType": "text"}}}},
  "schemainput": {"type": "object", "properties": {
    "parameter": {"type": "object", "properties": {"fwd": {"type": "object",
      "properties": {"lang": {"type": "string", "enum": ["en", "fr"]}}}}},
    "payload": {"type": "object", "required": ["input"], "properties": {"input": {"type": "object", "required": ["text"]}}}}}
}`

// One deployment fronts another: two forward loaders serve capability fwd by calling the
// suite's own webgate (capability echo, served by a local echo loader), signed with
// iFLYTEK's HMAC scheme — the header form for once requests, the URL form for the
// WebSocket. The forwarded capability gets auth, per-app limits, schema validation, load
// balancing over the two loaders, sessions frame by frame, and metrics.
func TestForwardedCapabilityFrontsASF(t *testing.T) {
	var spec string
	s := suitetest.Start(t, suitetest.Options{Loaders: 1, Service: "echo", Loader: forwardLoaders(1, "fwd", &spec)})
	d := suitetest.DemoApp
	ws := "ws" + strings.TrimPrefix(s.URL(), "http")
	spec = writeFile(t, "fwd.yaml", fmt.Sprintf(`
upstreams: [%s/v1/private/echo]
session: {upstreams: [%s/v1/private/echo]}
timeout: 10s
auth: {type: hmac, api_key: %s, api_secret: "env:FWD_TEST_SECRET", app_id: %s}
`, s.URL(), ws, d.APIKey, d.AppID))
	t.Setenv("FWD_TEST_SECRET", d.APISecret)
	s.AddLoader()
	s.AddLoader()
	testpoll.Until(t, 10*time.Second, "two live fwd loaders", func() bool { return s.LB.Live("fwd") == 2 })
	s.PushSchema(writeFile(t, "schema_fwd.json", fwdSchema))
	c := s.Client()
	ctx := t.Context()

	// Once: the answer is the echo engine's, through the upstream webgate.
	r, err := c.Once(ctx, "fwd", asetest.Frame{Status: 3, Header: map[string]any{"uid": "u0"}, Params: map[string]any{"lang": "fr"}, Payload: text("bonjour")})
	if err != nil || r.Header.Code != 0 || r.HTTPStatus != http.StatusOK {
		t.Fatalf("once: %v %s", err, r.Raw)
	}
	if got := output(t, r, "input"); got != "bonjour" {
		t.Fatalf("once output %q", got)
	}
	t.Logf("forwarded once: %s", r.Raw)

	// Load balancing: requests spread over both forward loaders.
	calls := func(i int) float64 {
		return s.Counter(fmt.Sprintf("loader-%d", i), "asf_loader_forward_upstream_calls_total")
	}
	for n := 0; calls(1) == 0 || calls(2) == 0; n++ {
		if n == 50 {
			t.Fatalf("50 requests did not reach both forward loaders: %v and %v calls", calls(1), calls(2))
		}
		r, err := c.Once(ctx, "fwd", asetest.Frame{Status: 3, Header: map[string]any{"uid": fmt.Sprint("u", n)}, Payload: text("x")})
		if err != nil || r.Header.Code != 0 {
			t.Fatalf("once %d: %v %s", n, err, r.Raw)
		}
	}

	// Schema validation happens before the upstream: a bad lang never leaves the suite.
	before := calls(1) + calls(2)
	r, err = c.Once(ctx, "fwd", asetest.Frame{Status: 3, Params: map[string]any{"lang": "xx"}, Payload: text("x")})
	if err != nil || r.Header.Code != 10163 || r.HTTPStatus != http.StatusBadRequest {
		t.Fatalf("schema: %v %s", err, r.Raw)
	}
	if after := calls(1) + calls(2); after != before {
		t.Fatalf("a refused request reached the upstream (%v → %v calls)", before, after)
	}

	// Auth: an unsigned request is refused at the edge.
	r, err = asetest.New(s.URL(), nil).Once(ctx, "fwd", asetest.Frame{Status: 3, Payload: text("x")})
	if err != nil || r.HTTPStatus != http.StatusUnauthorized {
		t.Fatalf("unsigned: %v %d %s", err, r.HTTPStatus, r.Raw)
	}

	// Per-app limits: an app allowed only echo may not use fwd.
	narrow := asetest.Credentials{AppID: "narrow", APIKey: "narrow-key", APISecret: "narrow-secret"}
	s.PushConfig("webgate", "apps.json", fmt.Appendf(nil, `{"apps":[{"app_id":%q,"api_key":%q,"api_secret":%q},
		{"app_id":"narrow","api_key":"narrow-key","api_secret":"narrow-secret","capabilities":["echo"]}]}`, d.AppID, d.APIKey, d.APISecret))
	nc := asetest.New(s.URL(), &narrow)
	testpoll.Until(t, 10*time.Second, "the narrow app accepted for echo", func() bool {
		r, err := nc.Once(ctx, "echo", asetest.Frame{Status: 3, Payload: text("x")})
		return err == nil && r.HTTPStatus == http.StatusOK && r.Header.Code == 0
	})
	r, err = nc.Once(ctx, "fwd", asetest.Frame{Status: 3, Payload: text("x")})
	if err != nil || r.HTTPStatus != http.StatusForbidden || r.Message != "You cannot consume this service" {
		t.Fatalf("narrow app: %v %d %s", err, r.HTTPStatus, r.Raw)
	}

	// A session: each client frame is one upstream frame, each upstream result one result.
	sess, err := c.Stream(ctx, "fwd")
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	for i, st := range []int{0, 1, 2} {
		if err := sess.Send(asetest.Frame{Status: st, Payload: text(fmt.Sprint("part", i)), OnlyPayload: i > 0}); err != nil {
			t.Fatal(err)
		}
		r, err := sess.Recv(10 * time.Second)
		if err != nil || r.Header.Code != 0 || r.StatusValue() != st {
			t.Fatalf("frame %d: %v %s", i, err, r.Raw)
		}
		if got := output(t, r, "input"); got != fmt.Sprint("part", i) {
			t.Fatalf("frame %d output %q", i, got)
		}
	}
	if ce, err := sess.WaitClose(10 * time.Second); err != nil || ce.Code != 1000 {
		t.Fatalf("close: %v %v", ce, err)
	}

	// Metrics: the forward loaders count their upstream calls; the edge counts the requests.
	var ok, ws0 float64
	for _, i := range []int{1, 2} {
		ok += s.Counter(fmt.Sprintf("loader-%d", i), "asf_loader_once_requests_total")
		ws0 += s.Counter(fmt.Sprintf("loader-%d", i), "asf_loader_forward_upstream_calls_total")
	}
	if ok < 2 || ws0 < ok+1 {
		t.Fatalf("loader metrics: %v once requests, %v upstream calls", ok, ws0)
	}
	// Every forwarded call passed the upstream webgate's verifier: the echo loader saw them all.
	if echo := s.Counter("loader-0", "asf_loader_once_requests_total"); echo < ok {
		t.Fatalf("echo loader served %v once requests, forward loaders %v", echo, ok)
	}
}

// newUpstream serves h on 127.0.0.1:0 until the test ends and returns its base URL.
func newUpstream(t testing.TB, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// wsUpstream is a WebSocket API that reads one frame; when its input text is "hold" it
// reports the frame on held and reads on until the connection goes, reporting that on
// gone; otherwise it closes with 1011.
func wsUpstream(held, gone chan<- struct{}) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		up := websocket.Upgrader{}
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		_, msg, err := c.ReadMessage()
		if err != nil {
			return
		}
		if !strings.Contains(string(msg), base64.StdEncoding.EncodeToString([]byte("hold"))) {
			_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseInternalServerErr, "engine crashed"))
			return
		}
		held <- struct{}{}
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				gone <- struct{}{}
				return
			}
		}
	}
}

// failingUpstream is a Go API on 127.0.0.1:0 that answers ASE requests by what their
// input text says: "slow" waits until the caller gives up, "hold" until release is
// closed, "500" fails, "garbage" answers text that is not JSON; anything else is echoed
// as output result. Its /ws is wsUpstream.
type failingUpstream struct {
	url            string
	held           chan struct{}
	release        chan struct{}
	wsHeld, wsGone chan struct{}
}

func startFailing(t *testing.T) *failingUpstream {
	t.Helper()
	u := &failingUpstream{held: make(chan struct{}, 8), release: make(chan struct{}),
		wsHeld: make(chan struct{}, 1), wsGone: make(chan struct{}, 1)}
	ws := wsUpstream(u.wsHeld, u.wsGone)
	u.url = newUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ws" {
			ws(w, r)
			return
		}
		var doc struct {
			Payload map[string]map[string]any `json:"payload"`
		}
		if err := json.NewDecoder(r.Body).Decode(&doc); err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		_, _ = io.Copy(io.Discard, r.Body) // read to the end: the server then notices a caller leaving
		in, _ := doc.Payload["input"]["text"].(string)
		b, _ := base64.StdEncoding.DecodeString(in)
		switch string(b) {
		case "slow":
			<-r.Context().Done()
			return
		case "hold":
			u.held <- struct{}{}
			select {
			case <-u.release:
			case <-r.Context().Done():
				return
			}
		case "500":
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		case "garbage":
			fmt.Fprint(w, `{"header":{"code":0},"payload":`)
			return
		}
		fmt.Fprintf(w, `{"header":{"code":0,"status":3},"payload":{"result":{"encoding":"utf8","text":%q}}}`, in)
	}))
	return u
}

// refusedURL is a URL on 127.0.0.1 where nothing listens.
func refusedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return "http://" + addr + "/api"
}

// Bad upstream behaviour, each through the whole suite: a timeout, a 5xx, a malformed
// answer, a refused connection, a slow upstream holding the only licence slot (10110 for
// the next request, the slot freed after), a WebSocket closing mid-session. Each gives
// the client a code and a message naming no address, and nothing hangs: with a licence
// of 1, every request after a failure finds the slot free.
func TestForwardUpstreamFailures(t *testing.T) {
	up := startFailing(t)
	spec := writeFile(t, "bad.yaml", fmt.Sprintf(`
upstreams: [%s/api]
session: {upstreams: [%s/ws]}
timeout: 300ms
retries: 1
`, up.url, "ws"+strings.TrimPrefix(up.url, "http")))
	downSpec := writeFile(t, "down.yaml", fmt.Sprintf("upstreams: [%s, %s]\n", refusedURL(t), refusedURL(t)))
	s := suitetest.Start(t, suitetest.Options{Loaders: 1, Licence: 1, Service: "bad", Engine: loader.EngineForward,
		Loader: func(i int, c *loader.Config) {
			c.EnginePath = spec
			if i == 1 {
				c.Service, c.EnginePath = "down", downSpec
			}
		}})
	s.AddLoader()
	testpoll.Until(t, 10*time.Second, "one live down loader", func() bool { return s.LB.Live("down") == 1 })
	c := s.Client()
	ctx := t.Context()
	call := func(capability, in string) *asetest.Response {
		t.Helper()
		r, err := c.Once(ctx, capability, asetest.Frame{Status: 3, Payload: text(in)})
		if err != nil {
			t.Fatalf("%s %q: %v", capability, in, err)
		}
		return r
	}
	okCall := func(what string) {
		t.Helper()
		if r := call("bad", "fine"); r.Header.Code != 0 || output(t, r, "result") != "fine" {
			t.Fatalf("after %s: the next request failed (slot not freed?): %s", what, r.Raw)
		}
	}
	okCall("start")
	for _, tc := range []struct {
		capability, in string
		code, status   int
		msg            string
	}{
		{"bad", "slow", 10225, http.StatusBadGateway, "upstream did not answer within 300ms"},
		{"bad", "500", 10226, http.StatusBadGateway, "upstream answered HTTP 500 Internal Server Error"},
		{"bad", "garbage", 10160, http.StatusBadGateway, "upstream answer is not valid JSON"},
		{"down", "x", 10224, http.StatusBadGateway, "upstream refused the connection or could not be reached"},
	} {
		r := call(tc.capability, tc.in)
		if r.Header.Code != tc.code || r.HTTPStatus != tc.status || !strings.Contains(r.Header.Message, tc.msg) {
			t.Fatalf("%s %q: got %d %d %q, want %d %d with %q", tc.capability, tc.in, r.HTTPStatus, r.Header.Code, r.Header.Message, tc.status, tc.code, tc.msg)
		}
		if m := internalDetail.FindString(r.Header.Message); m != "" {
			t.Fatalf("%s: message %q carries %q", tc.in, r.Header.Message, m)
		}
		t.Logf("%-7s → %d %s", tc.in, r.Header.Code, r.Header.Message)
		okCall(tc.in)
	}

	// A slow upstream holds the only slot: the next request gets 10110 at once.
	held := make(chan *asetest.Response, 1)
	go func() {
		r, err := c.Once(ctx, "bad", asetest.Frame{Status: 3, Payload: text("hold")})
		if err != nil {
			r = &asetest.Response{Raw: []byte(err.Error())}
		}
		held <- r
	}()
	wait(t, up.held, "held request at the upstream")
	if r := call("bad", "fine"); r.Header.Code != 10110 {
		t.Fatalf("licence full: %s", r.Raw)
	}
	close(up.release)
	if r := <-held; r.Header.Code != 0 || output(t, r, "result") != "hold" {
		t.Fatalf("held request: %s", r.Raw)
	}
	okCall("the held request")

	// A WebSocket upstream that closes mid-session: one error frame, then close 1000.
	sess, err := c.Stream(ctx, "bad")
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if err := sess.Send(asetest.Frame{Status: 0, Payload: text("a")}); err != nil {
		t.Fatal(err)
	}
	r, err := sess.Recv(10 * time.Second)
	if err != nil || r.Header.Code != 10227 || !strings.Contains(r.Header.Message, "upstream closed the session before its end (close 1011, engine crashed)") {
		t.Fatalf("session: %v %s", err, r.Raw)
	}
	t.Logf("session → %d %s", r.Header.Code, r.Header.Message)
	if ce, err := sess.WaitClose(10 * time.Second); err != nil || ce.Code != 1000 {
		t.Fatalf("close: %v %v", ce, err)
	}
	okCall("the closed session")

	// A client that drops its socket mid-session: the upstream WebSocket is closed and the
	// slot freed.
	sess, err = c.Stream(ctx, "bad")
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.Send(asetest.Frame{Status: 0, Payload: text("hold")}); err != nil {
		t.Fatal(err)
	}
	wait(t, up.wsHeld, "the session's first frame at the upstream")
	_ = sess.Abort()
	wait(t, up.wsGone, "the upstream WebSocket closed after the client left")
	testpoll.Until(t, 10*time.Second, "no session open on the loader", func() bool { return sessionsActive(t, s.Loaders[0].AdminAddr()) == "0" })
	okCall("the aborted session")
}

// sessionsActive is asf_loader_sessions_active of the loader whose admin address is addr.
func sessionsActive(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "asf_loader_sessions_active "); ok {
			return v
		}
	}
	return ""
}

// wait fails the test unless ch delivers within 10 s.
func wait(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s within 10s", what)
	}
}

// internalDetail matches what must never reach a public client: addresses, transport
// errors, Go-rendered codes.
var internalDetail = regexp.MustCompile(`\d{1,3}(\.\d{1,3}){3}|:\d{2,5}\b|(?i)dial tcp|connection refused|rpc error|\(code \d+\)`)
