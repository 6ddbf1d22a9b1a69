package rawstream_test

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/grpcx"
	"github.com/athenaserving/asf/libs/localsock"
	"github.com/athenaserving/asf/libs/pki"
	loaderpb "github.com/athenaserving/asf/libs/proto/loader/v1"
	"github.com/athenaserving/asf/libs/rawstream"
	"github.com/athenaserving/asf/libs/testpoll"
	"github.com/athenaserving/asf/libs/tlsx"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

const method = "/asf.loader.v1.Loader/OnceStream"

// bundles issues a CA and the certificates of a loader (the server), an atom (an allowed
// caller) and a webgate (a caller the loader refuses).
func bundles(t *testing.T) (loader, atom, webgate *tlsx.Bundle) {
	t.Helper()
	ca, err := pki.NewCA("test CA")
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, ca.WriteCert(dir))
	load := func(svc string) *tlsx.Bundle {
		leaf, err := ca.Issue(grpcx.Identity{Service: svc, Instance: "1"}, "localhost", "127.0.0.1")
		require.NoError(t, err)
		require.NoError(t, leaf.Write(dir, svc))
		b, err := tlsx.Load(tlsx.Config{CA: filepath.Join(dir, pki.CACertFile), Cert: filepath.Join(dir, svc+".crt"), Key: filepath.Join(dir, svc+".key")}, zerolog.Nop())
		require.NoError(t, err)
		return b
	}
	return load("loader"), load("atom"), load("webgate")
}

// server is a split port: a gRPC server with grpc.health.v1 and the project's chain, and
// the stream handler h of method for atom callers.
type server struct {
	ln   *rawstream.Listener
	grpc *grpcx.Server
	done chan struct{}
}

func serve(t *testing.T, b *tlsx.Bundle, opts rawstream.ListenOptions, h rawstream.Handler) *server {
	t.Helper()
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return serveOn(t, tcp, b, opts, h)
}

// serveOn is serve on the listener tcp.
func serveOn(t *testing.T, tcp net.Listener, b *tlsx.Bundle, opts rawstream.ListenOptions, h rawstream.Handler) *server {
	t.Helper()
	if b != nil {
		opts.TLS = b.ServerConfig()
	}
	s := &server{ln: rawstream.Listen(tcp, opts), done: make(chan struct{})}
	s.ln.Handle(method, []string{"atom"}, h)
	s.grpc = grpcx.NewServer("test", zerolog.Nop(), prometheus.NewRegistry(), append(grpcx.AllowCallers("atom"), rawstream.ServerCreds(b != nil))...)
	s.grpc.SetServing(true)
	go func() {
		defer close(s.done)
		_ = s.grpc.Serve(s.ln.GRPC())
	}()
	t.Cleanup(func() {
		s.grpc.Stop()
		<-s.done
		s.ln.Stop()
	})
	return s
}

func (s *server) addr() string { return s.ln.Addr().String() }

// echo answers each call with a reply of its id until the client closes its side.
func echo(c *rawstream.Conn) error {
	for {
		in := new(loaderpb.OnceCall)
		if err := c.RecvMsg(in); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		out := &loaderpb.OnceReply{Id: in.GetId(), Message: string(in.GetInput().GetPl()[0].GetData())}
		if err := c.SendMsg(out); err != nil {
			return err
		}
	}
}

func call(id uint64, data string) *loaderpb.OnceCall {
	return &loaderpb.OnceCall{Id: id, Input: &loaderpb.LoaderInput{Pl: []*loaderpb.Payload{{Data: []byte(data)}}}}
}

func dialer(s *server, b *tlsx.Bundle, peer string) *rawstream.Dialer {
	d := &rawstream.Dialer{Target: s.addr()}
	if b != nil {
		d.TLS = b.ClientConfig(peer)
	}
	return d
}

