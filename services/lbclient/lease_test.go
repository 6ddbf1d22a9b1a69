package lbclient_test

import (
	"strings"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/grpcx"
	lbpb "github.com/athenaserving/asf/libs/proto/lb/v1"
	"github.com/athenaserving/asf/services/lbclient"
	"github.com/stretchr/testify/require"
)

func lbConn(t *testing.T, srv *lbclient.Server) lbpb.LbClient {
	t.Helper()
	cc, err := grpcx.Dial(srv.GRPCAddr())
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })
	return lbpb.NewLbClient(cc)
}

// Lease grants picks with room, at most lease-max, valid for lease-validity (at most a
// quarter of pick-lease), and refuses consistent-hash services.
func TestLeaseGrantsPicksWithRoom(t *testing.T) {
	srv, _ := startConfigured(t, func(c *lbclient.Config) {
		c.ReplicaService = "" // this replica owns every idle slot
		c.LeaseMax, c.LeaseValidity = 5, time.Second
		c.Strategies = map[string]string{"tts": "consistent-hash"}
	}, state("echo", "10.0.0.1:5090", 4, 1, 1), state("echo", "10.0.0.2:5090", 2, 1, 1), state("tts", "10.0.0.3:5090", 4, 1, 1))
	lb := lbConn(t, srv)

	resp, err := lb.Lease(t.Context(), &lbpb.LeaseRequest{Service: "echo", N: 3, Count: 100})
	require.NoError(t, err)
	require.False(t, resp.GetRefused())
	require.Equal(t, int32(2), resp.GetPer(), "two loaders: two candidates per pick")
	require.Len(t, resp.GetPicks(), 5*2, "lease-max picks")
	require.Equal(t, (25 * time.Millisecond).Microseconds(), resp.GetValidUs(), "pick-lease/4")
	// The next lease gets the one slot left, then none: a lease holds no over-commit.
	resp, err = lb.Lease(t.Context(), &lbpb.LeaseRequest{Service: "echo", N: 3, Count: 100})
	require.NoError(t, err)
	require.Len(t, resp.GetPicks(), 2)
	resp, err = lb.Lease(t.Context(), &lbpb.LeaseRequest{Service: "echo", N: 3, Count: 100})
	require.NoError(t, err)
	require.Empty(t, resp.GetPicks())
	require.False(t, resp.GetRefused())

	resp, err = lb.Lease(t.Context(), &lbpb.LeaseRequest{Service: "tts", N: 3, Count: 4})
	require.NoError(t, err)
	require.True(t, resp.GetRefused())
	_, err = lb.Lease(t.Context(), &lbpb.LeaseRequest{Service: "nope", N: 3, Count: 4})
	require.Equal(t, 10404, aserr.CodeOf(grpcx.FromStatus(err)))

	_, metrics := httpGet(t, "http://"+srv.AdminAddr()+"/metrics")
	for _, want := range []string{
		`asf_lbclient_leased_picks_total{service="echo"} 6`,
		`asf_lbclient_leases_total{code="0",service="echo"} 3`,
		`asf_lbclient_leases_total{code="refused",service="tts"} 1`,
		`asf_lbclient_leases_total{code="10404",service="_unknown"} 1`,
		`asf_lbclient_overcommits_total{service="echo"} 0`,
	} {
		require.True(t, strings.Contains(metrics, want), "metrics lack %s", want)
	}
}

func TestLeasesOff(t *testing.T) {
	srv, _ := startConfigured(t, func(c *lbclient.Config) { c.LeaseMax = 0 }, state("echo", "10.0.0.1:5090", 4, 1, 1))
	resp, err := lbConn(t, srv).Lease(t.Context(), &lbpb.LeaseRequest{Service: "echo", N: 3, Count: 4})
	require.NoError(t, err)
	require.True(t, resp.GetRefused())
	require.Empty(t, resp.GetPicks())
}

// A lease asked on a PickStream is answered like Lb.Lease, an error with its code and an
// empty lease (so a caller tells it from an lbclient that predates leases).
func TestLeaseOnPickStream(t *testing.T) {
	srv, _ := startWithLoaders(t, state("echo", "10.0.0.1:5090", 4, 1, 1))
	st, err := lbConn(t, srv).PickStream(t.Context())
	require.NoError(t, err)
	ask := func(req *lbpb.PickStreamRequest) *lbpb.PickStreamResponse {
		require.NoError(t, st.Send(req))
		resp, err := st.Recv()
		require.NoError(t, err)
		require.Equal(t, req.GetId(), resp.GetId())
		return resp
	}
	resp := ask(&lbpb.PickStreamRequest{Id: 1, Lease: &lbpb.LeaseRequest{Service: "echo", N: 3, Count: 3}})
	require.Zero(t, resp.GetCode())
	require.Equal(t, []string{"10.0.0.1:5090"}, resp.GetLease().GetAddrs())
	require.Equal(t, []uint32{0, 0, 0}, resp.GetLease().GetPicks())
	require.Positive(t, resp.GetLease().GetValidUs())

	resp = ask(&lbpb.PickStreamRequest{Id: 2, Lease: &lbpb.LeaseRequest{Service: "nope", N: 3, Count: 3}})
	require.Equal(t, int32(10404), resp.GetCode())
	require.NotNil(t, resp.GetLease())
	require.Empty(t, resp.GetLease().GetPicks())

	// Picks go on on the same stream.
	resp = ask(&lbpb.PickStreamRequest{Id: 3, Pick: &lbpb.PickRequest{Service: "echo", N: 3}})
	require.Equal(t, []string{"10.0.0.1:5090"}, resp.GetAddrs())
	require.Nil(t, resp.GetLease())
	require.NoError(t, st.CloseSend())
}
