package forward

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/athenaserving/asf/services/loader/engine"
	"github.com/gorilla/websocket"
)

// wsUpstream is a WebSocket API on 127.0.0.1:0. By path: /echo answers every ASE
// frame with its payload and status (closing normally after status 2); /closemid closes
// with 1011 after the first frame; /silent never answers; /bye closes normally after the
// last frame without a last result; /garbage answers text that is not JSON. It records
// the first message and the handshake's query.
type wsUpstream struct {
	url   string
	first atomic.Value // string
	query atomic.Value // string
	auth  atomic.Value // string: the handshake's Authorization|X-Tenant
}

func startWS(t *testing.T) *wsUpstream {
	t.Helper()
	u := &wsUpstream{}
	up := websocket.Upgrader{}
	srv := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/busy" {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		u.query.Store(r.URL.RawQuery)
		u.auth.Store(r.Header.Get("Authorization") + "|" + r.Header.Get("X-Tenant"))
		for i := 0; ; i++ {
			_, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if i == 0 {
				u.first.Store(string(msg))
			}
			var f struct {
				Header  struct{ Status int } `json:"header"`
				Payload map[string]any       `json:"payload"`
			}
			_ = json.Unmarshal(msg, &f)
			switch r.URL.Path {
			case "/closemid":
				_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseInternalServerErr, "engine crashed"))
				return
			case "/silent":
				continue
			case "/garbage":
				_ = c.WriteMessage(websocket.TextMessage, []byte("<html>oops</html>"))
				continue
			case "/bye":
				if f.Header.Status == 2 {
					_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
					return
				}
				continue
			}
			b, _ := json.Marshal(map[string]any{"header": map[string]any{"code": 0, "status": f.Header.Status}, "payload": f.Payload})
			if err := c.WriteMessage(websocket.TextMessage, b); err != nil {
				return
			}
			if f.Header.Status == 2 {
				_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
				return
			}
		}
	})
	u.url = "ws" + strings.TrimPrefix(srv.URL, "http")
	return u
}

// results collects a session's results.
type results chan engine.Result

func (rs results) emit(r engine.Result) { rs <- r }

func (rs results) next(t *testing.T) engine.Result {
	t.Helper()
	select {
	case r := <-rs:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no result")
	}
	return engine.Result{}
}

func frame(status engine.Status, s string) engine.Frame {
	return engine.Frame{Status: status, Inputs: []engine.Payload{{Meta: engine.Meta{Name: "audio", Type: engine.DataAudio}, Data: []byte(s)}}}
}

func openSession(t *testing.T, e *Engine) (engine.Session, results) {
	t.Helper()
	rs := make(results, 16)
	s, err := e.NewSession(context.Background(), engine.SessionParams{Tag: "sid9",
		Headers: map[string]string{"app_id": "app1", "capability": "iat"}, Params: map[string]string{"lang": "en"}}, rs.emit)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, rs
}