// TestStreamsAndGRPCShareThePort: on one port, plaintext and under mutual TLS, gRPC calls
// reach the gRPC server and streams their handler, which sees the caller's identity;
// messages from concurrent senders all arrive, in order per sender.
func TestStreamsAndGRPCShareThePort(t *testing.T) {
	srvB, atomB, _ := bundles(t)
	for _, tc := range []struct {
		name     string
		srv, cli *tlsx.Bundle
	}{{"plaintext", nil, nil}, {"mtls", srvB, atomB}} {
		t.Run(tc.name, func(t *testing.T) {
			ids := make(chan grpcx.Identity, 1)
			s := serve(t, tc.srv, rawstream.ListenOptions{}, func(c *rawstream.Conn) error {
				id, _ := grpcx.IdentityFromContext(c.Context())
				ids <- id
				return echo(c)
			})
			// gRPC on the same port.
			cc, err := grpcx.Dial(s.addr(), tlsx.DialOption(tc.cli, "loader"))
			require.NoError(t, err)
			defer cc.Close()
			hr, err := healthpb.NewHealthClient(cc).Check(t.Context(), &healthpb.HealthCheckRequest{})
			require.NoError(t, err)
			require.Equal(t, healthpb.HealthCheckResponse_SERVING, hr.GetStatus())

			c, err := dialer(s, tc.cli, "loader").Dial(t.Context(), method)
			require.NoError(t, err)
			id := <-ids
			if tc.cli != nil {
				require.Equal(t, "atom", id.Service)
			}
			const senders, each = 8, 200
			got := make(chan *loaderpb.OnceReply, senders*each)
			recvDone := make(chan error, 1)
			go func() {
				for {
					r := new(loaderpb.OnceReply)
					if err := c.RecvMsg(r); err != nil {
						recvDone <- err
						return
					}
					got <- r
				}
			}()
			var wg sync.WaitGroup
			for g := range senders {
				wg.Go(func() {
					for i := range each {
						require.NoError(t, c.SendMsg(call(uint64(g*each+i+1), strings.Repeat("x", i))))
					}
				})
			}
			wg.Wait()
			require.NoError(t, c.CloseSend())
			require.ErrorIs(t, <-recvDone, io.EOF) // the handler returned nil
			require.Len(t, got, senders*each)
			last := make([]uint64, senders)
			for range senders * each {
				r := <-got
				g := (r.GetId() - 1) / each
				require.Greater(t, r.GetId(), last[g], "sender %d's messages out of order", g)
				last[g] = r.GetId()
				require.Len(t, r.GetMessage(), int((r.GetId()-1)%each))
			}
		})
	}
}

