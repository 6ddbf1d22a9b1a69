package transport

import (
	"context"
	"encoding/json"
	"errors"
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
	"github.com/athenaserving/asf/libs/grpcx"
	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
	"github.com/athenaserving/asf/services/webgate/ase"
	"github.com/athenaserving/asf/services/webgate/gate"
	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeAtom is an in-test atom: capability "nope" is unknown (10404), "busy" answers a
// 10110 result, "hang" never answers a stream, anything else echoes.
type fakeAtom struct {
	atompb.UnimplementedAtomServer
	mu        sync.Mutex
	frames    []*atompb.Frame // stream frames, in arrival order
	cancelled atomic.Int32    // streams whose context was cancelled
}

func (f *fakeAtom) Call(_ context.Context, fr *atompb.Frame) (*atompb.Result, error) {
	switch fr.GetCapability() {
	case "nope":
		return nil, grpcx.ToStatus(aserr.ErrNotFound)
	case "gone": // atom reports failures as results too
		return &atompb.Result{Code: 10404, Message: "capability not found", Sid: fr.GetSid()}, nil
	case "busy":
		return &atompb.Result{Code: 10110, Message: "licence not enough", Sid: fr.GetSid()}, nil
	}
	echo := map[string]any{"status": fr.GetStatus(), "app_id": fr.GetHeader()["app_id"], "client_ip": fr.GetHeader()["client_ip"], "params": fr.GetParams()}
	for _, it := range fr.GetPayload() {
		echo[it.GetName()] = string(it.GetData())
	}
	data, _ := json.Marshal(echo)
	return &atompb.Result{
		Sid: fr.GetSid(), Status: 3,
		Payload: []*atompb.Item{{Name: "result", DataType: "text", Attributes: map[string]string{"format": "json", "status": "3"}, Data: data}},
		Timing:  map[string]int64{"atom_ns": 5000, "loader_ns": 4000, "engine_ns": 3000},
	}, nil
}

func (f *fakeAtom) Stream(ss atompb.Atom_StreamServer) error {
	for {
		fr, err := ss.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				<-ss.Context().Done()
			}
			if ss.Context().Err() != nil {
				f.cancelled.Add(1)
			}
			return err
		}
		f.mu.Lock()
		f.frames = append(f.frames, fr)
		f.mu.Unlock()
		switch fr.GetCapability() {
		case "nope":
			return grpcx.ToStatus(aserr.ErrNotFound)
		case "hang":
			continue
		}
		seq := "null" // a frame without data (a WebAPI 2.0 close) has no seq
		if len(fr.GetPayload()) > 0 {
			seq = fr.GetPayload()[0].GetAttributes()["seq"]
		}
		res := &atompb.Result{Sid: fr.GetSid(), Status: fr.GetStatus(), Payload: []*atompb.Item{{
			Name: "result", DataType: "text", Attributes: map[string]string{"format": "json", "status": "1"},
			Data: []byte(`{"seq":` + seq + `}`),
		}}}
		if err := ss.Send(res); err != nil {
			return err
		}
		if fr.GetStatus() == ase.StatusEnd {
			return nil
		}
	}
}

func (f *fakeAtom) frameCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.frames)
}

type edge struct {
	fake *fakeAtom
	h    *Handler
	srv  *httptest.Server
	reg  *prometheus.Registry
}

func startGate(t testing.TB, tweak func(*Options)) *edge {
	t.Helper()
	fake := &fakeAtom{}
	return startGateWith(t, fake, fake, tweak)
}

// startGateWith starts a gate whose atom is atom (fake, or a server built around it).
func startGateWith(t testing.TB, fake *fakeAtom, atom atompb.AtomServer, tweak func(*Options)) *edge {
	t.Helper()
	return startGateLogged(t, fake, atom, tweak, zerolog.New(zerolog.NewTestWriter(t)))
}

