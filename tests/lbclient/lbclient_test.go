package lbclient_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/grpcx"
	"github.com/athenaserving/asf/libs/natsbus"
	lbpb "github.com/athenaserving/asf/libs/proto/lb/v1"
	loaderpb "github.com/athenaserving/asf/libs/proto/loader/v1"
	"github.com/athenaserving/asf/libs/testpoll"
	"github.com/athenaserving/asf/services/lbclient"
	"github.com/athenaserving/asf/services/lbclient/lbclienttest"
	"github.com/athenaserving/asf/services/loader"
	"github.com/athenaserving/asf/services/loader/loadertest"
	"github.com/athenaserving/asf/services/polaris"
	"github.com/athenaserving/asf/services/polaris/polaristest"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// interval is the loaders' report interval and lbclient's ReportInterval in these tests.
const interval = 500 * time.Millisecond

func startPolaris(t *testing.T, natsURL string) *polaris.Server {
	t.Helper()
	return polaristest.Start(t, func(c *polaris.Config) {
		if natsURL != "" {
			c.NATSEmbedded, c.NATSURL = false, natsURL
		}
	})
}

func startLoader(t *testing.T, polarisAddr string, licence int) *loader.Server {
	t.Helper()
	return loadertest.Start(t, func(c *loader.Config) {
		c.PolarisAddr, c.Licence, c.HeartbeatInterval, c.Service = polarisAddr, licence, interval, "echo"
	})
}

func startLB(t *testing.T, polarisAddr string, opts ...func(*lbclient.Config)) (*lbclient.Server, lbpb.LbClient) {
	t.Helper()
	opts = append([]func(*lbclient.Config){func(c *lbclient.Config) { c.ReportInterval, c.StaleAfter = interval, 3*interval }}, opts...)
	s := lbclienttest.Start(t, polarisAddr, opts...)
	cc, err := grpcx.Dial(s.GRPCAddr())
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })
	return s, lbpb.NewLbClient(cc)
}

// conns dials loaders lazily and keeps one connection per address.
type conns struct {
	mu sync.Mutex
	m  map[string]*grpc.ClientConn
}

func (c *conns) get(addr string) (loaderpb.LoaderClient, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]*grpc.ClientConn{}
	}
	cc := c.m[addr]
	if cc == nil {
		var err error
		if cc, err = grpcx.Dial(addr); err != nil {
			return nil, err
		}
		c.m[addr] = cc
	}
	return loaderpb.NewLoaderClient(cc), nil
}

func (c *conns) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cc := range c.m {
		_ = cc.Close()
	}
}

// sids numbers the test sessions.
var sids atomic.Int64

// session opens a session on addr, holds its licence slot for hold, and ends it. It
// returns the ASE code of a failure (10110 when the loader was full).
func session(ctx context.Context, lc loaderpb.LoaderClient, hold time.Duration) int {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := lc.Session(ctx)
	if err != nil {
		return aserr.CodeOf(grpcx.FromStatus(err))
	}
	sid := fmt.Sprintf("sid-%d", sids.Add(1))
	frame := func(seq int32, status loaderpb.Status) *loaderpb.LoaderInput {
		return &loaderpb.LoaderInput{State: loaderpb.State_STATE_STREAM, SyncId: seq, Status: status,
			Headers: map[string]string{"sid": sid},
			Pl:      []*loaderpb.Payload{{Meta: &loaderpb.MetaDesc{Name: "text"}, Data: []byte("x")}}}
	}
	if err := st.Send(frame(0, loaderpb.Status_STATUS_BEGIN)); err != nil {
		return -1
	}
	if _, err := st.Recv(); err != nil {
		return aserr.CodeOf(grpcx.FromStatus(err))
	}
	time.Sleep(hold) // the session's lifetime, the workload under test
	if err := st.Send(frame(1, loaderpb.Status_STATUS_END)); err != nil {
		return -1
	}
	_ = st.CloseSend()
	for {
		if _, err := st.Recv(); err != nil {
			if errors.Is(err, io.EOF) {
				return 0
			}
			return aserr.CodeOf(grpcx.FromStatus(err))
		}
	}
}

