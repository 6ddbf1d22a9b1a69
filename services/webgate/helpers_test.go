package webgate

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
	polarispb "github.com/athenaserving/asf/libs/proto/polaris/v1"
	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
)

// echoAtom echoes: Call returns the frame's payload with status 3; Stream answers every
// frame with its payload and the frame's status and ends after status 2. Capability "hang"
// never answers a stream. It counts streams opened and streams whose context was cancelled.
type echoAtom struct {
	atompb.UnimplementedAtomServer
	opened    atomic.Int32
	cancelled atomic.Int32
	mu        sync.Mutex
	calls     []*atompb.Frame
}

func (a *echoAtom) Call(_ context.Context, f *atompb.Frame) (*atompb.Result, error) {
	a.mu.Lock()
	a.calls = append(a.calls, f)
	a.mu.Unlock()
	return &atompb.Result{Sid: f.GetSid(), Status: 3, Payload: f.GetPayload()}, nil
}

func (a *echoAtom) lastCall() *atompb.Frame {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.calls) == 0 {
		return nil
	}
	return a.calls[len(a.calls)-1]
}

func (a *echoAtom) Stream(ss atompb.Atom_StreamServer) error {
	a.opened.Add(1)
	for {
		f, err := ss.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				<-ss.Context().Done()
			}
			if ss.Context().Err() != nil {
				a.cancelled.Add(1)
			}
			return err
		}
		if f.GetCapability() == "hang" {
			continue
		}
		if err := ss.Send(&atompb.Result{Sid: f.GetSid(), Status: f.GetStatus(), Payload: f.GetPayload()}); err != nil {
			return err
		}
		if f.GetStatus() == 2 {
			return nil
		}
	}
}

func startAtom(t *testing.T) (string, *echoAtom) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	fake := &echoAtom{}
	gs := grpc.NewServer()
	atompb.RegisterAtomServer(gs, fake)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	return lis.Addr().String(), fake
}

// fakePolaris is an in-test polaris config center: files by (service, file), prefix and
// exact watches, apply reports.
type fakePolaris struct {
	polarispb.UnimplementedConfigServer
	mu      sync.Mutex
	rev     int64
	files   map[string]*polarispb.ConfigFile // service/file
	watches map[*watch]bool
	reports []*polarispb.ReportAppliedRequest
	// registry answers List from the instances set with setLoaders.
	registry fakeRegistry
}

// fakeRegistry is polaris's registry as far as webgate asks it: List by service.
type fakeRegistry struct {
	polarispb.UnimplementedRegistryServer
	mu        sync.Mutex
	instances map[string][]*polarispb.InstanceState // by service
}

// setLoaders makes service's registered loaders the given states.
func (r *fakeRegistry) setLoaders(service string, states ...*polarispb.InstanceState) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.instances == nil {
		r.instances = map[string][]*polarispb.InstanceState{}
	}
	r.instances[service] = states
}

func (r *fakeRegistry) List(_ context.Context, req *polarispb.ListRequest) (*polarispb.ListResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return &polarispb.ListResponse{Instances: r.instances[req.GetService()]}, nil
}

// loaderState is a registered provider of service at engine version, live or not.
func loaderState(service, version, addr string, live bool) *polarispb.InstanceState {
	l := int32(0)
	if live {
		l = 1
	}
	return &polarispb.InstanceState{
		Instance: &polarispb.Instance{Service: service, Version: version, Addr: addr, Kind: "provider"},
		Load:     &polarispb.Load{Total: 4, Idle: 4, Live: l},
	}
}

type watch struct {
	key    *polarispb.ConfigKey
	prefix bool
	ch     chan *polarispb.ConfigEvent
}

func (w *watch) matches(k *polarispb.ConfigKey) bool {
	if k.GetService() != w.key.GetService() {
		return false
	}
	if w.prefix {
		return strings.HasPrefix(k.GetFile(), w.key.GetFile())
	}
	return k.GetFile() == w.key.GetFile()
}

func startPolaris(t *testing.T) (string, *fakePolaris) {
	t.Helper()
	fp := &fakePolaris{files: map[string]*polarispb.ConfigFile{}, watches: map[*watch]bool{}}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	gs := grpc.NewServer()
	polarispb.RegisterConfigServer(gs, fp)
	polarispb.RegisterRegistryServer(gs, &fp.registry)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	return lis.Addr().String(), fp
}

func (p *fakePolaris) Watch(req *polarispb.WatchConfigRequest, ss polarispb.Config_WatchServer) error {
	w := &watch{key: req.GetKey(), prefix: req.GetPrefix(), ch: make(chan *polarispb.ConfigEvent, 16)}
	snap := &polarispb.ConfigEvent{Type: polarispb.ConfigEvent_TYPE_SNAPSHOT}
	p.mu.Lock()
	for _, f := range p.files {
		if w.matches(f.GetKey()) {
			snap.Files = append(snap.Files, f)
		}
	}
	p.watches[w] = true
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.watches, w)
		p.mu.Unlock()
	}()
	if err := ss.Send(snap); err != nil {
		return err
	}
	for {
		select {
		case ev := <-w.ch:
			if err := ss.Send(ev); err != nil {
				return err
			}
		case <-ss.Context().Done():
			return nil
		}
	}
}

