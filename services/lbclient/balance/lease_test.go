package balance

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/stretchr/testify/require"
)

func threeLoaders() []Instance {
	return []Instance{inst("echo", "a:1", capLoad(10, 10), 1), inst("echo", "b:1", capLoad(20, 20), 1), inst("echo", "c:1", capLoad(30, 30), 1)}
}

func inFlight(v *View, now time.Time) map[string]int32 {
	out := map[string]int32{}
	for _, d := range v.Dump(now) {
		for _, l := range d.Loaders {
			out[l.Addr] = l.InFlight
		}
	}
	return out
}

func TestLeaseChargesLikeConsecutivePicks(t *testing.T) {
	for _, strategy := range []string{StrategyLeastLoad, StrategyP2C, StrategyRoundRobin} {
		t.Run(strategy, func(t *testing.T) {
			picked, leased := newView(t, strategy), newView(t, strategy)
			picked.Apply(threeLoaders(), t0)
			leased.Apply(threeLoaders(), t0)
			var want [][]string
			for range 25 {
				got, err := picked.Pick("echo", 3, nil, "", t0)
				require.NoError(t, err)
				want = append(want, got)
			}
			l, err := leased.Lease("echo", 3, 25, t0)
			require.NoError(t, err)
			require.Equal(t, 25, l.Len())
			require.Equal(t, 3, l.Per)
			require.Len(t, l.Addrs, 3, "each address once")
			for i := range l.Len() {
				require.Equal(t, want[i], l.Pick(i), "pick %d", i)
			}
			require.Equal(t, inFlight(picked, t0), inFlight(leased, t0))
			ps, ls := picked.Stats(t0)[0], leased.Stats(t0)[0]
			require.Equal(t, ps.Picks, ls.Picks)
			require.Equal(t, uint64(25), ls.Leased)
			require.Zero(t, ls.Overcommits)
			// The charges are released like a pick's: by a report Lease (100 ms) younger.
			later := t0.Add(DefaultLease)
			for _, in := range threeLoaders() {
				leased.Report("echo", in.Addr, in.Load, 2, later)
			}
			require.Equal(t, map[string]int32{"a:1": 0, "b:1": 0, "c:1": 0}, inFlight(leased, later))
		})
	}
}

func TestLeaseEndsWhereRoomEnds(t *testing.T) {
	v := newView(t, StrategyLeastLoad)
	v.Apply([]Instance{inst("echo", "a:1", capLoad(4, 2), 1), inst("echo", "b:1", capLoad(4, 3), 1)}, t0)
	l, err := v.Lease("echo", 3, 10, t0)
	require.NoError(t, err)
	require.Equal(t, 5, l.Len(), "as many picks as idle slots, no more")
	require.Equal(t, 2, l.Per)
	first := map[string]int{}
	for i := range l.Len() {
		first[l.Pick(i)[0]]++
	}
	require.Equal(t, map[string]int{"a:1": 2, "b:1": 3}, first)
	require.Zero(t, v.Stats(t0)[0].Overcommits)
	// No room left: an empty lease, nothing charged; a pick is still answered.
	l, err = v.Lease("echo", 3, 10, t0)
	require.NoError(t, err)
	require.Zero(t, l.Len())
	require.Equal(t, map[string]int32{"a:1": 2, "b:1": 3}, inFlight(v, t0))
	_, err = v.Pick("echo", 3, nil, "", t0)
	require.NoError(t, err)
	require.Equal(t, uint64(1), v.Stats(t0)[0].Overcommits)
}

func TestLeaseRefusedWhenTheStrategyUsesTheKey(t *testing.T) {
	v, err := NewView(Options{Strategies: map[string]string{"tts": StrategyConsistentHash}})
	require.NoError(t, err)
	v.Apply([]Instance{inst("tts", "a:1", live(5), 1), inst("echo", "b:1", live(5), 1)}, t0)
	_, err = v.Lease("tts", 3, 4, t0)
	require.ErrorIs(t, err, ErrLeaseKeyed)
	_, err = v.Lease("tts@2", 3, 4, t0)
	require.ErrorIs(t, err, ErrLeaseKeyed)
	l, err := v.Lease("echo", 3, 4, t0)
	require.NoError(t, err)
	require.Equal(t, 4, l.Len())
	require.Equal(t, map[string]int32{"a:1": 0, "b:1": 4}, inFlight(v, t0), "nothing charged for tts")
}

func TestLeaseErrorsAreThoseOfPick(t *testing.T) {
	v := newView(t, StrategyLeastLoad)
	a := inst("echo", "a:1", live(4), 1)
	a.Version = "2"
	v.Apply([]Instance{a, inst("down", "d:1", Load{Total: 10, Live: 0}, 1)}, t0)
	_, err := v.Lease("nope", 3, 4, t0)
	require.Equal(t, 10404, aserr.CodeOf(err))
	_, err = v.Lease("echo@9", 3, 4, t0)
	require.True(t, errors.Is(err, ErrUnknownVersion), "%v", err)
	_, err = v.Lease("down", 3, 4, t0)
	require.Equal(t, 10223, aserr.CodeOf(err))
	l, err := v.Lease("echo@2", 3, 4, t0)
	require.NoError(t, err)
	require.Equal(t, 4, l.Len())
	require.Equal(t, []string{"a:1"}, l.Pick(3))
}

func TestReplicaLeasesWithRoomStayWithinIdle(t *testing.T) {
	// Three replicas, each granting leases of different sizes and answering single
	// picks in between: the picks charged with room (all the leased ones, and the
	// single picks not counted as over-commits) add up to each loader's reported idle,
	// no lease over-commits, and a single pick over-commits only on a replica whose
	// share is used up.
	views, idle := idleReplicas(t)
	sent := map[string]int32{}
	granted := 0
	for i := 0; granted < 60; i++ {
		v := views[i%3]
		before := v.Stats(t0)[0].Overcommits
		if i%4 == 3 {
			room := roomOf(v, t0)
			got, err := v.Pick("echo", 3, nil, "", t0)
			require.NoError(t, err)
			if v.Stats(t0)[0].Overcommits == before {
				sent[got[0]]++
				granted++
			} else {
				require.LessOrEqual(t, room, int32(0), "a pick over-committed while its replica had room")
			}
			continue
		}
		l, err := v.Lease("echo", 3, 1+i%7, t0)
		require.NoError(t, err)
		require.Equal(t, before, v.Stats(t0)[0].Overcommits, "a lease never over-commits")
		for k := range l.Len() {
			sent[l.Pick(k)[0]]++
			granted++
		}
		if i > 200 {
			t.Fatalf("only %d of 60 slots granted: %v", granted, sent)
		}
	}
	require.Equal(t, idle, sent)
	for _, v := range views {
		l, err := v.Lease("echo", 3, 5, t0)
		require.NoError(t, err)
		require.Zero(t, l.Len(), "no room left anywhere: %s", fmt.Sprint(inFlight(v, t0)))
	}
}

// roomOf is a replica's room summed over the loaders of echo.
func roomOf(v *View, now time.Time) int32 {
	var room int32
	for _, d := range v.Dump(now) {
		if d.Service == "echo" {
			for _, l := range d.Loaders {
				room += max(l.Share-l.InFlight, 0)
			}
		}
	}
	return room
}