// TestStreamsOverLocalSockets: a server listening through localsock and a Dialer with
// its directory: the stream and gRPC calls go over the Unix socket, under mutual TLS, and
// the handler sees the caller's identity.
func TestStreamsOverLocalSockets(t *testing.T) {
	srvB, atomB, _ := bundles(t)
	dir, err := os.MkdirTemp("", "rs")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ln, err := localsock.Listen(tcp, dir)
	require.NoError(t, err)
	type seen struct {
		network string
		id      grpcx.Identity
	}
	peers := make(chan seen, 1)
	s := serveOn(t, ln, srvB, rawstream.ListenOptions{}, func(c *rawstream.Conn) error {
		id, _ := grpcx.IdentityFromContext(c.Context())
		p, _ := peer.FromContext(c.Context())
		peers <- seen{p.Addr.Network(), id}
		return echo(c)
	})
	d := dialer(s, atomB, "loader")
	d.Sockets = dir
	c, err := d.Dial(t.Context(), method)
	require.NoError(t, err)
	p := <-peers
	require.Equal(t, "unix", p.network)
	require.Equal(t, "atom", p.id.Service)
	require.NoError(t, c.SendMsg(call(1, "over the socket")))
	r := new(loaderpb.OnceReply)
	require.NoError(t, c.RecvMsg(r))
	require.Equal(t, "over the socket", r.GetMessage())
	require.NoError(t, c.CloseSend())

	cc, err := grpcx.Dial(s.addr(), tlsx.DialOption(atomB, "loader"), grpcx.LocalSockets(dir))
	require.NoError(t, err)
	defer cc.Close()
	_, err = healthpb.NewHealthClient(cc).Check(t.Context(), &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
}

// TestRefusedStreams: an unknown method is Unimplemented and a caller of another service
// PermissionDenied (10403), as the gRPC server answers them; the Dial fails.
func TestRefusedStreams(t *testing.T) {
	srvB, atomB, webgateB := bundles(t)
	s := serve(t, srvB, rawstream.ListenOptions{}, echo)
	_, err := dialer(s, atomB, "loader").Dial(t.Context(), "/asf.loader.v1.Loader/Nope")
	require.Equal(t, codes.Unimplemented, status.Code(err), "%v", err)
	_, err = dialer(s, webgateB, "loader").Dial(t.Context(), method)
	require.Error(t, err)
	require.Contains(t, err.Error(), "PermissionDenied")
	var st interface{ GRPCStatus() *status.Status }
	require.True(t, errors.As(err, &st))
	require.Equal(t, aserr.ErrForbidden.Code, aserr.CodeOf(grpcx.FromStatus(st.GRPCStatus().Err())))
	// A client expecting another service's certificate refuses the server.
	_, err = dialer(s, atomB, "atom").Dial(t.Context(), method)
	require.ErrorContains(t, err, "want a atom")
}

// TestHandlerStatusReachesTheClient: a handler's error, ASE code included, ends the stream
// on the client as it would end a gRPC stream; a panic is an internal error (11502, as
// grpcx's recovery makes it) and the server goes on.
func TestHandlerStatusReachesTheClient(t *testing.T) {
	s := serve(t, nil, rawstream.ListenOptions{}, func(c *rawstream.Conn) error {
		in := new(loaderpb.OnceCall)
		if err := c.RecvMsg(in); err != nil {
			return err
		}
		if in.GetId() == 2 {
			panic("engine bug")
		}
		return grpcx.ToStatus(aserr.ErrLicenceFull)
	})
	d := dialer(s, nil, "")
	for id, want := range map[uint64]codes.Code{1: codes.ResourceExhausted, 2: codes.Unknown} {
		c, err := d.Dial(t.Context(), method)
		require.NoError(t, err)
		require.NoError(t, c.SendMsg(call(id, "x")))
		err = c.RecvMsg(new(loaderpb.OnceReply))
		require.Equal(t, want, status.Code(err), "%v", err)
		wantASE := map[uint64]int{1: aserr.ErrLicenceFull.Code, 2: aserr.ErrInternal.Code}[id]
		require.Equal(t, wantASE, aserr.CodeOf(grpcx.FromStatus(err)))
	}
}

// TestOversizedMessageEndsOnlyItsStream: a message over the server's MaxRecv breaks its
// own stream; another stream goes on.
func TestOversizedMessageEndsOnlyItsStream(t *testing.T) {
	s := serve(t, nil, rawstream.ListenOptions{MaxRecv: 1 << 10}, echo)
	d := dialer(s, nil, "")
	ok, err := d.Dial(t.Context(), method)
	require.NoError(t, err)
	big, err := d.Dial(t.Context(), method)
	require.NoError(t, err)
	require.NoError(t, big.SendMsg(call(1, strings.Repeat("x", 4<<10))))
	err = big.RecvMsg(new(loaderpb.OnceReply))
	require.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
	require.NoError(t, ok.SendMsg(call(2, "small")))
	r := new(loaderpb.OnceReply)
	require.NoError(t, ok.RecvMsg(r))
	require.Equal(t, "small", r.GetMessage())
}

// oldServer serves gRPC on 127.0.0.1:0 without a Listener (a server built before raw
// streams) and returns its address.
func oldServer(t *testing.T) string {
	t.Helper()
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	gs := grpc.NewServer()
	done := make(chan struct{})
	go func() { defer close(done); _ = gs.Serve(tcp) }()
	t.Cleanup(func() { gs.Stop(); <-done })
	return tcp.Addr().String()
}

// TestOpenerFallsBackToGRPC: against a gRPC server without the split (an older server),
// Opener's Dial fails and it opens the gRPC stream instead.
func TestOpenerFallsBackToGRPC(t *testing.T) {
	d := &rawstream.Dialer{Target: oldServer(t)}
	fellBack := 0
	open := rawstream.Opener(d, method, func(context.Context, ...grpc.CallOption) (grpc.BidiStreamingClient[loaderpb.OnceCall, loaderpb.OnceReply], error) {
		fellBack++
		return nil, status.Error(codes.Unimplemented, "fallback")
	})
	for range 2 {
		_, err := open(t.Context())
		require.Equal(t, codes.Unimplemented, status.Code(err))
	}
	require.Equal(t, 2, fellBack)
}

// TestShutdownWaitsStopEnds: Shutdown closes the port and waits for a stream until its
// handler returns; Stop ends the streams at once.
func TestShutdownWaitsStopEnds(t *testing.T) {
	s := serve(t, nil, rawstream.ListenOptions{}, echo)
	c, err := dialer(s, nil, "").Dial(t.Context(), method)
	require.NoError(t, err)
	testpoll.Until(t, 5*time.Second, "stream served", func() bool { return s.ln.Streams() == 1 })
	shut := make(chan struct{})
	go func() {
		s.ln.Shutdown(context.Background())
		close(shut)
	}()
	// The port is closed, the stream still served.
	testpoll.Until(t, 5*time.Second, "port closed", func() bool {
		nc, err := net.Dial("tcp", s.addr())
		if err == nil {
			_ = nc.Close()
		}
		return err != nil
	})
	require.NoError(t, c.SendMsg(call(1, "still")))
	r := new(loaderpb.OnceReply)
	require.NoError(t, c.RecvMsg(r))
	require.Equal(t, "still", r.GetMessage())
	select {
	case <-shut:
		t.Fatal("Shutdown returned while a stream was served")
	default:
	}
	require.NoError(t, c.CloseSend())
	require.ErrorIs(t, c.RecvMsg(r), io.EOF)
	<-shut

	s2 := serve(t, nil, rawstream.ListenOptions{}, echo)
	c2, err := dialer(s2, nil, "").Dial(t.Context(), method)
	require.NoError(t, err)
	testpoll.Until(t, 5*time.Second, "stream served", func() bool { return s2.ln.Streams() == 1 })
	s2.ln.Stop()
	require.Equal(t, codes.Unavailable, status.Code(c2.RecvMsg(r)))
}

// TestClientContextEndsStream: the dial's context ends the stream on both sides.
func TestClientContextEndsStream(t *testing.T) {
	ended := make(chan error, 1)
	s := serve(t, nil, rawstream.ListenOptions{}, func(c *rawstream.Conn) error {
		err := echo(c)
		ended <- err
		return err
	})
	ctx, cancel := context.WithCancel(t.Context())
	c, err := dialer(s, nil, "").Dial(ctx, method)
	require.NoError(t, err)
	cancel()
	require.Equal(t, codes.Canceled, status.Code(c.RecvMsg(new(loaderpb.OnceReply))))
	require.Equal(t, codes.Unavailable, status.Code(<-ended))
}

// TestBadConnectionsDoNotDisturbOthers: a connection that sends garbage, one that sends
// part of a hello and one that sends nothing are closed (the last two after
// HandshakeTimeout) while streams and gRPC calls go on.
func TestBadConnectionsDoNotDisturbOthers(t *testing.T) {
	s := serve(t, nil, rawstream.ListenOptions{HandshakeTimeout: 300 * time.Millisecond}, echo)
	var bad []net.Conn
	for _, first := range []string{"GARBAGE!GARBAGE!GARBAGE!", rawstream.Magic + "H\x00\x00", ""} {
		nc, err := net.Dial("tcp", s.addr())
		require.NoError(t, err)
		defer nc.Close()
		if first != "" {
			_, err = nc.Write([]byte(first))
			require.NoError(t, err)
		}
		bad = append(bad, nc)
	}
	c, err := dialer(s, nil, "").Dial(t.Context(), method)
	require.NoError(t, err)
	require.NoError(t, c.SendMsg(call(1, "fine")))
	r := new(loaderpb.OnceReply)
	require.NoError(t, c.RecvMsg(r))
	require.Equal(t, "fine", r.GetMessage())
	for i, nc := range bad {
		require.NoError(t, nc.SetReadDeadline(time.Now().Add(10*time.Second)))
		_, err := io.ReadAll(nc) // until the server closes it
		require.NoError(t, err, "connection %d", i)
	}
}

// TestDialLeavesAFailedAddressAlone: of two addresses, one a server without raw streams,
// every stream opens on the other: the failed one is tried once, then left alone.
func TestDialLeavesAFailedAddressAlone(t *testing.T) {
	s := serve(t, nil, rawstream.ListenOptions{}, echo)
	d := &rawstream.Dialer{Target: oldServer(t) + "," + s.addr()}
	for range 6 {
		c, err := d.Dial(t.Context(), method)
		require.NoError(t, err)
		require.Equal(t, s.addr(), c.Peer())
		c.Close()
	}
}

// TestEndReachesAClientStillSending: a server that ends a stream while its client is
// still sending reads what the client sent until the client closes, so the client gets
// the end status (not a reset connection).
func TestEndReachesAClientStillSending(t *testing.T) {
	s := serve(t, nil, rawstream.ListenOptions{}, func(c *rawstream.Conn) error {
		if err := c.RecvMsg(new(loaderpb.OnceCall)); err != nil {
			return err
		}
		return grpcx.ToStatus(aserr.ErrLicenceFull)
	})
	d := dialer(s, nil, "")
	for range 20 {
		c, err := d.Dial(t.Context(), method)
		require.NoError(t, err)
		sent := make(chan struct{})
		go func() {
			defer close(sent)
			for i := range 2000 {
				if c.SendMsg(call(uint64(i+1), strings.Repeat("x", 1024))) != nil {
					return
				}
			}
		}()
		err = c.RecvMsg(new(loaderpb.OnceReply))
		require.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
		<-sent
	}
}

// TestMetricsCountStreams: a stream served counts as served and open while it runs, an
// unknown method as refused, a hello that is not one as failed.
func TestMetricsCountStreams(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := rawstream.NewMetrics("test", reg)
	s := serve(t, nil, rawstream.ListenOptions{Metrics: m}, echo)
	d := dialer(s, nil, "")
	c, err := d.Dial(t.Context(), method)
	require.NoError(t, err)
	_, err = d.Dial(t.Context(), "/no.Such/Method")
	require.Error(t, err)
	nc, err := net.Dial("tcp", s.addr())
	require.NoError(t, err)
	_, err = nc.Write([]byte(rawstream.Magic + "Mxxxx"))
	require.NoError(t, err)
	_, _ = io.ReadAll(nc)
	_ = nc.Close()
	value := func(name, result string) float64 {
		mfs, err := reg.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			for _, mm := range mf.GetMetric() {
				if result == "" || mm.GetLabel()[0].GetValue() == result {
					return mm.GetCounter().GetValue() + mm.GetGauge().GetValue()
				}
			}
		}
		return -1
	}
	testpoll.Until(t, 5*time.Second, "counts", func() bool {
		return value("asf_test_raw_streams_total", "served") == 1 && value("asf_test_raw_streams_total", "refused") == 1 &&
			value("asf_test_raw_streams_total", "failed") == 1 && value("asf_test_raw_streams_open", "") == 1
	})
	require.NoError(t, c.CloseSend())
	require.ErrorIs(t, c.RecvMsg(new(loaderpb.OnceReply)), io.EOF)
	testpoll.Until(t, 5*time.Second, "stream closed", func() bool { return value("asf_test_raw_streams_open", "") == 0 })
}