// Frames go out one message each; every upstream message is one result; the last one
// (status 2) ends the session.
func TestSessionFrameByFrame(t *testing.T) {
	u := startWS(t)
	e, reg := newEngine(t, `{headers: {X-Tenant: acme}, auth: {type: bearer, token: t9}, session: {upstreams: ["%s/echo"], request: {mapping: [{data_type: audio, rule: [
		{src: $.header, dst: $.body.header}, {src: $.payload, dst: $.body.payload}, {src: $.parameter.iat.lang, dst: $.query.lang}]}]}}}`, u.url)
	s, rs := openSession(t, e)
	ctx := context.Background()
	for i, st := range []engine.Status{engine.StatusBegin, engine.StatusContinue, engine.StatusEnd} {
		if err := s.Write(ctx, frame(st, fmt.Sprint("chunk", i))); err != nil {
			t.Fatal(err)
		}
		r := rs.next(t)
		if r.Err != nil || r.Status != st || len(r.Outputs) != 1 || string(r.Outputs[0].Data) != fmt.Sprint("chunk", i) || r.Outputs[0].Type != engine.DataAudio {
			t.Fatalf("frame %d: result %+v", i, r)
		}
	}
	var first map[string]any
	_ = json.Unmarshal([]byte(u.first.Load().(string)), &first)
	if h, _ := first["header"].(map[string]any); h["app_id"] != "app1" || h["status"] != float64(0) {
		t.Fatalf("first message %v", first)
	}
	if u.auth.Load().(string) != "Bearer t9|acme" {
		t.Fatalf("handshake headers %q", u.auth.Load())
	}
	if u.query.Load().(string) != "lang=en" {
		t.Fatalf("handshake query %q", u.query.Load())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if counter(t, reg, "asf_loader_forward_upstream_calls_total", "kind", "ws", "outcome", "ok") != 1 {
		t.Fatal("ws handshake not counted")
	}
}

// Later frames carry status and payload only, without the session's header and parameter.
func TestSessionLaterFramesCarryPayloadOnly(t *testing.T) {
	c := call{capability: "iat", headers: map[string]string{"app_id": "a"}, params: map[string]string{"x": "1"}, status: engine.StatusContinue}
	s := &Spec{}
	b, _ := json.Marshal(s.engineDoc(c))
	if string(b) != `{"header":{"status":1}}` {
		t.Fatalf("later frame %s", b)
	}
}

func TestSessionUpstreamFailures(t *testing.T) {
	u := startWS(t)
	for _, tc := range []struct {
		name, path, spec string
		frames           []engine.Status
		code             int
		msg              string
	}{
		{"closed mid-session", "/closemid", "", []engine.Status{engine.StatusBegin}, 10227,
			"upstream closed the session before its end (close 1011, engine crashed)"},
		{"silent after the last frame", "/silent", "timeout: 150ms", []engine.Status{engine.StatusBegin, engine.StatusEnd}, 10225,
			"upstream sent no last result within 150ms of the last frame"},
		{"malformed message", "/garbage", "", []engine.Status{engine.StatusBegin}, 10160, "upstream answer is not valid JSON"},
		{"oversized message", "/echo", "max-response-bytes: 40", []engine.Status{engine.StatusBegin}, 10160, "upstream message larger than 40 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, _ := newEngine(t, `{session: {upstreams: ["%s%s"]}, %s}`, u.url, tc.path, tc.spec)
			s, rs := openSession(t, e)
			for _, st := range tc.frames {
				if err := s.Write(context.Background(), frame(st, "data")); err != nil {
					t.Fatal(err)
				}
			}
			r := rs.next(t)
			wantCode(t, r.Err, tc.code, tc.msg)
			_ = s.Close()
			select {
			case r := <-rs:
				t.Fatalf("a result after the terminal one: %+v", r)
			default:
			}
		})
	}
}

// An upstream that closes normally after the last frame ends the session with an END result.
func TestSessionNormalCloseAfterLastFrame(t *testing.T) {
	u := startWS(t)
	e, _ := newEngine(t, `{session: {upstreams: ["%s/bye"]}}`, u.url)
	s, rs := openSession(t, e)
	for _, st := range []engine.Status{engine.StatusBegin, engine.StatusEnd} {
		if err := s.Write(context.Background(), frame(st, "x")); err != nil {
			t.Fatal(err)
		}
	}
	if r := rs.next(t); r.Err != nil || r.Status != engine.StatusEnd {
		t.Fatalf("result %+v", r)
	}
}

func TestSessionHandshakeFailures(t *testing.T) {
	u := startWS(t)
	e, reg := newEngine(t, `{session: {upstreams: ["%s/busy", "%s"]}, retries: 1}`, u.url, refusedURL(t, "ws"))
	_, err := e.NewSession(context.Background(), engine.SessionParams{}, func(engine.Result) {})
	if err == nil {
		t.Fatal("session opened")
	}
	// Whichever upstream comes first, the other one is tried once.
	if c := counter(t, reg, "asf_loader_forward_upstream_retries_total"); c != 1 {
		t.Fatalf("retries %v", c)
	}
	e, _ = newEngine(t, `{session: {upstreams: ["%s"]}}`, refusedURL(t, "ws"))
	_, err = e.NewSession(context.Background(), engine.SessionParams{}, func(engine.Result) {})
	wantCode(t, err, 10224, "upstream refused the connection")
	e, _ = newEngine(t, `{session: {upstreams: ["%s/busy"]}, retries: 0}`, u.url)
	_, err = e.NewSession(context.Background(), engine.SessionParams{}, func(engine.Result) {})
	wantCode(t, err, 10226, "upstream refused the WebSocket handshake with HTTP 503")
	e, _ = newEngine(t, `{upstreams: [http://127.0.0.1:1/x]}`)
	_, err = e.NewSession(context.Background(), engine.SessionParams{}, func(engine.Result) {})
	wantCode(t, err, 10003, "no session upstream configured")
}

