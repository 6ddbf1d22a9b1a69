package webgate

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
	"github.com/athenaserving/asf/libs/testpoll"
	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
)

// slowAtom is echoAtom whose Call of capability "slow" answers only once release is closed.
type slowAtom struct {
	echoAtom
	entered chan struct{} // one value per slow call that has arrived
	release chan struct{}
}

func (a *slowAtom) Call(ctx context.Context, f *atompb.Frame) (*atompb.Result, error) {
	if f.GetCapability() == "slow" {
		a.entered <- struct{}{}
		select {
		case <-a.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return a.echoAtom.Call(ctx, f)
}

// TestDrainAnswersNewRequests503WhileInFlightWorkFinishes: during the drain a new once
// request, WebSocket handshake and OIP request each get 503 with 10222 "server shutting
// down", while a once request and a session that were running finish normally; the
// listener closes only after them.
func TestDrainAnswersNewRequests503WhileInFlightWorkFinishes(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	fake := &slowAtom{entered: make(chan struct{}, 1), release: make(chan struct{})}
	gs := grpc.NewServer()
	atompb.RegisterAtomServer(gs, fake)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)

	cfg := testConfig(lis.Addr().String())
	cfg.DrainTimeout = 20 * time.Second
	reg := prometheus.NewRegistry()
	srv, err := New(cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel), reg)
	require.NoError(t, err)
	require.NoError(t, srv.Start(t.Context()))
	base := "http://" + srv.HTTPAddr()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

	// In flight before the drain: a once request held by atom and an open session.
	type answer struct {
		status int
		body   string
		err    error
	}
	slow := make(chan answer, 1)
	go func() {
		resp, err := client.Post(base+"/v1/private/slow", "application/json", strings.NewReader(onceBody("a")))
		if err != nil {
			slow <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		slow <- answer{resp.StatusCode, string(b), err}
	}()
	<-fake.entered
	conn, _, err := dialWS(t, "ws://"+srv.HTTPAddr()+"/v1/private/echo")
	require.NoError(t, err)
	send(t, conn, frame("a", "", 0, 0))
	require.Equal(t, 0, readResponse(t, conn).Header.Code)

	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		stopped <- srv.Shutdown(ctx)
	}()

	// A new once request: 503 with the ASE error body, the connection closed after it.
	var status int
	var body string
	var closed bool
	keepAlive := &http.Client{Transport: &http.Transport{}}
	defer keepAlive.CloseIdleConnections()
	testpoll.Until(t, 5*time.Second, "a new once request refused by the drain", func() bool {
		resp, err := keepAlive.Post(base+"/v1/private/echo", "application/json", strings.NewReader(onceBody("a")))
		require.NoError(t, err, "the listener stays open during the drain")
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		status, body, closed = resp.StatusCode, string(b), resp.Close
		return status == http.StatusServiceUnavailable
	})
	var r response
	require.NoError(t, json.Unmarshal([]byte(body), &r), body)
	assert.Equal(t, 10222, r.Header.Code)
	assert.Equal(t, "server shutting down", r.Header.Message)
	assert.NotEmpty(t, r.Header.Sid)
	assert.True(t, closed, "Connection: close, so the client reconnects (to another replica)")

	// A new WebSocket handshake: 503 with the same body.
	_, resp, err := dialWS(t, "ws://"+srv.HTTPAddr()+"/v1/private/echo")
	require.Error(t, err)
	require.NotNil(t, resp)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	b, _ := io.ReadAll(resp.Body)
	require.NoError(t, json.Unmarshal(b, &r), string(b))
	assert.Equal(t, 10222, r.Header.Code)
	assert.Equal(t, "server shutting down", r.Header.Message)

	// A new OIP request: 503 with OIP's error body.
	resp, err = client.Post(base+"/v2/models/echo/infer", "application/json", strings.NewReader(`{"inputs":[]}`))
	require.NoError(t, err)
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.JSONEq(t, `{"error":"server shutting down"}`, string(b))

	// The running session goes on to its end.
	send(t, conn, frame("a", "", 2, 1))
	last := readResponse(t, conn)
	require.Equal(t, 0, last.Header.Code, last.Header.Message)
	assert.Equal(t, 2, *last.Header.Status)
	assert.Equal(t, websocket.CloseNormalClosure, readClose(t, conn).Code)

	// The held once request completes with its answer.
	select {
	case err := <-stopped:
		t.Fatalf("shutdown returned (%v) while a once request was in flight", err)
	default:
	}
	close(fake.release)
	a := <-slow
	require.NoError(t, a.err)
	assert.Equal(t, http.StatusOK, a.status, a.body)
	require.NoError(t, json.Unmarshal([]byte(a.body), &r), a.body)
	assert.Equal(t, 0, r.Header.Code)

	require.NoError(t, <-stopped)
	_, err = client.Get(base + "/v1/private/echo")
	assert.Error(t, err, "the listener is closed once the drain is over")
	for _, kind := range []string{"once", "stream", "oip"} {
		assert.Equal(t, 1.0, metricValue(t, reg, "asf_webgate_requests_total", map[string]string{"code": "10222", "kind": kind}), kind)
	}
}