// workload runs workers sessions at a time for d; worker w picks through lbs[w%len].
// It returns the sessions per loader address and the count of each failure code.
func workload(t *testing.T, lbs []lbpb.LbClient, workers int, d time.Duration, hold func(*rand.Rand) time.Duration) (map[string]int, map[int]int) {
	t.Helper()
	var cs conns
	defer cs.close()
	var mu sync.Mutex
	sessions, codes := map[string]int{}, map[int]int{}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			lb := lbs[w%len(lbs)]
			for ctx.Err() == nil {
				resp, err := lb.Pick(context.Background(), &lbpb.PickRequest{Service: "echo", N: 3})
				if err != nil {
					mu.Lock()
					codes[aserr.CodeOf(grpcx.FromStatus(err))]++
					mu.Unlock()
					continue
				}
				addr := resp.GetAddrs()[0]
				lc, err := cs.get(addr)
				require.NoError(t, err)
				code := session(context.Background(), lc, hold(rng))
				mu.Lock()
				if code == 0 {
					sessions[addr]++
				} else {
					codes[code]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return sessions, codes
}

func TestDistributionFollowsCapacity(t *testing.T) {
	p := startPolaris(t, "")
	caps := map[string]int{}
	for _, n := range []int{10, 20, 30} {
		caps[startLoader(t, p.GRPCAddr(), n).AdvertisedAddr()] = n
	}
	srv, lb := startLB(t, p.GRPCAddr())
	testpoll.Until(t, 5*time.Second, "3 loaders live", func() bool { return srv.Live("echo") == 3 })

	// 40 sessions at a time on 60 licences, each held 200–400 ms.
	sessions, codes := workload(t, []lbpb.LbClient{lb}, 40, 4*time.Second, func(r *rand.Rand) time.Duration {
		return 200*time.Millisecond + time.Duration(r.IntN(200))*time.Millisecond
	})
	require.Empty(t, codes, "no failure (10110 in particular) while capacity remains")
	total := 0
	for _, n := range sessions {
		total += n
	}
	require.Greater(t, total, 200)
	// Shares of 1/6, 1/3 and 1/2: within 20 % of each keeps them well apart while
	// tolerating report timing on a loaded machine (the race detector, parallel packages).
	for addr, c := range caps {
		want := float64(total) * float64(c) / 60
		require.InEpsilon(t, want, float64(sessions[addr]), 0.20, "loader of %d licences got %d of %d sessions", c, sessions[addr], total)
	}
	for _, d := range srv.View().Dump(time.Now()) {
		if d.Service == "echo" {
			for _, l := range d.Loaders {
				require.LessOrEqual(t, l.Load.Idle, l.Load.Total)
			}
		}
	}
}

func TestReplicasShareIdleSlots(t *testing.T) {
	for _, r := range []int{2, 3} {
		t.Run(fmt.Sprintf("replicas=%d", r), func(t *testing.T) {
			p := startPolaris(t, "")
			for _, n := range []int{10, 20, 30} {
				startLoader(t, p.GRPCAddr(), n)
			}
			var srvs []*lbclient.Server
			var lbs []lbpb.LbClient
			for range r {
				s, c := startLB(t, p.GRPCAddr())
				srvs, lbs = append(srvs, s), append(lbs, c)
			}
			for _, s := range srvs {
				testpoll.Until(t, 5*time.Second, "every replica sees the others and the loaders", func() bool {
					members, self := s.View().Replicas(time.Now())
					return len(members) == r && self >= 0 && s.Live("echo") == 3
				})
			}
			// 42 sessions at a time over 60 licences, spread evenly over the replicas:
			// each replica stays within its share, so no loader is ever asked for more
			// than it has.
			_, codes := workload(t, lbs, 42, 3*time.Second, func(r *rand.Rand) time.Duration {
				return 300*time.Millisecond + time.Duration(r.IntN(300))*time.Millisecond
			})
			var over uint64
			for _, s := range srvs {
				for _, st := range s.View().Stats(time.Now()) {
					if st.Service == "echo" {
						over += st.Overcommits
					}
				}
			}
			// The documented bound: loader refusals never exceed the picks the replicas
			// themselves flagged as beyond their share.
			require.LessOrEqual(t, uint64(codes[10110]), over, "codes %v, over-commit events %d", codes, over)
			require.Zero(t, codes[10110], "codes %v, over-commit events %d", codes, over)
			requireSharesAddUp(t, srvs)
		})
	}
}

// requireSharesAddUp waits until each of the 3 echo loaders' idle slots are split exactly
// between the replicas, once every replica holds the same last report (they arrive a few
// ms apart).
func requireSharesAddUp(t *testing.T, srvs []*lbclient.Server) {
	t.Helper()
	testpoll.Until(t, 5*time.Second, "shares adding up to idle", func() bool {
		shares, idle := map[string]int32{}, map[string]int32{}
		now := time.Now()
		for i, s := range srvs {
			for _, d := range s.View().Dump(now) {
				if d.Service != "echo" {
					continue
				}
				for _, l := range d.Loaders {
					if v, ok := idle[l.Addr]; i > 0 && (!ok || v != l.Load.Idle) {
						return false
					}
					shares[l.Addr] += l.Share
					idle[l.Addr] = l.Load.Idle
				}
			}
		}
		for addr := range idle {
			if shares[addr] != idle[addr] {
				return false
			}
		}
		return len(idle) == 3
	})
}

func TestFailover(t *testing.T) {
	p := startPolaris(t, "")
	a := startLoader(t, p.GRPCAddr(), 10)
	b := startLoader(t, p.GRPCAddr(), 10)
	c := startLoader(t, p.GRPCAddr(), 10)
	srv, lb := startLB(t, p.GRPCAddr())
	testpoll.Until(t, 5*time.Second, "3 loaders live", func() bool { return srv.Live("echo") == 3 })
	picks := func() map[string]bool {
		seen := map[string]bool{}
		for range 30 {
			resp, err := lb.Pick(context.Background(), &lbpb.PickRequest{Service: "echo", N: 3})
			require.NoError(t, err)
			for _, addr := range resp.GetAddrs() {
				seen[addr] = true
			}
		}
		return seen
	}
	require.Len(t, picks(), 3)

	// A crash (no live=0, no deregistration): out of rotation within 3 s.
	killed := time.Now()
	a.Kill()
	testpoll.Until(t, 3*time.Second, "killed loader out of rotation", func() bool { return !picks()[a.AdvertisedAddr()] })
	t.Logf("killed loader left rotation after %s", time.Since(killed).Round(time.Millisecond))

	// A shutdown reports live=0 first: out of rotation at once.
	require.NoError(t, b.Shutdown(context.Background()))
	testpoll.Until(t, 200*time.Millisecond, "stopped loader out of rotation", func() bool { return !picks()[b.AdvertisedAddr()] })
	require.Equal(t, map[string]bool{c.AdvertisedAddr(): true}, picks())

	// exclude lets a caller retry elsewhere; excluding everything is 10223.
	_, err := lb.Pick(context.Background(), &lbpb.PickRequest{Service: "echo", Exclude: []string{c.AdvertisedAddr()}})
	require.Equal(t, 10223, aserr.CodeOf(grpcx.FromStatus(err)))
}

func TestNATSRestartResynchronises(t *testing.T) {
	emb, err := natsbus.StartEmbedded("127.0.0.1:0", zerolog.Nop())
	require.NoError(t, err)
	url := emb.ClientURL()
	_, port, err := net.SplitHostPort(url[len("nats://"):])
	require.NoError(t, err)
	var stopped atomic.Bool
	t.Cleanup(func() {
		if !stopped.Load() {
			emb.Shutdown()
		}
	})
	p := startPolaris(t, url)
	l1 := startLoader(t, p.GRPCAddr(), 10)
	srv, lb := startLB(t, p.GRPCAddr())
	testpoll.Until(t, 5*time.Second, "loader live", func() bool { return srv.Live("echo") == 1 })

	emb.Shutdown()
	testpoll.Until(t, 5*time.Second, "lbclient sees NATS down", func() bool {
		_, _, ok := srv.View().LoaderLoad("echo", l1.AdvertisedAddr())
		return ok && !natsConnected(srv)
	})
	// Longer than StaleAfter without a NATS event: polaris polling keeps the loader in.
	deadline := time.Now().Add(4 * interval)
	for time.Now().Before(deadline) {
		resp, err := lb.Pick(context.Background(), &lbpb.PickRequest{Service: "echo"})
		require.NoError(t, err, "picks go on while NATS is down")
		require.Equal(t, []string{l1.AdvertisedAddr()}, resp.GetAddrs())
		time.Sleep(50 * time.Millisecond) // pacing the probe
	}
	// A loader that registers during the outage is learnt from polaris too.
	l2 := startLoader(t, p.GRPCAddr(), 10)
	testpoll.Until(t, 5*time.Second, "new loader seen while NATS is down", func() bool { return srv.Live("echo") == 2 })

	emb2, err := natsbus.StartEmbedded("127.0.0.1:"+port, zerolog.Nop())
	require.NoError(t, err)
	stopped.Store(true)
	t.Cleanup(emb2.Shutdown)
	testpoll.Until(t, 10*time.Second, "lbclient reconnected", func() bool { return natsConnected(srv) })
	// Load events flow again: a session on l2 shows in the view through NATS.
	_, seq0, _ := srv.View().LoaderLoad("echo", l2.AdvertisedAddr())
	testpoll.Until(t, 5*time.Second, "load events after the restart", func() bool {
		_, seq, _ := srv.View().LoaderLoad("echo", l2.AdvertisedAddr())
		return seq > seq0+1
	})
	require.Equal(t, 2, srv.Live("echo"))
}

// natsConnected reads the source's connection state through the admin dump.
func natsConnected(s *lbclient.Server) bool { return s.NATSConnected() }
