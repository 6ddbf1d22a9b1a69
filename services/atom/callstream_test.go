package atom_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/callmux"
	"github.com/athenaserving/asf/libs/callmux/muxwire"
	"github.com/athenaserving/asf/libs/grpcx"
	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
	loaderpb "github.com/athenaserving/asf/libs/proto/loader/v1"
	"github.com/athenaserving/asf/libs/testpoll"
	"github.com/athenaserving/asf/services/atom"
	"google.golang.org/grpc"
)

// callStreams dials atom at addr and returns a client sending once requests on n
// CallStreams, as webgate does, once they are open.
func callStreams(t *testing.T, addr string, n int) *muxwire.AtomClient {
	t.Helper()
	cc, err := grpcx.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	m := muxwire.NewAtomClient(atompb.NewAtomClient(cc), callmux.Options{Streams: n})
	t.Cleanup(func() {
		_ = m.Close()
		_ = cc.Close()
	})
	testpoll.Until(t, 5*time.Second, "the call streams open", func() bool { return m.Open() == n })
	return m
}

// TestCallStreamServesAsCall: a once request on a CallStream is served as Call serves it
// (retries, the rendered result, errors as results) and counted under Call.
func TestCallStreamServesAsCall(t *testing.T) {
	full := &fakeLoader{full: true}
	s := start(t, map[string]*fakeLoader{"full": full, "ok": {}}, map[string][]string{"echo": {"full", "ok"}})
	m := callStreams(t, s.srv.GRPCAddr(), 1)
	res, err := m.Call(t.Context(), frame(3, "hello"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Code != 0 || res.Sid != "sid-42" || res.Status != 3 || len(res.Payload) != 1 || string(res.Payload[0].Data) != "hello" {
		t.Fatalf("result = %v", res)
	}
	f := frame(3, "x")
	f.Capability = "nope"
	if res, err := m.Call(t.Context(), f); err != nil || res.Code != 10404 {
		t.Fatalf("unknown capability: %v, %v", res, err)
	}
	body := scrape(t, s.srv.AdminAddr())
	for _, want := range []string{
		`asf_atom_grpc_calls_total{code="0",method="/asf.atom.v1.Atom/Call"} 2`,
		`asf_atom_retries_total{capability="echo",code="10110"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// heldLoader holds every once request until release is closed.
type heldLoader struct {
	loaderpb.UnimplementedLoaderServer
	release chan struct{}
	held    atomic.Int64
}

func (l *heldLoader) Once(_ context.Context, in *loaderpb.LoaderInput) (*loaderpb.LoaderOutput, error) {
	l.held.Add(1)
	<-l.release
	return &loaderpb.LoaderOutput{Status: loaderpb.Status_STATUS_ONCE, Pl: in.Pl}, nil
}

// TestShutdownDrainsCallStreams: atom shutting down answers the once requests running on
// webgate's CallStreams, ends the streams, and its graceful stop is not held up by them.
func TestShutdownDrainsCallStreams(t *testing.T) {
	l := &heldLoader{release: make(chan struct{})}
	loaderAddr := serve(t, func(s *grpc.Server) { loaderpb.RegisterLoaderServer(s, l) })
	cfg := atom.DefaultConfig()
	cfg.LBAddr = lbFor(t, loaderAddr)
	srv := startAtom(t, cfg)
	m := callStreams(t, srv.GRPCAddr(), 2)
	results := make(chan *atompb.Result, 3)
	for range 3 {
		go func() {
			res, err := m.Call(context.Background(), frame(3, "held"))
			if err != nil {
				t.Error(err)
			}
			results <- res
		}()
	}
	testpoll.Until(t, 5*time.Second, "three once requests at the loader", func() bool { return l.held.Load() == 3 })
	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		stopped <- srv.Shutdown(ctx)
	}()
	testpoll.Until(t, 5*time.Second, "the call streams drained", func() bool { return m.Open() == 0 })
	close(l.release)
	for range 3 {
		if res := <-results; res == nil || res.Code != 0 || string(res.Payload[0].Data) != "held" {
			t.Fatalf("a once request in flight at shutdown: %v", res)
		}
	}
	var err error
	testpoll.Until(t, 5*time.Second, "atom's shutdown done", func() bool {
		select {
		case err = <-stopped:
			return true
		default:
			return false
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}
