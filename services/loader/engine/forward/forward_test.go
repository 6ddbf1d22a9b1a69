package forward

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/sdk/go/ase"
	"github.com/athenaserving/asf/services/loader/engine"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newEngine parses spec (with %s replaced by args) and returns an initialised engine
// finalised at cleanup, and its metrics registry.
func newEngine(t *testing.T, spec string, args ...any) (*Engine, *prometheus.Registry) {
	t.Helper()
	s, err := ParseSpec([]byte(fmt.Sprintf(spec, args...)), env)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	e := New(Options{Spec: s, Service: "svc", Licence: 4, Log: zerolog.Nop(), Registry: reg})
	if err := e.Init(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Fini(context.Background()) })
	return e, reg
}

// upstream starts an HTTP server on 127.0.0.1:0 closed at cleanup.
func upstream(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// refusedURL is a URL on 127.0.0.1 where nothing listens.
func refusedURL(t *testing.T, scheme string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return scheme + "://" + addr + "/api"
}

func textReq(s string) engine.Request {
	return engine.Request{
		Tag:     "sid1",
		Headers: map[string]string{"capability": "translate", "app_id": "app1", "sid": "sid1"},
		Params:  map[string]string{"to": "fr"},
		Expect:  []engine.Meta{{Name: "result", Attrs: map[string]string{"encoding": "utf8"}}},
		Inputs:  []engine.Payload{{Meta: engine.Meta{Name: "text", Type: engine.DataText, Attrs: map[string]string{"encoding": "utf8"}}, Data: []byte(s)}},
	}
}

func counter(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue metric
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

func wantCode(t *testing.T, err error, code int, msg string) {
	t.Helper()
	if aserr.CodeOf(err) != code || !strings.Contains(aserr.MessageOf(err), msg) {
		t.Fatalf("got %v (code %d), want code %d with %q", err, aserr.CodeOf(err), code, msg)
	}
}

// Without rules the upstream gets the ASE request document and answers an ASE response.
func TestOnceASEDocuments(t *testing.T) {
	var got map[string]any
	srv := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "POST" || r.Header.Get("Content-Type") != "application/json" || r.Header.Get("X-Tenant") != "acme" {
			http.Error(w, "bad request line", http.StatusBadRequest)
			return
		}
		_ = json.NewDecoder(r.Body).Decode(&got)
		fmt.Fprintf(w, `{"header":{"code":0,"message":"success","sid":"up1","status":3},
			"payload":{"result":{"encoding":"utf8","seq":7,"text":%q},"boxes":{"format":"json","text":{"n":[1,2]}}}}`,
			base64.StdEncoding.EncodeToString([]byte("bonjour")))
	})
	e, reg := newEngine(t, `{upstreams: [%s], headers: {X-Tenant: acme}}`, srv.URL)
	req := textReq("hello")
	req.Expect = nil
	resp, err := e.Once(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"header":{"app_id":"app1","capability":"translate","sid":"sid1","status":3},` +
		`"parameter":{"translate":{"to":"fr"}},"payload":{"text":{"encoding":"utf8","text":"aGVsbG8="}}}`
	if b, _ := json.Marshal(got); string(b) != want {
		t.Fatalf("upstream body\n got %s\nwant %s", b, want)
	}
	if len(resp.Outputs) != 2 {
		t.Fatalf("outputs %+v", resp.Outputs)
	}
	boxes, result := resp.Outputs[0], resp.Outputs[1]
	if result.Name != "result" || string(result.Data) != "bonjour" || result.Attrs["seq"] != "7" || result.Type != engine.DataText {
		t.Fatalf("result %+v", result)
	}
	if boxes.Name != "boxes" || string(boxes.Data) != `{"n":[1,2]}` || boxes.Attrs["format"] != "json" {
		t.Fatalf("boxes %+v %s", boxes, boxes.Data)
	}
	if n := counter(t, reg, "asf_loader_forward_upstream_calls_total", "kind", "http", "outcome", "ok"); n != 1 {
		t.Fatalf("ok calls %v", n)
	}
}

// Rules map the engine request to a plain JSON API (body, query, headers) and its
// answer back; a bearer token is sent.
func TestOnceMappedPlainAPI(t *testing.T) {
	srv := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Q    string `json:"q"`
			Opts struct {
				Case string `json:"case"`
			} `json:"opts"`
		}
		_ = json.NewDecoder(r.Body).Decode(&in)
		if r.Header.Get("Authorization") != "Bearer t1" || r.URL.Query().Get("to") != "fr" || r.Header.Get("X-App") != "app1" {
			http.Error(w, `{"error":"unauthorised"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("X-Model", "m7")
		_ = json.NewEncoder(w).Encode(map[string]any{"translation": strings.ToUpper(in.Q) + "/" + in.Opts.Case, "score": 0.5})
	})
	e, _ := newEngine(t, `
upstreams: [%s]
auth: {type: bearer, token: "env:FWD_TOKEN"}
text: plain
request:
  mapping:
    - data_type: text
      rule:
        - {src: $.payload.text.text, dst: $.body.q}
        - {value: {case: upper}, dst: $.body.opts}
        - {src: $.parameter.translate.to, dst: $.query.to}
        - {src: $.header.app_id, dst: $.headers.X-App}
response:
  mapping:
    - data_type: text
      rule:
        - {src: $.body.translation, dst: $.payload.result.text}
        - {src: $.body.score, dst: $.payload.result.score}
        - {src: $.headers.X-Model, dst: $.payload.result.model}
        - {value: utf8, dst: $.payload.result.encoding}
`, srv.URL)
	resp, err := e.Once(context.Background(), textReq("hello"))
	if err != nil {
		t.Fatal(err)
	}
	o := resp.Outputs
	if len(o) != 1 || o[0].Name != "result" || string(o[0].Data) != "HELLO/upper" || o[0].Attrs["score"] != "0.5" ||
		o[0].Attrs["model"] != "m7" || o[0].Attrs["encoding"] != "utf8" {
		t.Fatalf("outputs %+v", o)
	}
}

