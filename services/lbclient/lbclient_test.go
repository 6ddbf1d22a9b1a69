package lbclient_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/grpcx"
	"github.com/athenaserving/asf/libs/lbpick"
	"github.com/athenaserving/asf/libs/natsbus"
	lbpb "github.com/athenaserving/asf/libs/proto/lb/v1"
	polarispb "github.com/athenaserving/asf/libs/proto/polaris/v1"
	"github.com/athenaserving/asf/libs/testpoll"
	"github.com/athenaserving/asf/services/lbclient"
	"github.com/athenaserving/asf/services/lbclient/transport"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakePolaris answers Registry.Info and Registry.List from fields set by the test.
type fakePolaris struct {
	polarispb.UnimplementedRegistryServer
	mu        sync.Mutex
	natsURL   string
	instances []*polarispb.InstanceState
}

func (f *fakePolaris) Info(context.Context, *polarispb.InfoRequest) (*polarispb.InfoResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &polarispb.InfoResponse{NatsUrl: f.natsURL, SubjectPrefix: "asf"}, nil
}

func (f *fakePolaris) List(context.Context, *polarispb.ListRequest) (*polarispb.ListResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &polarispb.ListResponse{Instances: f.instances}, nil
}

func serve(t testing.TB, ln net.Listener, f *fakePolaris) {
	t.Helper()
	gs := grpc.NewServer()
	polarispb.RegisterRegistryServer(gs, f)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = gs.Serve(ln)
	}()
	t.Cleanup(func() {
		gs.Stop()
		<-done
	})
}

func state(svc, addr string, idle, live int32, seq uint64) *polarispb.InstanceState {
	return &polarispb.InstanceState{
		Instance: &polarispb.Instance{Service: svc, Addr: addr, Kind: "provider"},
		Load:     &polarispb.Load{Total: 4, Best: 4, Idle: idle, Live: live},
		Seq:      seq,
	}
}

func testConfig(polaris string) lbclient.Config {
	cfg := lbclient.DefaultConfig()
	cfg.GRPCListen = "127.0.0.1:0"
	cfg.AdminListen = "127.0.0.1:0"
	cfg.PolarisAddr = polaris
	cfg.TLS.Insecure = true // the test NATS servers accept any client
	return cfg
}

func startServer(t testing.TB, cfg lbclient.Config) *lbclient.Server {
	t.Helper()
	srv, err := lbclient.New(cfg, zerolog.Nop(), prometheus.NewRegistry())
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, srv.Start(ctx))
	t.Cleanup(func() { require.NoError(t, srv.Shutdown(context.Background())) })
	return srv
}

// startWithLoaders starts an embedded NATS server, a fake polaris holding instances and
// an lbclient on both; everything stops at cleanup.
func startWithLoaders(t testing.TB, instances ...*polarispb.InstanceState) (*lbclient.Server, *natsbus.Embedded) {
	t.Helper()
	return startConfigured(t, func(*lbclient.Config) {}, instances...)
}

// startConfigured is startWithLoaders with the lbclient's config changed by configure.
func startConfigured(t testing.TB, configure func(*lbclient.Config), instances ...*polarispb.InstanceState) (*lbclient.Server, *natsbus.Embedded) {
	t.Helper()
	emb, err := natsbus.StartEmbedded("127.0.0.1:0", zerolog.Nop())
	require.NoError(t, err)
	t.Cleanup(emb.Shutdown)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	serve(t, ln, &fakePolaris{natsURL: emb.ClientURL(), instances: instances})
	cfg := testConfig(ln.Addr().String())
	configure(&cfg)
	return startServer(t, cfg), emb
}

// pickClient opens an lbpick client with streams PickStreams to srv and waits for them.
func pickClient(t *testing.T, srv *lbclient.Server, streams int) *lbpick.Client {
	t.Helper()
	cc, err := grpcx.Dial(srv.GRPCAddr())
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })
	c := lbpick.New(cc, lbpick.Options{Streams: streams})
	t.Cleanup(func() { _ = c.Close() })
	testpoll.Until(t, 5*time.Second, "pick streams open", func() bool { return c.Open() == streams })
	return c
}