// webapiSpec fronts an iFLYTEK WebAPI 2.0 streaming API (docs/protocol.md, "Forwarding
// to a third-party API", the WebSocket example).
const webapiSpec = `
session:
  upstreams: ["%s/v2/iat"]
  request:
    mapping:
      - data_type: audio
        rule:
          - {src: $.header.app_id, dst: $.body.common.app_id}
          - {src: $.parameter.iat.language, dst: $.body.business.language}
          - {src: $.header.status, dst: $.body.data.status}
          - {src: $.payload.audio.audio, dst: $.body.data.audio}
          - {value: raw, dst: $.body.data.encoding}
          - {value: "audio/L16;rate=16000", dst: $.body.data.format}
  response:
    mapping:
      - data_type: text
        rule:
          - {src: $.body.code, dst: $.header.code}
          - {src: $.body.message, dst: $.header.message}
          - {src: $.body.data.status, dst: $.header.status}
          - {src: $.body.data.result, dst: $.payload.result.text}
`

func TestSessionWebAPI2Upstream(t *testing.T) {
	var first atomic.Value
	up := websocket.Upgrader{}
	srv := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for i := 0; ; i++ {
			_, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if i == 0 {
				first.Store(string(msg))
			}
			var f struct {
				Data struct {
					Status int    `json:"status"`
					Audio  string `json:"audio"`
				} `json:"data"`
			}
			_ = json.Unmarshal(msg, &f)
			if f.Data.Audio == "" && f.Data.Status != 2 {
				_ = c.WriteJSON(map[string]any{"code": 10163, "message": "data.audio is required", "sid": "up1"})
				continue
			}
			_ = c.WriteJSON(map[string]any{"code": 0, "message": "success", "sid": "up1",
				"data": map[string]any{"status": f.Data.Status, "result": map[string]any{"ws": []any{map[string]any{"w": f.Data.Audio}}}}})
			if f.Data.Status == 2 {
				return
			}
		}
	})
	e, _ := newEngine(t, webapiSpec, "ws"+strings.TrimPrefix(srv.URL, "http"))
	rs := make(results, 16)
	s, err := e.NewSession(context.Background(), engine.SessionParams{Headers: map[string]string{"app_id": "app1", "capability": "iat"},
		Params: map[string]string{"language": "en_us"}}, rs.emit)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i, st := range []engine.Status{engine.StatusBegin, engine.StatusContinue, engine.StatusEnd} {
		if err := s.Write(context.Background(), frame(st, fmt.Sprint("pcm", i))); err != nil {
			t.Fatal(err)
		}
		r := rs.next(t)
		want := fmt.Sprintf(`{"ws":[{"w":%q}]}`, base64.StdEncoding.EncodeToString([]byte(fmt.Sprint("pcm", i))))
		if r.Err != nil || r.Status != st || len(r.Outputs) != 1 || string(r.Outputs[0].Data) != want || r.Outputs[0].Attrs["format"] != "json" {
			t.Fatalf("frame %d: %+v", i, r)
		}
	}
	want := `{"business":{"language":"en_us"},"common":{"app_id":"app1"},"data":{"audio":"cGNtMA==","encoding":"raw","format":"audio/L16;rate=16000","status":0}}`
	if got := first.Load().(string); got != want {
		t.Fatalf("first upstream frame\n got %s\nwant %s", got, want)
	}
	// A WebAPI 2.0 error answer ends the session with its code.
	s2, err := e.NewSession(context.Background(), engine.SessionParams{}, rs.emit)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if err := s2.Write(context.Background(), engine.Frame{Status: engine.StatusBegin}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, rs.next(t).Err, 10163, "upstream: data.audio is required")
}
