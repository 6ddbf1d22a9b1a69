package security

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/athenaserving/asf/tests/asetest"
	"github.com/athenaserving/asf/tests/suitetest"
	"github.com/gorilla/websocket"
)

// webgatePublic calls every public route of webgate without a valid signature: each is
// refused with the ASE edge's status and message (docs/protocol.md, "Authentication"),
// and none reaches atom. The OIP health probes alone answer without one.
func webgatePublic(t *testing.T, s *suitetest.Suite) {
	base := s.URL()
	body := suitetest.DemoApp
	frame := asetest.Frame{Status: 3, Payload: map[string]asetest.Data{"input": asetest.Text("x")}}.JSON("echo", body.AppID)
	wrong := suitetest.DemoApp
	wrong.APISecret = "not-the-secret"
	unknown := asetest.Credentials{AppID: "nobody", APIKey: "no-key", APISecret: "no-secret"}
	type sign func(req *http.Request, b []byte)
	unsigned := func(*http.Request, []byte) {}
	with := func(c asetest.Credentials, at time.Time) sign {
		return func(req *http.Request, b []byte) { asetest.SignHeaders(req, b, c, at) }
	}
	urlForm := func(c asetest.Credentials) sign {
		return func(req *http.Request, _ []byte) {
			u, err := asetest.SignURL(req.URL.String(), req.Method, c, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			req.URL, _ = req.URL.Parse(u)
		}
	}
	garbage := func(req *http.Request, _ []byte) {
		req.Header.Set("Date", time.Now().UTC().Format(http.TimeFormat))
		req.Header.Set("Authorization", `hmac api_key="x", signature="y"`)
	}
	const (
		unauthorized = "Unauthorized"
		cannot       = "HMAC signature cannot be verified"
		mismatch     = "HMAC signature does not match"
	)
	routes := []struct{ method, path string }{
		{http.MethodPost, "/v1/private/echo"},
		{http.MethodPost, "/v2/models/echo/infer"},
		{http.MethodPost, "/v2/models/echo/versions/1/infer"},
		{http.MethodGet, "/v2/models/echo"},
		{http.MethodGet, "/v2/models/echo/ready"},
	}
	signs := []struct {
		name   string
		sign   sign
		status int
		msg    string
	}{
		{"unsigned", unsigned, 401, unauthorized},
		{"garbage-authorization", garbage, 401, cannot},
		{"unknown-app", with(unknown, time.Now()), 401, cannot},
		{"wrong-secret", with(wrong, time.Now()), 401, mismatch},
		{"wrong-secret-url-form", urlForm(wrong), 401, mismatch},
		{"expired-date", with(suitetest.DemoApp, time.Now().Add(-time.Hour)), 403, "HMAC signature cannot be verified, a valid date"},
	}
	calls := func() float64 { return s.Counter("atom-0", "asf_atom_grpc_calls_total") }
	before := calls()
	n := 0
	for _, r := range routes {
		for _, sg := range signs {
			var b []byte
			if r.method == http.MethodPost {
				b = frame
			}
			req, err := http.NewRequestWithContext(t.Context(), r.method, base+r.path, bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			sg.sign(req, b)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			rb, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var m struct {
				Message string `json:"message"`
			}
			if resp.StatusCode != sg.status || json.Unmarshal(rb, &m) != nil || !strings.HasPrefix(m.Message, sg.msg) {
				t.Errorf("%s %s %s: HTTP %d %s, want %d %q", r.method, r.path, sg.name, resp.StatusCode, rb, sg.status, sg.msg)
			}
			n++
		}
	}
	// WebSocket sessions (plain and multiplexed) are refused at the upgrade.
	for _, path := range []string{"/v1/private/echo", "/v1/private/echo?stream_mode=multiplex"} {
		for _, sg := range signs[:4] {
			req, _ := http.NewRequest(http.MethodGet, base+path, nil)
			sg.sign(req, nil)
			ws := "ws" + strings.TrimPrefix(req.URL.String(), "http")
			conn, resp, err := websocket.DefaultDialer.DialContext(t.Context(), ws, req.Header)
			if err == nil {
				conn.Close()
				t.Errorf("WebSocket %s %s: upgraded", path, sg.name)
				continue
			}
			if resp == nil || resp.StatusCode != sg.status || !errors.Is(err, websocket.ErrBadHandshake) {
				t.Errorf("WebSocket %s %s: %v, want HTTP %d", path, sg.name, err, sg.status)
			}
			n++
		}
	}
	if after := calls(); after != before {
		t.Errorf("refused requests reached atom: %v calls", after-before)
	}
	// The probes answer unsigned, by design (load balancers and kubelets call them).
	for _, p := range []string{"/v2/health/live", "/v2/health/ready", "/v2"} {
		resp, err := http.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("probe %s: HTTP %d", p, resp.StatusCode)
		}
	}
	t.Logf("%d unsigned or mis-signed public requests refused", n)
}