func (p *fakePolaris) ReportApplied(_ context.Context, req *polarispb.ReportAppliedRequest) (*polarispb.ReportAppliedResponse, error) {
	p.mu.Lock()
	p.reports = append(p.reports, req)
	p.mu.Unlock()
	return &polarispb.ReportAppliedResponse{}, nil
}

// push stores content as a new revision of service/file and notifies watchers; it
// returns the revision.
func (p *fakePolaris) push(service, file, content string) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rev++
	f := &polarispb.ConfigFile{Key: &polarispb.ConfigKey{Project: "asf", Group: "default", Service: service, Version: "v1", File: file}, Content: []byte(content), Revision: p.rev}
	p.files[service+"/"+file] = f
	for w := range p.watches {
		if w.matches(f.GetKey()) {
			w.ch <- &polarispb.ConfigEvent{Type: polarispb.ConfigEvent_TYPE_UPDATED, Files: []*polarispb.ConfigFile{f}}
		}
	}
	return p.rev
}

func (p *fakePolaris) report(rev int64) *polarispb.ReportAppliedRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.reports {
		if r.GetRevision() == rev {
			return r
		}
	}
	return nil
}

func testConfig(atomAddr string) Config {
	cfg := DefaultConfig()
	cfg.HTTPListen, cfg.AdminListen, cfg.AtomAddr = "127.0.0.1:0", "127.0.0.1:0", atomAddr
	cfg.DrainTimeout = 50 * time.Millisecond
	cfg.Auth = "off"
	return cfg
}

type env struct {
	srv     *Server
	atom    *echoAtom
	polaris *fakePolaris
	reg     *prometheus.Registry
}

// start runs a webgate with a fake atom and a fake polaris holding files (service/file →
// content) before start.
func start(t *testing.T, tweak func(*Config), files map[string]string) *env {
	t.Helper()
	atomAddr, fake := startAtom(t)
	polAddr, fp := startPolaris(t)
	for k, v := range files {
		svc, file, _ := strings.Cut(k, "/")
		fp.push(svc, file, v)
	}
	cfg := testConfig(atomAddr)
	cfg.Polaris = polAddr
	cfg.DataDir = t.TempDir()
	cfg.Auth = "on"
	if tweak != nil {
		tweak(&cfg)
	}
	reg := prometheus.NewRegistry()
	srv, err := New(cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel), reg)
	require.NoError(t, err)
	require.NoError(t, srv.Start(t.Context()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, srv.Shutdown(ctx))
		http.DefaultClient.CloseIdleConnections()
	})
	return &env{srv: srv, atom: fake, polaris: fp, reg: reg}
}

type creds struct{ key, secret string }

// signURL adds the URL-parameter HMAC authorization to rawURL (spec §5).
func signURL(t *testing.T, rawURL, method string, c creds, now time.Time) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	date := now.UTC().Format(http.TimeFormat)
	origin := "host: " + u.Host + "\ndate: " + date + "\n" + method + " " + u.EscapedPath() + " HTTP/1.1"
	m := hmac.New(sha256.New, []byte(c.secret))
	m.Write([]byte(origin))
	sig := base64.StdEncoding.EncodeToString(m.Sum(nil))
	authz := fmt.Sprintf(`api_key="%s", algorithm="hmac-sha256", headers="host date request-line", signature="%s"`, c.key, sig)
	q := u.Query()
	q.Set("authorization", base64.StdEncoding.EncodeToString([]byte(authz)))
	q.Set("date", date)
	q.Set("host", u.Host)
	u.RawQuery = q.Encode()
	return u.String()
}

func post(t *testing.T, u, body string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Post(u, "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b), resp.Header
}

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func dialWS(t *testing.T, u string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	conn, resp, err := websocket.DefaultDialer.Dial(u, nil)
	if resp != nil && resp.Body != nil {
		t.Cleanup(func() { _ = resp.Body.Close() })
	}
	if conn != nil {
		t.Cleanup(func() { _ = conn.Close() })
	}
	return conn, resp, err
}

type response struct {
	Header struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Sid     string `json:"sid"`
		Cid     string `json:"cid"`
		Status  *int   `json:"status"`
	} `json:"header"`
	Payload map[string]map[string]json.RawMessage `json:"payload"`
}

func readResponse(t *testing.T, conn *websocket.Conn) response {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, b, err := conn.ReadMessage()
	require.NoError(t, err)
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

func send(t *testing.T, conn *websocket.Conn, msg string) {
	t.Helper()
	require.NoError(t, conn.WriteMessage(websocket.TextMessage, []byte(msg)))
}

func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue next
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return 0
}
