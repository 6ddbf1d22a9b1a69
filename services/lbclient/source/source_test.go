package source

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/natsbus"
	polarispb "github.com/athenaserving/asf/libs/proto/polaris/v1"
	"github.com/athenaserving/asf/libs/testpoll"
	"github.com/athenaserving/asf/services/lbclient/balance"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakePolaris is a Registry server answering Info and List from fields set by the test.
type fakePolaris struct {
	polarispb.UnimplementedRegistryServer
	mu        sync.Mutex
	natsURL   string
	prefix    string
	instances []*polarispb.InstanceState
	lists     int
}

func (f *fakePolaris) Info(context.Context, *polarispb.InfoRequest) (*polarispb.InfoResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &polarispb.InfoResponse{NatsUrl: f.natsURL, SubjectPrefix: f.prefix}, nil
}

func (f *fakePolaris) List(context.Context, *polarispb.ListRequest) (*polarispb.ListResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lists++
	return &polarispb.ListResponse{Instances: f.instances}, nil
}

func (f *fakePolaris) set(states ...*polarispb.InstanceState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.instances = states
}

func (f *fakePolaris) listCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lists
}

// servePolaris serves f on ln until the test ends.
func servePolaris(t *testing.T, ln net.Listener, f *fakePolaris) {
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

func state(svc, addr string, idle int32, seq uint64) *polarispb.InstanceState {
	return &polarispb.InstanceState{
		Instance: &polarispb.Instance{Service: svc, Addr: addr, Kind: "provider"},
		Load:     &polarispb.Load{Total: 4, Best: 4, Idle: idle, Live: 1},
		Admin:    &polarispb.Admin{Enabled: true, Weight: 100},
		Seq:      seq,
	}
}

func startNATS(t *testing.T, listen string) *natsbus.Embedded {
	t.Helper()
	emb, err := natsbus.StartEmbedded(listen, zerolog.Nop())
	require.NoError(t, err)
	return emb
}

func publish(t *testing.T, nc *nats.Conn, subj string, typ polarispb.RegistryEvent_Type, st *polarispb.InstanceState) {
	t.Helper()
	b, err := proto.Marshal(&polarispb.RegistryEvent{Type: typ, Instances: []*polarispb.InstanceState{st}})
	require.NoError(t, err)
	require.NoError(t, nc.Publish(subj, b))
	require.NoError(t, nc.Flush())
}

func idleOf(v *balance.View, svc, addr string) int32 {
	for _, s := range v.Dump(time.Now()) {
		if s.Service != svc {
			continue
		}
		for _, l := range s.Loaders {
			if l.Addr == addr {
				return l.Load.Idle
			}
		}
	}
	return -1
}

type rig struct {
	polaris *fakePolaris
	nats    *natsbus.Embedded
	pub     *nats.Conn
	view    *balance.View
	src     *Source
	stop    func()
}

// startRig runs a Source against a fake polaris and an in-process NATS server.
func startRig(t *testing.T, prefix string) *rig {
	t.Helper()
	emb := startNATS(t, "127.0.0.1:0")
	f := &fakePolaris{natsURL: emb.ClientURL(), prefix: prefix}
	f.set(state("echo", "a:1", 4, 1), state("echo", "b:1", 4, 1),
		&polarispb.InstanceState{Instance: &polarispb.Instance{Service: "echo", Addr: "c:1", Kind: "consumer"}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	servePolaris(t, ln, f)

	view := balance.MustNewView(balance.Options{})
	src, err := New(Config{PolarisAddr: ln.Addr().String(), RetryMin: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond}, view, zerolog.Nop(), nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = src.Run(ctx)
	}()
	pub, err := nats.Connect(emb.ClientURL())
	require.NoError(t, err)
	r := &rig{polaris: f, nats: emb, pub: pub, view: view, src: src}
	var once sync.Once
	r.stop = func() {
		once.Do(func() {
			cancel()
			<-done
			_ = src.Close()
			pub.Close()
			r.nats.Shutdown()
		})
	}
	t.Cleanup(r.stop)
	return r
}

func TestSourceSnapshotAndEvents(t *testing.T) {
	r := startRig(t, "tst")
	testpoll.Until(t, 5*time.Second, "ready", r.src.Ready)
	require.Equal(t, 2, r.view.Live("echo", time.Now()), "snapshot applied, consumer ignored")
	require.Equal(t, Info{NATSURL: r.nats.ClientURL(), Prefix: "tst"}, r.src.Info())

	// LOAD updates the loader's load.
	publish(t, r.pub, "tst.load.echo", polarispb.RegistryEvent_TYPE_LOAD, state("echo", "a:1", 1, 2))
	testpoll.Until(t, 2*time.Second, "load applied", func() bool { return idleOf(r.view, "echo", "a:1") == 1 })

	// An older LOAD is ignored; the next event in order shows it was processed.
	publish(t, r.pub, "tst.load.echo", polarispb.RegistryEvent_TYPE_LOAD, state("echo", "a:1", 3, 1))
	publish(t, r.pub, "tst.load.echo", polarispb.RegistryEvent_TYPE_LOAD, state("echo", "b:1", 2, 2))
	testpoll.Until(t, 2*time.Second, "b load applied", func() bool { return idleOf(r.view, "echo", "b:1") == 2 })
	require.Equal(t, int32(1), idleOf(r.view, "echo", "a:1"))

	// ADDED of a new service makes it known and live.
	publish(t, r.pub, "tst.registry.tts", polarispb.RegistryEvent_TYPE_ADDED, state("tts", "t:1", 2, 1))
	testpoll.Until(t, 2*time.Second, "tts added", func() bool { return r.view.Live("tts", time.Now()) == 1 })

	// CHANGED with enabled=false takes a loader out of rotation.
	dis := state("echo", "b:1", 2, 2)
	dis.Admin.Enabled = false
	publish(t, r.pub, "tst.registry.echo", polarispb.RegistryEvent_TYPE_CHANGED, dis)
	testpoll.Until(t, 2*time.Second, "b disabled", func() bool { return r.view.Live("echo", time.Now()) == 1 })

	// REMOVED removes.
	publish(t, r.pub, "tst.registry.echo", polarispb.RegistryEvent_TYPE_REMOVED, state("echo", "a:1", 1, 2))
	testpoll.Until(t, 2*time.Second, "a removed", func() bool { return idleOf(r.view, "echo", "a:1") == -1 })
	_, err := r.view.Pick("echo", 1, nil, "", time.Now())
	require.Error(t, err)

	// Garbage on the subject is dropped without harm.
	require.NoError(t, r.pub.Publish("tst.load.echo", []byte{0xff, 0xff, 0xff}))
	publish(t, r.pub, "tst.load.tts", polarispb.RegistryEvent_TYPE_LOAD, state("tts", "t:1", 1, 2))
	testpoll.Until(t, 2*time.Second, "tts load", func() bool { return idleOf(r.view, "tts", "t:1") == 1 })
}

func TestSourceReloadsSnapshotAfterReconnect(t *testing.T) {
	r := startRig(t, "")
	testpoll.Until(t, 5*time.Second, "ready", r.src.Ready)
	lists := r.polaris.listCount()

	// While NATS is down, polaris's membership changes; the events are lost.
	url := r.nats.ClientURL()
	r.nats.Shutdown()
	testpoll.Until(t, 5*time.Second, "disconnected", func() bool { return !r.src.Connected() })
	r.polaris.set(state("echo", "b:1", 4, 9), state("echo", "z:1", 4, 1))
	r.nats = startNATS(t, url[len("nats://"):])

	// The view catches up from polaris (a probe while NATS is down, or the reload on
	// reconnect, whichever comes first) and the connection comes back.
	testpoll.Until(t, 10*time.Second, "snapshot reloaded and reconnected", func() bool {
		return r.polaris.listCount() > lists && idleOf(r.view, "echo", "z:1") == 4 && idleOf(r.view, "echo", "a:1") == -1 &&
			r.src.Connected()
	})
	// Events flow again on the new server, with the default prefix.
	pub, err := nats.Connect(r.nats.ClientURL())
	require.NoError(t, err)
	defer pub.Close()
	publish(t, pub, "asf.load.echo", polarispb.RegistryEvent_TYPE_LOAD, state("echo", "z:1", 2, 2))
	testpoll.Until(t, 2*time.Second, "load after reconnect", func() bool { return idleOf(r.view, "echo", "z:1") == 2 })
}

func TestSourceWaitsForPolaris(t *testing.T) {
	emb := startNATS(t, "127.0.0.1:0")
	defer emb.Shutdown()
	// Reserve an address, free it, and let the source knock on it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	view := balance.MustNewView(balance.Options{})
	src, err := New(Config{PolarisAddr: addr, RetryMin: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond, CallTimeout: 200 * time.Millisecond}, view, zerolog.Nop(), nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = src.Run(ctx)
	}()
	defer func() {
		cancel()
		<-done
		_ = src.Close()
	}()
	require.Never(t, src.Ready, 300*time.Millisecond, 20*time.Millisecond)

	ln, err = net.Listen("tcp", addr)
	require.NoError(t, err)
	f := &fakePolaris{natsURL: emb.ClientURL()}
	f.set(state("echo", "a:1", 4, 1))
	servePolaris(t, ln, f)
	testpoll.Until(t, 10*time.Second, "ready after polaris came up", src.Ready)
	require.Equal(t, 1, view.Live("echo", time.Now()))
}

func TestSourceStopsWhilePolarisDown(t *testing.T) {
	src, err := New(Config{PolarisAddr: "127.0.0.1:1", RetryMin: 10 * time.Millisecond}, balance.MustNewView(balance.Options{}), zerolog.Nop(), nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx) }()
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	require.Error(t, src.Run(context.Background()), "Run twice")
	require.NoError(t, src.Close())
}

func FuzzDecodeEvent(f *testing.F) {
	b, _ := proto.Marshal(&polarispb.RegistryEvent{Type: polarispb.RegistryEvent_TYPE_LOAD, Instances: []*polarispb.InstanceState{state("echo", "a:1", 3, 7)}})
	f.Add(b)
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := decodeEvent(data)
		if err != nil {
			return
		}
		s := &Source{view: balance.MustNewView(balance.Options{})}
		s.apply(ev, time.Unix(0, 0))
		for _, st := range ev.GetInstances() {
			if in, ok := toInstance(st); ok && (in.Service == "" || in.Addr == "") {
				t.Fatalf("toInstance accepted %v", st)
			}
		}
	})
}