// The header-form HMAC signature verifies with the credentials and covers the body.
func TestOnceHMACHeaderForm(t *testing.T) {
	srv := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		origin := ase.SignatureOrigin(r.Host, r.Header.Get("Date"), r.Method, r.URL.EscapedPath(), ase.Digest(body), "host", "date", "request-line", "digest")
		if r.Header.Get("Digest") != ase.Digest(body) ||
			!strings.Contains(r.Header.Get("Authorization"), `signature="`+ase.Signature("s3cret", origin)+`"`) ||
			!strings.Contains(r.Header.Get("Authorization"), `api_key="k1"`) {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"message":"HMAC signature does not match"}`)
			return
		}
		fmt.Fprint(w, `{"header":{"code":0},"payload":{"result":{"text":"b2s="}}}`)
	})
	e, _ := newEngine(t, `{upstreams: [%s/v1/private/echo], auth: {type: hmac, api_key: k1, api_secret: s3cret, app_id: up}}`, srv.URL)
	resp, err := e.Once(context.Background(), textReq("x"))
	if err != nil {
		t.Fatal(err)
	}
	if string(resp.Outputs[0].Data) != "ok" {
		t.Fatalf("outputs %+v", resp.Outputs)
	}
}

// Connect errors and 5xx answers are retried on the next upstream; a success ends it.
func TestOnceFailover(t *testing.T) {
	var calls atomic.Int32
	good := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		fmt.Fprint(w, `{"header":{"code":0},"payload":{}}`)
	})
	busy := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
	})
	e, reg := newEngine(t, `{upstreams: [%s, %s, %s], retries: 2}`, refusedURL(t, "http"), busy.URL, good.URL)
	// Whatever upstream a call starts at, it ends at the good one within 3 attempts.
	for i := 0; i < 3; i++ {
		if _, err := e.Once(context.Background(), textReq("x")); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if calls.Load() != 3 {
		t.Fatalf("good upstream got %d calls", calls.Load())
	}
	// Starts at 0: 2 retries; at 1: 1; at 2: 0.
	if n := counter(t, reg, "asf_loader_forward_upstream_retries_total"); n != 3 {
		t.Fatalf("retries %v", n)
	}
	if counter(t, reg, "asf_loader_forward_upstream_calls_total", "outcome", "connect_error") != 1 ||
		counter(t, reg, "asf_loader_forward_upstream_calls_total", "outcome", "error_status") != 2 {
		t.Fatal("outcome counts")
	}
}

func TestOnceErrors(t *testing.T) {
	var fiveXX atomic.Int32
	cases := []struct {
		name    string
		handler http.HandlerFunc
		spec    string
		code    int
		msg     string
	}{
		{"5xx after retries", func(w http.ResponseWriter, r *http.Request) {
			fiveXX.Add(1)
			http.Error(w, "boom", http.StatusInternalServerError)
		}, `{upstreams: [%s], retries: 2}`, 10226, "upstream answered HTTP 500 Internal Server Error"},
		{"4xx not retried", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusNotFound) },
			`{upstreams: [%s]}`, 10226, "upstream answered HTTP 404 Not Found"},
		{"malformed JSON", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"header":{"code":0},`) },
			`{upstreams: [%s]}`, 10160, "upstream answer is not valid JSON"},
		{"not an ASE object", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `[1,2]`) },
			`{upstreams: [%s]}`, 10160, "upstream answer is a list, not an ASE response object"},
		{"bad base64", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"payload":{"r":{"text":"!!"}}}`) },
			`{upstreams: [%s]}`, 10160, "payload.r.text is not base64"},
		{"too large", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, `{"payload":{"r":{"text":"aGVsbG8gd29ybGQ="}}}`)
		},
			`{upstreams: [%s], max-response-bytes: 16}`, 10160, "upstream answer larger than 16 bytes"},
		{"upstream code passes", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"header":{"code":10163,"message":"invalid request: bad text","sid":"x"}}`)
		}, `{upstreams: [%s]}`, 10163, "upstream: invalid request: bad text"},
		{"upstream unavailable code", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, `{"header":{"code":10222,"message":"network error"}}`)
		}, `{upstreams: [%s]}`, 10226, "upstream answered code 10222 (network error)"},
		{"mapped code", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, `{"code":"11200","message":"quota"}`)
		}, `{upstreams: [%s], response: {mapping: [{data_type: text, rule: [{src: $.body.code, dst: $.header.code}, {src: $.body.message, dst: $.header.message}]}]}}`,
			11200, "upstream: quota"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := upstream(t, tc.handler)
			e, _ := newEngine(t, tc.spec, srv.URL)
			_, err := e.Once(context.Background(), textReq("x"))
			wantCode(t, err, tc.code, tc.msg)
		})
	}
	if fiveXX.Load() != 3 {
		t.Fatalf("5xx upstream called %d times, want 3 (1 + 2 retries)", fiveXX.Load())
	}
}