func pick(t *testing.T, c lbpb.LbClient, svc string, n int32, exclude ...string) ([]string, int) {
	t.Helper()
	resp, err := c.Pick(context.Background(), &lbpb.PickRequest{Service: svc, N: n, Exclude: exclude})
	if err != nil {
		return nil, aserr.CodeOf(grpcx.FromStatus(err))
	}
	return resp.GetAddrs(), 0
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func TestServerPicksFromPolarisAndNATS(t *testing.T) {
	srv, emb := startWithLoaders(t, state("echo", "10.0.0.1:5090", 4, 1, 1), state("echo", "10.0.0.2:5090", 2, 1, 1))
	require.True(t, srv.Ready())
	require.Equal(t, 2, srv.Live("echo"))

	cc, err := grpcx.Dial(srv.GRPCAddr())
	require.NoError(t, err)
	defer cc.Close()
	lb := lbpb.NewLbClient(cc)
	hc, err := healthpb.NewHealthClient(cc).Check(context.Background(), &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, hc.GetStatus())

	addrs, code := pick(t, lb, "echo", 0)
	require.Equal(t, 0, code)
	require.Equal(t, []string{"10.0.0.1:5090"}, addrs, "n=0 means one, the idlest first")
	addrs, code = pick(t, lb, "echo", 3, "10.0.0.1:5090")
	require.Equal(t, 0, code)
	require.Equal(t, []string{"10.0.0.2:5090"}, addrs)
	_, code = pick(t, lb, "nope", 1)
	require.Equal(t, 10404, code)

	// Both loaders report live=0 on NATS: the service is known but has no engine.
	pub, err := nats.Connect(emb.ClientURL())
	require.NoError(t, err)
	defer pub.Close()
	for _, addr := range []string{"10.0.0.1:5090", "10.0.0.2:5090"} {
		b, err := proto.Marshal(&polarispb.RegistryEvent{Type: polarispb.RegistryEvent_TYPE_LOAD,
			Instances: []*polarispb.InstanceState{state("echo", addr, 0, 0, 2)}})
		require.NoError(t, err)
		require.NoError(t, pub.Publish(natsbus.LoadSubject("asf", "echo"), b))
	}
	testpoll.Until(t, 3*time.Second, "no live loader", func() bool { return srv.Live("echo") == 0 })
	_, code = pick(t, lb, "echo", 1)
	require.Equal(t, 10223, code)

	st, body := httpGet(t, "http://"+srv.AdminAddr()+"/readyz")
	require.Equal(t, http.StatusOK, st, body)

	st, body = httpGet(t, "http://"+srv.AdminAddr()+"/v1/view")
	require.Equal(t, http.StatusOK, st)
	var dump transport.ViewDump
	require.NoError(t, json.Unmarshal([]byte(body), &dump))
	require.Equal(t, "least-load", dump.Strategy)
	require.True(t, dump.Ready)
	require.Len(t, dump.Services, 1)
	require.Len(t, dump.Services[0].Loaders, 2)
	require.Equal(t, "not live", dump.Services[0].Loaders[0].Reason)
	require.Contains(t, body, `"nats_connected": true`)

	_, metrics := httpGet(t, "http://"+srv.AdminAddr()+"/metrics")
	for _, want := range []string{
		`asf_lbclient_picks_total{code="0",service="echo",strategy="least-load"} 2`,
		`asf_lbclient_picks_total{code="10404",service="_unknown",strategy="least-load"} 1`,
		`asf_lbclient_picks_total{code="10223",service="echo",strategy="least-load"} 1`,
		`asf_lbclient_loaders_live{service="echo"} 0`,
		`asf_lbclient_overcommits_total{service="echo"} 0`,
		`asf_lbclient_pick_seconds_count{strategy="least-load"} 4`,
	} {
		require.True(t, strings.Contains(metrics, want), "metrics lack %s", want)
	}
}

func TestServerStartsWhilePolarisDown(t *testing.T) {
	emb, err := natsbus.StartEmbedded("127.0.0.1:0", zerolog.Nop())
	require.NoError(t, err)
	defer emb.Shutdown()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	cfg := testConfig(addr)
	cfg.StartWait = 100 * time.Millisecond
	start := time.Now()
	srv := startServer(t, cfg)
	require.Less(t, time.Since(start), 5*time.Second)
	require.False(t, srv.Ready())
	st, _ := httpGet(t, "http://"+srv.AdminAddr()+"/readyz")
	require.Equal(t, http.StatusServiceUnavailable, st)

	cc, err := grpcx.Dial(srv.GRPCAddr())
	require.NoError(t, err)
	defer cc.Close()
	_, code := pick(t, lbpb.NewLbClient(cc), "echo", 1)
	require.Equal(t, 10404, code)
	health := healthpb.NewHealthClient(cc)
	hc, err := health.Check(context.Background(), &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_NOT_SERVING, hc.GetStatus())

	ln, err = net.Listen("tcp", addr)
	require.NoError(t, err)
	serve(t, ln, &fakePolaris{natsURL: emb.ClientURL(), instances: []*polarispb.InstanceState{state("echo", "a:1", 1, 1, 1)}})
	testpoll.Until(t, 15*time.Second, "ready once polaris is up", srv.Ready)
	addrs, code := pick(t, lbpb.NewLbClient(cc), "echo", 1)
	require.Equal(t, 0, code)
	require.Equal(t, []string{"a:1"}, addrs)
	testpoll.Until(t, 2*time.Second, "health SERVING", func() bool {
		hc, err := health.Check(context.Background(), &healthpb.HealthCheckRequest{})
		return err == nil && hc.GetStatus() == healthpb.HealthCheckResponse_SERVING
	})
}

func TestNewRejectsBadConfig(t *testing.T) {
	cfg := testConfig("127.0.0.1:1")
	cfg.Strategy = "random"
	_, err := lbclient.New(cfg, zerolog.Nop(), nil)
	require.ErrorContains(t, err, "random")

	cfg = testConfig("127.0.0.1:1")
	cfg.StaleAfter = time.Millisecond
	_, err = lbclient.New(cfg, zerolog.Nop(), nil)
	require.ErrorContains(t, err, "stale-after")

	cfg = testConfig("127.0.0.1:1")
	cfg.LeaseMax = -1
	_, err = lbclient.New(cfg, zerolog.Nop(), nil)
	require.ErrorContains(t, err, "lease-max")
}

func TestShutdownWithoutStart(t *testing.T) {
	srv, err := lbclient.New(testConfig("127.0.0.1:1"), zerolog.Nop(), nil)
	require.NoError(t, err)
	require.NoError(t, srv.Shutdown(context.Background()))
	require.NoError(t, srv.Shutdown(context.Background()), "idempotent")
	require.Error(t, srv.Start(context.Background()))
}

// PickStream answers each pick as Pick does, errors with their codes included, and counts
// them in the same metrics.
func TestPickStreamAnswersAsPick(t *testing.T) {
	srv, _ := startWithLoaders(t, state("echo", "10.0.0.1:5090", 4, 1, 1), state("echo", "10.0.0.2:5090", 2, 1, 1))
	c := pickClient(t, srv, 1)

	addrs, err := c.Pick(t.Context(), "echo", 0, nil, "")
	require.NoError(t, err)
	require.Equal(t, []string{"10.0.0.1:5090"}, addrs, "n=0 means one, the idlest first")
	addrs, err = c.Pick(t.Context(), "echo", 3, []string{"10.0.0.1:5090"}, "")
	require.NoError(t, err)
	require.Equal(t, []string{"10.0.0.2:5090"}, addrs)
	_, err = c.Pick(t.Context(), "nope", 1, nil, "")
	require.Equal(t, 10404, aserr.CodeOf(err), "%v", err)

	_, metrics := httpGet(t, "http://"+srv.AdminAddr()+"/metrics")
	for _, want := range []string{
		`asf_lbclient_picks_total{code="0",service="echo",strategy="least-load"} 2`,
		`asf_lbclient_picks_total{code="10404",service="_unknown",strategy="least-load"} 1`,
	} {
		require.True(t, strings.Contains(metrics, want), "metrics lack %s", want)
	}
	require.False(t, strings.Contains(metrics, `method="/asf.lb.v1.Lb/Pick"`), "no unary Pick was made")
}

// A graceful shutdown is not held up by a caller's open PickStream: lbclient ends it.
func TestShutdownEndsPickStreams(t *testing.T) {
	srv, _ := startWithLoaders(t, state("echo", "10.0.0.1:5090", 4, 1, 1))
	pickClient(t, srv, 2)

	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(context.Background()) }()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("shutdown held up by open pick streams")
	}
}
