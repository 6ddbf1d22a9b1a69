package webgate

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echoAtom answers once requests with their first payload item and holds streams open
// until the client goes away.
type echoAtom struct {
	atompb.UnimplementedAtomServer
	streams chan struct{}
}

func (a *echoAtom) Call(_ context.Context, f *atompb.Frame) (*atompb.Result, error) {
	return &atompb.Result{Sid: f.GetSid(), Status: 3, Payload: f.GetPayload()}, nil
}

func (a *echoAtom) Stream(ss atompb.Atom_StreamServer) error {
	a.streams <- struct{}{}
	for {
		if _, err := ss.Recv(); err != nil {
			if errors.Is(err, io.EOF) {
				<-ss.Context().Done()
			}
			return err
		}
	}
}

func startAtom(t *testing.T) (string, *echoAtom) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	fake := &echoAtom{streams: make(chan struct{}, 4)}
	gs := grpc.NewServer()
	atompb.RegisterAtomServer(gs, fake)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	return lis.Addr().String(), fake
}

func testConfig(atomAddr string) Config {
	cfg := DefaultConfig()
	cfg.HTTPListen, cfg.AdminListen, cfg.AtomAddr = "127.0.0.1:0", "127.0.0.1:0", atomAddr
	return cfg
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func TestServerLifecycle(t *testing.T) {
	atomAddr, fake := startAtom(t)
	srv, err := New(testConfig(atomAddr), zerolog.New(zerolog.NewTestWriter(t)), prometheus.NewRegistry())
	require.NoError(t, err)
	assert.False(t, srv.Ready())
	require.NoError(t, srv.Start(t.Context()))
	assert.True(t, srv.Ready())

	code, _ := get(t, "http://"+srv.AdminAddr()+"/readyz")
	assert.Equal(t, http.StatusOK, code)

	resp, err := http.Post("http://"+srv.HTTPAddr()+"/v1/private/echo", "application/json",
		strings.NewReader(`{"header":{"app_id":"a"},"payload":{"input":{"encoding":"utf8","text":"aGk="}}}`))
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	assert.Contains(t, string(body), `"payload":{"input":{"encoding":"utf8","text":"aGk="}}`)

	_, metrics := get(t, "http://"+srv.AdminAddr()+"/metrics")
	assert.Contains(t, metrics, `asf_webgate_requests_total{capability="echo",code="0",kind="once"} 1`)

	conn, wsResp, err := websocket.DefaultDialer.Dial("ws://"+srv.HTTPAddr()+"/v1/private/echo", nil)
	require.NoError(t, err)
	_ = wsResp.Body.Close()
	defer conn.Close()
	require.NoError(t, conn.WriteMessage(websocket.TextMessage, []byte(`{"header":{"app_id":"a","status":0},"payload":{"input":{"audio":""}}}`)))
	select {
	case <-fake.streams:
	case <-time.After(5 * time.Second):
		t.Fatal("atom stream not opened")
	}
	_, metrics = get(t, "http://"+srv.AdminAddr()+"/metrics")
	assert.Contains(t, metrics, "asf_webgate_sessions_active 1")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, srv.Shutdown(ctx))
	assert.False(t, srv.Ready())
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err = conn.ReadMessage()
	var ce *websocket.CloseError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, websocket.CloseGoingAway, ce.Code)

	_, err = http.Get("http://" + srv.HTTPAddr() + "/v1/private/echo")
	assert.Error(t, err, "listener closed")
	require.NoError(t, srv.Shutdown(ctx), "idempotent")
	http.DefaultClient.CloseIdleConnections()
}

func TestShutdownWithoutStart(t *testing.T) {
	srv, err := New(testConfig("127.0.0.1:1"), zerolog.Nop(), prometheus.NewRegistry())
	require.NoError(t, err)
	require.NoError(t, srv.Shutdown(context.Background()))
}

func TestConfigValidation(t *testing.T) {
	cfg := testConfig("")
	_, err := New(cfg, zerolog.Nop(), nil)
	assert.Error(t, err)
	cfg = testConfig("127.0.0.1:1")
	cfg.ReadTimeout = 0
	_, err = New(cfg, zerolog.Nop(), nil)
	assert.Error(t, err)
}
