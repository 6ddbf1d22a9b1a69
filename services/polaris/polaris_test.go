package polaris_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/grpcx"
	"github.com/athenaserving/asf/libs/natsbus"
	"github.com/athenaserving/asf/libs/polarisclient"
	polarispb "github.com/athenaserving/asf/libs/proto/polaris/v1"
	"github.com/athenaserving/asf/libs/testpoll"
	"github.com/athenaserving/asf/services/polaris"
	"github.com/athenaserving/asf/services/polaris/config"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func start(t *testing.T, mod func(*polaris.Config)) *polaris.Server {
	t.Helper()
	cfg := polaris.DefaultConfig()
	cfg.GRPCListen, cfg.AdminListen, cfg.NATSListen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.ConsoleListen, cfg.DataDir = "127.0.0.1:0", t.TempDir()
	cfg.TLS.Insecure = true // NATS without credentials
	cfg.AdminToken = testAdminToken
	if mod != nil {
		mod(&cfg)
	}
	srv, err := polaris.New(cfg, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return srv
}

// testAdminToken is the admin token of the test servers (admin-token); dial's calls
// carry it, as an operator's would.
const testAdminToken = "test-admin-token-0123456789"

// bearer puts the admin token on every call.
type bearer struct{}

func (bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + testAdminToken}, nil
}