// startGateLogged is startGateWith with the gate's logger.
func startGateLogged(t testing.TB, fake *fakeAtom, atom atompb.AtomServer, tweak func(*Options), log zerolog.Logger) *edge {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	gs := grpc.NewServer()
	atompb.RegisterAtomServer(gs, atom)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)

	cc, err := grpcx.Dial(lis.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })

	opts := Options{ReadTimeout: 5 * time.Second, SessionTimeout: 30 * time.Second, MaxBodyBytes: 1 << 20, SIDs: ase.NewSIDGen("ts", "127.0.0.1:1")}
	if tweak != nil {
		tweak(&opts)
	}
	reg := prometheus.NewRegistry()
	h, err := NewHandler(atompb.NewAtomClient(cc), opts, log, reg)
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		h.CloseSessions()
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		assert.NoError(t, h.Wait(ctx))
	})
	return &edge{fake: fake, h: h, srv: srv, reg: reg}
}

func waitFor(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type response struct {
	Header struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Sid     string `json:"sid"`
		Status  *int   `json:"status"`
	} `json:"header"`
	Payload map[string]map[string]json.RawMessage `json:"payload"`
}

func post(t *testing.T, url, body string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, b
}

const onceBody = `{"header":{"appid":"app1","status":3},"parameter":{"echo":{"k":1}},"payload":{"input":{"encoding":"utf8","status":3,"text":"aGVsbG8="}}}`

func TestOnceEcho(t *testing.T) {
	g := startGate(t, nil)
	resp, body := post(t, g.srv.URL+"/v1/private/echo", onceBody)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	assert.Equal(t, "application/json; charset=utf-8", resp.Header.Get("Content-Type"))
	var r response
	require.NoError(t, json.Unmarshal(body, &r))
	assert.Equal(t, 0, r.Header.Code)
	assert.Equal(t, "success", r.Header.Message)
	assert.Len(t, r.Header.Sid, ase.SIDLen)
	assert.True(t, strings.HasPrefix(r.Header.Sid, "ase"))
	require.NotNil(t, r.Header.Status)
	assert.Equal(t, 3, *r.Header.Status)
	// format=json: the engine's JSON is inline, not base64.
	assert.JSONEq(t, `{"status":3,"app_id":"app1","client_ip":"127.0.0.1","params":{"k":"1"},"input":"hello"}`, string(r.Payload["result"]["text"]))
	assert.Equal(t, "3", string(r.Payload["result"]["status"]))

	timing := resp.Header.Get("X-Asf-Timing")
	assert.Regexp(t, `^webgate=\d+;atom=5;loader=4;engine=3$`, timing)

	// The capability may also come from ?serviceId=.
	resp, body = post(t, g.srv.URL+"/v1/private/whatever?serviceId=echo", onceBody)
	assert.Equal(t, http.StatusOK, resp.StatusCode, string(body))

	waitFor(t, time.Second, func() bool { return counter(t, g.reg, "echo", "once", "0") == 2 })
}

func TestOnceErrors(t *testing.T) {
	g := startGate(t, nil)
	cases := []struct {
		name, path, body string
		status, code     int
		mention          string
	}{
		{"bad json", "/v1/private/echo", `{"header":`, 400, 10163, "json"},
		{"bad base64", "/v1/private/echo", `{"payload":{"input":{"audio":"!!"}}}`, 400, 10163, "payload.input.audio"},
		{"engine error", "/v1/private/busy", onceBody, 502, 10110, "licence not enough"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := post(t, g.srv.URL+tc.path, tc.body)
			assert.Equal(t, tc.status, resp.StatusCode)
			var r response
			require.NoError(t, json.Unmarshal(body, &r), string(body))
			assert.Equal(t, tc.code, r.Header.Code)
			assert.Contains(t, r.Header.Message, tc.mention)
			assert.Len(t, r.Header.Sid, ase.SIDLen)
			assert.Nil(t, r.Header.Status, "error responses carry no status")
		})
	}
}

func TestOnceNotFound(t *testing.T) {
	g := startGate(t, nil)
	for _, path := range []string{"/v1/private/nope", "/v1/private/gone", "/other/route", "/v1/private/"} {
		resp, body := post(t, g.srv.URL+path, onceBody)
		assert.Equal(t, http.StatusNotFound, resp.StatusCode, path)
		assert.JSONEq(t, `{"message":"not found"}`, string(body), path)
	}
	assert.Equal(t, 0.0, counter(t, g.reg, "nope", "once", "10404"), "unknown capabilities are not labels")
	assert.Equal(t, 4.0, counter(t, g.reg, "unknown", "once", "10404"), "unknown routes and capabilities alike")
}

