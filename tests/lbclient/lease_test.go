package lbclient_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/grpcx"
	"github.com/athenaserving/asf/libs/lbpick"
	loaderpb "github.com/athenaserving/asf/libs/proto/loader/v1"
	"github.com/athenaserving/asf/libs/testpoll"
	"github.com/athenaserving/asf/services/lbclient"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
)

// once runs one once request on the loader and returns its ASE code (0 on success).
func once(ctx context.Context, lc loaderpb.LoaderClient) int {
	_, err := lc.Once(ctx, &loaderpb.LoaderInput{
		State: loaderpb.State_STATE_ONCE, Status: loaderpb.Status_STATUS_ONCE,
		Headers: map[string]string{"sid": fmt.Sprintf("once-%d", sids.Add(1))},
		Pl:      []*loaderpb.Payload{{Meta: &loaderpb.MetaDesc{Name: "text"}, Data: []byte("x")}},
	})
	if err != nil {
		return aserr.CodeOf(grpcx.FromStatus(err))
	}
	return 0
}

// Two atom-side pick clients lease picks concurrently from two lbclient replicas (each
// client spreading its leases and picks over both, as atom does) while their callers run
// once requests and hold sessions on real loaders of 10, 20 and 30 licences: leased picks
// stay within each replica's share, so loader refusals (10110) never exceed the
// over-commit events the replicas counted, and the shares still add up to idle.
func TestLeasesFromReplicasStayWithinIdle(t *testing.T) {
	p := startPolaris(t, "")
	for _, n := range []int{10, 20, 30} {
		startLoader(t, p.GRPCAddr(), n)
	}
	var srvs []*lbclient.Server
	var addrs []string
	for range 2 {
		s, _ := startLB(t, p.GRPCAddr())
		srvs, addrs = append(srvs, s), append(addrs, s.GRPCAddr())
	}
	for _, s := range srvs {
		testpoll.Until(t, 5*time.Second, "every replica sees the others and the loaders", func() bool {
			members, self := s.View().Replicas(time.Now())
			return len(members) == 2 && self >= 0 && s.Live("echo") == 3
		})
	}
	var pickers []*lbpick.Client
	for range 2 {
		cc, err := grpcx.DialList(addrs)
		require.NoError(t, err)
		t.Cleanup(func() { _ = cc.Close() })
		c := lbpick.New(cc, lbpick.Options{Streams: 2, LeaseMax: 16, Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)})
		t.Cleanup(func() { _ = c.Close() })
		pickers = append(pickers, c)
	}

	// Per picker: 8 callers holding sessions for 100–300 ms and 3 running a once request
	// every 20 ms: 16 of 60 licences held by sessions, and every pick charged on top for
	// pick-lease and more, close to the licences in all.
	var cs conns
	defer cs.close()
	var mu sync.Mutex
	codes := map[int]int{}
	var sessions, onces atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for pi, c := range pickers {
		for w := range 11 {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(pi), uint64(w)))
				for ctx.Err() == nil {
					got, err := c.Pick(context.Background(), "echo", 3, nil, fmt.Sprint("uid-", w))
					code := aserr.CodeOf(err)
					if err == nil {
						lc, derr := cs.get(got[0])
						require.NoError(t, derr)
						if w < 3 {
							code = once(context.Background(), lc)
							onces.Add(1)
							time.Sleep(20 * time.Millisecond) // the pace of the workload
						} else {
							code = session(context.Background(), lc, 100*time.Millisecond+time.Duration(rng.IntN(200))*time.Millisecond)
							sessions.Add(1)
						}
					}
					if code != 0 {
						mu.Lock()
						codes[code]++
						mu.Unlock()
					}
				}
			})
		}
	}
	wg.Wait()

	var over, leased uint64
	for _, s := range srvs {
		for _, st := range s.View().Stats(time.Now()) {
			if st.Service == "echo" {
				over += st.Overcommits
				leased += st.Leased
			}
		}
	}
	t.Logf("%d once requests, %d sessions, %d picks leased, %d over-commit events, failures %v", onces.Load(), sessions.Load(), leased, over, codes)
	require.Positive(t, leased, "the pickers leased picks")
	require.Greater(t, sessions.Load(), int64(50))
	// The documented bound, with leases: loader refusals never exceed the picks the
	// replicas flagged as beyond their share (a leased pick never is one).
	require.LessOrEqual(t, uint64(codes[10110]), over, "codes %v, over-commit events %d", codes, over)
	delete(codes, 10110)
	require.Empty(t, codes, "no failure but 10110")
	requireSharesAddUp(t, srvs)
}