func (bearer) RequireTransportSecurity() bool { return false }

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpcx.Dial(addr, grpc.WithPerRPCCredentials(bearer{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func recvRegistry(t *testing.T, sub *nats.Subscription) (string, *polarispb.RegistryEvent) {
	t.Helper()
	msg, err := sub.NextMsg(3 * time.Second)
	if err != nil {
		t.Fatalf("nats: %v", err)
	}
	ev := &polarispb.RegistryEvent{}
	if err := proto.Unmarshal(msg.Data, ev); err != nil {
		t.Fatal(err)
	}
	return msg.Subject, ev
}

func TestRegistryOverGRPCAndNATS(t *testing.T) {
	srv := start(t, func(c *polaris.Config) { c.TTL = 400 * time.Millisecond })
	if !srv.Ready() {
		t.Fatal("not ready after Start")
	}
	ctx := t.Context()
	rc := polarispb.NewRegistryClient(dial(t, srv.GRPCAddr()))

	info, err := rc.Info(ctx, &polarispb.InfoRequest{})
	if err != nil || info.GetNatsUrl() != srv.NATSURL() || info.GetSubjectPrefix() != "asf" || info.GetDefaultTtlMs() != 400 {
		t.Fatalf("info %v %v", info, err)
	}
	nc, err := nats.Connect(info.GetNatsUrl())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	regSub, _ := nc.SubscribeSync(natsbus.RegistrySubject("asf", "echo"))
	loadSub, _ := nc.SubscribeSync(natsbus.LoadSubject("asf", "*"))
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	watch, err := rc.Watch(wctx, &polarispb.WatchRequest{Service: "echo"})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := watch.Recv()
	if err != nil || ev.GetType() != polarispb.RegistryEvent_TYPE_SNAPSHOT || len(ev.GetInstances()) != 0 {
		t.Fatalf("snapshot %v %v", ev, err)
	}

	inst := &polarispb.Instance{Service: "echo", Addr: "127.0.0.1:5090", Kind: "provider"}
	rr, err := rc.Register(ctx, &polarispb.RegisterRequest{Instance: inst, Load: &polarispb.Load{Total: 4, Idle: 0, Live: 1}})
	if err != nil || rr.GetTtlMs() != 400 {
		t.Fatalf("register %v %v", rr, err)
	}
	subj, nev := recvRegistry(t, regSub)
	if subj != "asf.registry.echo" || nev.GetType() != polarispb.RegistryEvent_TYPE_ADDED || nev.GetInstances()[0].GetInstance().GetAddr() != inst.Addr {
		t.Fatalf("nats registry %s %v", subj, nev)
	}
	if ev, err := watch.Recv(); err != nil || ev.GetType() != polarispb.RegistryEvent_TYPE_ADDED {
		t.Fatalf("watch added %v %v", ev, err)
	}

	hb, err := rc.Heartbeat(ctx, &polarispb.HeartbeatRequest{Service: "echo", Addr: inst.Addr, Load: &polarispb.Load{Total: 4, Idle: 3, Live: 1}})
	if err != nil || !hb.GetKnown() {
		t.Fatalf("heartbeat %v %v", hb, err)
	}
	subj, nev = recvRegistry(t, loadSub)
	st := nev.GetInstances()[0]
	if subj != "asf.load.echo" || nev.GetType() != polarispb.RegistryEvent_TYPE_LOAD || st.GetLoad().GetIdle() != 3 || st.GetAdmin().GetWeight() != 100 {
		t.Fatalf("nats load %s %v", subj, nev)
	}
	if ev, err := watch.Recv(); err != nil || ev.GetType() != polarispb.RegistryEvent_TYPE_LOAD {
		t.Fatalf("watch load %v %v", ev, err)
	}

	if _, err := rc.SetAdmin(ctx, &polarispb.SetAdminRequest{Service: "echo", Addr: inst.Addr, Admin: &polarispb.Admin{Enabled: false, Weight: 50}}); err != nil {
		t.Fatal(err)
	}
	if _, nev = recvRegistry(t, regSub); nev.GetType() != polarispb.RegistryEvent_TYPE_CHANGED || nev.GetInstances()[0].GetAdmin().GetEnabled() {
		t.Fatalf("nats changed %v", nev)
	}
	if ev, err := watch.Recv(); err != nil || ev.GetType() != polarispb.RegistryEvent_TYPE_CHANGED {
		t.Fatalf("watch changed %v %v", ev, err)
	}

	list, err := rc.List(ctx, &polarispb.ListRequest{Service: "echo"})
	if err != nil || len(list.GetInstances()) != 1 || list.GetInstances()[0].GetLoad().GetIdle() != 3 {
		t.Fatalf("list %v %v", list, err)
	}

	// The instance stops heartbeating: it is removed within its TTL (plus a sweep).
	stopped := time.Now()
	if _, nev = recvRegistry(t, regSub); nev.GetType() != polarispb.RegistryEvent_TYPE_REMOVED {
		t.Fatalf("nats removed %v", nev)
	}
	if took := time.Since(stopped); took > 400*time.Millisecond+500*time.Millisecond {
		t.Fatalf("eviction took %s", took)
	}
	if ev, err := watch.Recv(); err != nil || ev.GetType() != polarispb.RegistryEvent_TYPE_REMOVED {
		t.Fatalf("watch removed %v %v", ev, err)
	}
	hb, err = rc.Heartbeat(ctx, &polarispb.HeartbeatRequest{Service: "echo", Addr: inst.Addr})
	if err != nil || hb.GetKnown() {
		t.Fatalf("heartbeat after eviction %v %v", hb, err)
	}
	// Admin state survived the eviction.
	if _, err := rc.Register(ctx, &polarispb.RegisterRequest{Instance: inst}); err != nil {
		t.Fatal(err)
	}
	if _, nev = recvRegistry(t, regSub); nev.GetType() != polarispb.RegistryEvent_TYPE_ADDED || nev.GetInstances()[0].GetAdmin().GetWeight() != 50 {
		t.Fatalf("re-registered %v", nev)
	}

	// Admin HTTP dumps the registry.
	resp, err := http.Get("http://" + srv.AdminAddr() + "/v1/registry?service=echo")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	var dump struct {
		Instances []struct {
			Instance struct{ Addr string } `json:"instance"`
		} `json:"instances"`
	}
	if err := json.Unmarshal(body, &dump); err != nil || len(dump.Instances) != 1 || dump.Instances[0].Instance.Addr != inst.Addr {
		t.Fatalf("admin dump %s %v", body, err)
	}

	if _, err := rc.Register(ctx, &polarispb.RegisterRequest{Instance: &polarispb.Instance{Service: "echo"}}); aserr.CodeOf(grpcx.FromStatus(err)) != aserr.ErrInvalidParam.Code {
		t.Fatalf("invalid register: %v", err)
	}
}

func TestConfigOverGRPCAndNATS(t *testing.T) {
	srv := start(t, nil)
	ctx := t.Context()
	cc := polarispb.NewConfigClient(dial(t, srv.GRPCAddr()))
	nc, err := nats.Connect(srv.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	cfgSub, _ := nc.SubscribeSync(natsbus.ConfigSubject("asf", "atom"))
	_ = nc.Flush()

	key := &polarispb.ConfigKey{Project: "asf", Group: "default", Service: "atom", Version: "1", File: "schema_echo.json"}
	if _, err := cc.Push(ctx, &polarispb.PushConfigRequest{Key: key, Content: []byte("v1")}); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	prefixKey := proto.Clone(key).(*polarispb.ConfigKey)
	prefixKey.File = "schema_"
	watch, err := cc.Watch(wctx, &polarispb.WatchConfigRequest{Key: prefixKey, Prefix: true})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := watch.Recv()
	if err != nil || ev.GetType() != polarispb.ConfigEvent_TYPE_SNAPSHOT || len(ev.GetFiles()) != 1 || ev.GetFiles()[0].GetRevision() != 1 {
		t.Fatalf("snapshot %v %v", ev, err)
	}
	if _, err := cc.Push(ctx, &polarispb.PushConfigRequest{Key: key, Content: []byte("v2")}); err != nil {
		t.Fatal(err)
	}
	if ev, err = watch.Recv(); err != nil || ev.GetType() != polarispb.ConfigEvent_TYPE_UPDATED || string(ev.GetFiles()[0].GetContent()) != "v2" {
		t.Fatalf("updated %v %v", ev, err)
	}
	for _, want := range []int64{1, 2} {
		msg, err := cfgSub.NextMsg(3 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		cev := &polarispb.ConfigEvent{}
		if err := proto.Unmarshal(msg.Data, cev); err != nil || cev.GetType() != polarispb.ConfigEvent_TYPE_UPDATED || cev.GetFiles()[0].GetRevision() != want {
			t.Fatalf("nats config %v %v", cev, err)
		}
	}
	rb, err := cc.Rollback(ctx, &polarispb.RollbackRequest{Key: key, Revision: 1})
	if err != nil || rb.GetRevision() != 3 || string(rb.GetContent()) != "v1" {
		t.Fatalf("rollback %v %v", rb, err)
	}
	if ev, err = watch.Recv(); err != nil || ev.GetFiles()[0].GetRevision() != 3 {
		t.Fatalf("rollback event %v %v", ev, err)
	}
	h, err := cc.History(ctx, &polarispb.HistoryRequest{Key: key})
	if err != nil || len(h.GetRevisions()) != 3 {
		t.Fatalf("history %v %v", h, err)
	}
	if _, err := cc.ReportApplied(ctx, &polarispb.ReportAppliedRequest{Key: key, Revision: 3, Caller: &polarispb.Caller{Addr: "a:1"}, Applied: true}); err != nil {
		t.Fatal(err)
	}
	if got := srv.ConfigCenter().Applied(configKey(key)); len(got) != 1 || got[0].Revision != 3 {
		t.Fatalf("applied %+v", got)
	}
	if _, err := cc.Delete(ctx, &polarispb.DeleteConfigRequest{Key: key}); err != nil {
		t.Fatal(err)
	}
	if ev, err = watch.Recv(); err != nil || ev.GetType() != polarispb.ConfigEvent_TYPE_REMOVED {
		t.Fatalf("removed %v %v", ev, err)
	}
	_, err = cc.Get(ctx, &polarispb.GetConfigRequest{Key: key})
	if aserr.CodeOf(grpcx.FromStatus(err)) != aserr.ErrNotFound.Code {
		t.Fatalf("get deleted: %v", err)
	}
}

func TestShutdownEndsWatchStreams(t *testing.T) {
	cfg := polaris.DefaultConfig()
	cfg.GRPCListen, cfg.AdminListen, cfg.NATSListen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.ConsoleListen, cfg.DataDir = "127.0.0.1:0", t.TempDir()
	cfg.TLS.Insecure = true // NATS without credentials
	cfg.AdminToken = testAdminToken
	srv, err := polaris.New(cfg, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	conn := dial(t, srv.GRPCAddr())
	watch, err := polarispb.NewRegistryClient(conn).Watch(t.Context(), &polarispb.WatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watch.Recv(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if srv.Ready() {
		t.Fatal("ready after shutdown")
	}
	if _, err := watch.Recv(); err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("watch after shutdown ended without an error: %v", err)
	} else if code := aserr.CodeOf(grpcx.FromStatus(err)); code != aserr.ErrNetwork.Code {
		t.Fatalf("watch after shutdown: code %d (%v)", code, err)
	}
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("second shutdown: %v", err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	cfg := polaris.DefaultConfig()
	cfg.NATSEmbedded, cfg.NATSURL = false, ""
	if _, err := polaris.New(cfg, zerolog.Nop(), nil); aserr.CodeOf(err) != aserr.ErrInvalidParam.Code {
		t.Fatalf("want invalid config, got %v", err)
	}
}

func configKey(k *polarispb.ConfigKey) config.Key {
	return config.Key{Project: k.GetProject(), Group: k.GetGroup(), Service: k.GetService(), Version: k.GetVersion(), File: k.GetFile()}
}

func TestRegistrarAgainstPolaris(t *testing.T) {
	srv := start(t, func(c *polaris.Config) { c.TTL = 500 * time.Millisecond })
	nc, err := nats.Connect(srv.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	regSub, _ := nc.SubscribeSync(natsbus.RegistrySubject("asf", "echo"))
	loadSub, _ := nc.SubscribeSync(natsbus.LoadSubject("asf", "echo"))
	_ = nc.Flush()

	pc, err := polarisclient.Dial(srv.GRPCAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	// A consumer is recorded but never published: the first event is the provider's.
	if _, err := pc.Registry.Register(t.Context(), &polarispb.RegisterRequest{Instance: &polarispb.Instance{Service: "echo", Addr: "c:1", Kind: "consumer"}}); err != nil {
		t.Fatal(err)
	}
	inst := &polarispb.Instance{Service: "echo", Addr: "127.0.0.1:5091", Kind: "provider"}
	r := pc.NewRegistrar(inst, 50*time.Millisecond, func() *polarispb.Load { return &polarispb.Load{Total: 2, Idle: 2, Live: 1} }, zerolog.Nop())
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	defer func() { cancel(); <-done }()

	if _, ev := recvRegistry(t, regSub); ev.GetType() != polarispb.RegistryEvent_TYPE_ADDED || ev.GetInstances()[0].GetInstance().GetAddr() != inst.Addr {
		t.Fatalf("first registry event %v", ev)
	}
	if _, ev := recvRegistry(t, loadSub); ev.GetType() != polarispb.RegistryEvent_TYPE_LOAD {
		t.Fatalf("load event %v", ev)
	}
	testpoll.Until(t, 3*time.Second, "the condition", func() bool { return len(srv.Registry().List("echo")) == 2 })
	if err := r.Offline(t.Context()); err != nil {
		t.Fatal(err)
	}
	testpoll.Until(t, 3*time.Second, "the condition", func() bool {
		_, ev := recvRegistry(t, regSub)
		return ev.GetType() == polarispb.RegistryEvent_TYPE_REMOVED
	})
}