func TestOnceBodyLimit(t *testing.T) {
	g := startGate(t, func(o *Options) { o.MaxBodyBytes = 64 })
	resp, body := post(t, g.srv.URL+"/v1/private/echo", onceBody)
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, string(body))
	assert.Contains(t, string(body), `"code":10163`)
}

func TestFrameFilterRejects(t *testing.T) {
	g := startGate(t, func(o *Options) {
		o.Filters = []gate.FrameFilter{func(_ context.Context, f *atompb.Frame, first bool) error {
			if first && f.GetHeader()["app_id"] == "" {
				return aserr.Newf(aserr.ErrAppID.Code, "app_id is empty")
			}
			return nil
		}}
	})
	resp, body := post(t, g.srv.URL+"/v1/private/echo", `{"payload":{"input":{"text":""}}}`)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Contains(t, string(body), `"code":10313`)
}

func dial(t *testing.T, g *edge, capability string) *websocket.Conn {
	t.Helper()
	url := "ws" + strings.TrimPrefix(g.srv.URL, "http") + "/v1/private/" + capability
	conn, resp, err := websocket.DefaultDialer.Dial(url, nil)
	require.NoError(t, err)
	_ = resp.Body.Close()
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func frame(status, seq int) string {
	s := `{"header":{"app_id":"app1","status":` + itoa(status) + `}`
	if status == 0 {
		s += `,"parameter":{"echo":{"eos":1000,"result":{"format":"json"}}}`
	}
	return s + `,"payload":{"input":{"encoding":"raw","status":` + itoa(status) + `,"seq":` + itoa(seq) + `,"audio":"AAEC"}}}`
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func readResponse(t *testing.T, conn *websocket.Conn) response {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	mt, b, err := conn.ReadMessage()
	require.NoError(t, err)
	require.Equal(t, websocket.TextMessage, mt)
	var r response
	require.NoError(t, json.Unmarshal(b, &r), string(b))
	return r
}

func readClose(t *testing.T, conn *websocket.Conn) *websocket.CloseError {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, b, err := conn.ReadMessage()
	var ce *websocket.CloseError
	require.ErrorAs(t, err, &ce, "got message %s", b)
	return ce
}

func TestWebSocketSession(t *testing.T) {
	g := startGate(t, nil)
	conn := dial(t, g, "echo")
	var sid string
	for i, st := range []int{0, 1, 2} {
		require.NoError(t, conn.WriteMessage(websocket.TextMessage, []byte(frame(st, i))))
		r := readResponse(t, conn)
		require.Equal(t, 0, r.Header.Code, r.Header.Message)
		require.NotNil(t, r.Header.Status)
		assert.Equal(t, st, *r.Header.Status)
		assert.JSONEq(t, `{"seq":`+itoa(i)+`}`, string(r.Payload["result"]["text"]))
		if i == 0 {
			sid = r.Header.Sid
			assert.Len(t, sid, ase.SIDLen)
		}
		assert.Equal(t, sid, r.Header.Sid, "one sid per session")
	}
	ce := readClose(t, conn)
	assert.Equal(t, websocket.CloseNormalClosure, ce.Code)

	g.fake.mu.Lock()
	frames := g.fake.frames
	g.fake.mu.Unlock()
	require.Len(t, frames, 3)
	assert.Equal(t, "app1", frames[0].GetHeader()["app_id"])
	assert.Equal(t, "127.0.0.1", frames[0].GetHeader()["client_ip"])
	assert.Equal(t, "1000", frames[0].GetParams()["eos"])
	assert.Equal(t, "json", frames[0].GetAccepts()["result"].GetAttributes()["format"])
	assert.Nil(t, frames[1].GetHeader(), "only the first frame carries the session header")
	for _, f := range frames {
		assert.Equal(t, sid, f.GetSid())
		assert.Equal(t, []byte{0, 1, 2}, f.GetPayload()[0].GetData())
	}
	waitFor(t, 2*time.Second, func() bool { return counter(t, g.reg, "echo", "stream", "0") == 1 })
}

func TestWebSocketReadTimeout(t *testing.T) {
	g := startGate(t, func(o *Options) { o.ReadTimeout = 150 * time.Millisecond })
	conn := dial(t, g, "echo")
	r := readResponse(t, conn)
	assert.Equal(t, aserr.ErrReadTimeout.Code, r.Header.Code)
	assert.Equal(t, aserr.ErrReadTimeout.Msg, r.Header.Message)
	assert.Len(t, r.Header.Sid, ase.SIDLen)
	ce := readClose(t, conn)
	assert.Equal(t, websocket.CloseNormalClosure, ce.Code)
	assert.Equal(t, aserr.ErrReadTimeout.Msg, ce.Text)
}

func TestWebSocketSessionTimeout(t *testing.T) {
	g := startGate(t, func(o *Options) { o.SessionTimeout = 150 * time.Millisecond })
	conn := dial(t, g, "hang")
	require.NoError(t, conn.WriteMessage(websocket.TextMessage, []byte(frame(0, 0))))
	r := readResponse(t, conn)
	assert.Equal(t, aserr.ErrSessionTimeout.Code, r.Header.Code)
	assert.Equal(t, websocket.CloseNormalClosure, readClose(t, conn).Code)
	waitFor(t, 2*time.Second, func() bool { return g.fake.cancelled.Load() == 1 })
}

func TestWebSocketUnknownCapability(t *testing.T) {
	g := startGate(t, nil)
	conn := dial(t, g, "nope")
	require.NoError(t, conn.WriteMessage(websocket.TextMessage, []byte(frame(0, 0))))
	r := readResponse(t, conn)
	assert.Equal(t, aserr.ErrNotFound.Code, r.Header.Code)
	assert.Equal(t, websocket.CloseNormalClosure, readClose(t, conn).Code)
}

func TestWebSocketBadFrame(t *testing.T) {
	g := startGate(t, nil)
	conn := dial(t, g, "echo")
	require.NoError(t, conn.WriteMessage(websocket.TextMessage, []byte(`{"payload":{"input":{"audio":"%%"}}}`)))
	r := readResponse(t, conn)
	assert.Equal(t, aserr.ErrBadRequest.Code, r.Header.Code)
	assert.Contains(t, r.Header.Message, "payload.input.audio")
	ce := readClose(t, conn)
	assert.Equal(t, websocket.CloseNormalClosure, ce.Code)
	assert.Contains(t, ce.Text, "payload.input.audio")
}

func TestWebSocketAbruptCloseCancelsStream(t *testing.T) {
	g := startGate(t, nil)
	conn := dial(t, g, "hang")
	require.NoError(t, conn.WriteMessage(websocket.TextMessage, []byte(frame(0, 0))))
	waitFor(t, 2*time.Second, func() bool { return g.fake.frameCount() == 1 })
	require.NoError(t, conn.UnderlyingConn().Close()) // no close frame
	waitFor(t, 2*time.Second, func() bool { return g.fake.cancelled.Load() == 1 })
	waitFor(t, 2*time.Second, func() bool { return counter(t, g.reg, "unknown", "stream", "10222") == 1 })
}

func TestCloseSessionsGoingAway(t *testing.T) {
	g := startGate(t, nil)
	conn := dial(t, g, "hang")
	require.NoError(t, conn.WriteMessage(websocket.TextMessage, []byte(frame(0, 0))))
	waitFor(t, 2*time.Second, func() bool { return g.fake.frameCount() == 1 })
	g.h.CloseSessions()
	r := readResponse(t, conn)
	assert.Equal(t, gate.ErrShuttingDown.Code, r.Header.Code)
	assert.Equal(t, gate.ErrShuttingDown.Msg, r.Header.Message)
	assert.Equal(t, websocket.CloseGoingAway, readClose(t, conn).Code)
	waitFor(t, 2*time.Second, func() bool { return g.fake.cancelled.Load() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	require.NoError(t, g.h.Wait(ctx))

	_, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(g.srv.URL, "http")+"/v1/private/echo", nil)
	require.Error(t, err, "no new sessions once closing")
	require.NotNil(t, resp)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
}

func counter(t *testing.T, reg *prometheus.Registry, capability, kind, code string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "asf_webgate_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["capability"] == capability && labels["kind"] == kind && labels["code"] == code {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