func TestOnceConnectionRefused(t *testing.T) {
	e, reg := newEngine(t, `{upstreams: [%s, %s], retries: 3}`, refusedURL(t, "http"), refusedURL(t, "http"))
	_, err := e.Once(context.Background(), textReq("x"))
	wantCode(t, err, 10224, "upstream refused the connection or could not be reached")
	if n := counter(t, reg, "asf_loader_forward_upstream_calls_total", "outcome", "connect_error"); n != 4 {
		t.Fatalf("attempts %v, want 4", n)
	}
}

// A slow upstream ends the call with 10225 after the spec's timeout; the upstream
// handler sees its request cancelled (nothing hangs).
func TestOnceTimeout(t *testing.T) {
	cancelled := make(chan struct{})
	var once sync.Once
	srv := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // the server notices the client leaving once the body is read
		<-r.Context().Done()
		once.Do(func() { close(cancelled) })
	})
	e, reg := newEngine(t, `{upstreams: [%s], timeout: 100ms}`, srv.URL)
	_, err := e.Once(context.Background(), textReq("x"))
	wantCode(t, err, 10225, "upstream did not answer within 100ms")
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream request was not cancelled")
	}
	if counter(t, reg, "asf_loader_forward_upstream_calls_total", "outcome", "timeout") != 1 {
		t.Fatal("timeout not counted")
	}
	// The caller's own deadline is not the upstream's timeout: it passes as it is.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = e.Once(ctx, textReq("x"))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestOnceGETAndState(t *testing.T) {
	srv := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "GET" || r.ContentLength > 0 {
			http.Error(w, "want GET without body", http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, `{"v":%q}`, r.URL.Query().Get("q"))
	})
	e, _ := newEngine(t, `{upstreams: ["%s?k=1"], method: GET, text: plain,
		request: {mapping: [{data_type: text, rule: [{src: $.payload.text.text, dst: $.query.q}]}]},
		response: {mapping: [{data_type: text, rule: [{src: $.body.v, dst: $.payload.result.text}]}]}}`, srv.URL)
	resp, err := e.Once(context.Background(), textReq("hi there"))
	if err != nil || string(resp.Outputs[0].Data) != "hi there" {
		t.Fatalf("%v %+v", err, resp.Outputs)
	}
	// Session-only specs refuse once requests; a finalised engine refuses everything.
	ws, _ := newEngine(t, `{session: {upstreams: [ws://127.0.0.1:1/x]}}`)
	_, err = ws.Once(context.Background(), textReq("x"))
	wantCode(t, err, 10003, "no HTTP upstream configured")
	_ = e.Fini(context.Background())
	_, err = e.Once(context.Background(), textReq("x"))
	wantCode(t, err, 10101, "")
}

// Several upstreams share the calls: each call starts at the next one.
func TestOnceSpread(t *testing.T) {
	var a, b atomic.Int32
	answer := func(n *atomic.Int32) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			n.Add(1)
			fmt.Fprint(w, `{"header":{"code":0},"payload":{}}`)
		}
	}
	ua, ub := upstream(t, answer(&a)), upstream(t, answer(&b))
	e, _ := newEngine(t, `{upstreams: [%s, %s]}`, ua.URL, ub.URL)
	for i := 0; i < 6; i++ {
		if _, err := e.Once(context.Background(), textReq("x")); err != nil {
			t.Fatal(err)
		}
	}
	if a.Load() != 3 || b.Load() != 3 {
		t.Fatalf("calls %d and %d, want 3 and 3", a.Load(), b.Load())
	}
}

// The URL form signs the request line in the query, as an ASE client does.
func TestOnceHMACURLForm(t *testing.T) {
	srv := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		authz, _ := base64.StdEncoding.DecodeString(q.Get("authorization"))
		sig := ase.Signature("s3cret", ase.SignatureOrigin(q.Get("host"), q.Get("date"), r.Method, r.URL.EscapedPath(), ""))
		if q.Get("host") != r.Host || !strings.Contains(string(authz), `signature="`+sig+`"`) || r.Header.Get("Authorization") != "" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, `{"payload":{"result":{"text":"b2s="}}}`)
	})
	e, _ := newEngine(t, `{upstreams: [%s/v1/private/echo], auth: {type: hmac, api_key: k1, api_secret: s3cret, form: url}}`, srv.URL)
	if _, err := e.Once(context.Background(), textReq("x")); err != nil {
		t.Fatal(err)
	}
}
