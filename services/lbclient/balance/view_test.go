package balance

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func live(idle int32) Load { return Load{Total: 10, Best: 10, Idle: idle, Live: 1} }

func inst(svc, addr string, ld Load, seq uint64) Instance {
	return Instance{Service: svc, Addr: addr, Load: ld, Seq: seq}
}

func newView(t *testing.T, strategy string) *View {
	t.Helper()
	v, err := NewView(Options{StaleAfter: 3 * time.Second, ForgetAfter: 10 * time.Second, Strategy: strategy})
	require.NoError(t, err)
	return v
}

func TestLeastLoadSpreadsBurstAcrossEqualLoaders(t *testing.T) {
	v := newView(t, StrategyLeastLoad)
	v.Apply([]Instance{inst("echo", "a:1", live(4), 1), inst("echo", "b:1", live(4), 1), inst("echo", "c:1", live(4), 1)}, t0)
	counts := map[string]int{}
	for range 12 {
		got, err := v.Pick("echo", 1, nil, "", t0)
		require.NoError(t, err)
		counts[got[0]]++
	}
	// 12 slots, 12 picks: every loader is filled exactly, none over-committed.
	require.Equal(t, map[string]int{"a:1": 4, "b:1": 4, "c:1": 4}, counts)
	require.Equal(t, uint64(0), v.Stats(t0)[0].Overcommits)
}

func TestLeastLoadTiesShareTrafficWithoutLocalAccounting(t *testing.T) {
	// Even when every loader reports no room, equal loaders take turns.
	v := newView(t, StrategyLeastLoad)
	v.Apply([]Instance{inst("echo", "a:1", live(0), 1), inst("echo", "b:1", live(0), 1)}, t0)
	counts := map[string]int{}
	for range 10 {
		got, err := v.Pick("echo", 1, nil, "", t0)
		require.NoError(t, err)
		counts[got[0]]++
	}
	require.Equal(t, 5, counts["a:1"])
	require.Equal(t, 5, counts["b:1"])
	require.Equal(t, uint64(10), v.Stats(t0)[0].Overcommits)
}

func TestLeastLoadPrefersIdleAndReturnsFullLoadersLast(t *testing.T) {
	v := newView(t, StrategyLeastLoad)
	v.Apply([]Instance{inst("echo", "busy:1", live(1), 1), inst("echo", "idle:1", live(5), 1), inst("echo", "full:1", live(0), 1)}, t0)
	got, err := v.Pick("echo", 3, nil, "", t0)
	require.NoError(t, err)
	require.Equal(t, []string{"idle:1", "busy:1", "full:1"}, got)

	// Burn idle:1 down to busy:1's level and below: picks alternate, then the
	// loaders with room come before the full one.
	for range 4 {
		_, err = v.Pick("echo", 1, nil, "", t0)
		require.NoError(t, err)
	}
	// idle:1 now has effective idle 0 (5 - 5 picks), busy:1 has 1.
	got, err = v.Pick("echo", 3, nil, "", t0)
	require.NoError(t, err)
	require.Equal(t, "busy:1", got[0])
	require.Len(t, got, 3)

	// A report within the lease still counts the picks as in flight; a later one
	// resets the local accounting.
	require.True(t, v.Report("echo", "idle:1", live(5), 2, t0))
	got, err = v.Pick("echo", 1, nil, "", t0)
	require.NoError(t, err)
	require.Equal(t, []string{"busy:1"}, got)
	later := t0.Add(DefaultLease + time.Millisecond)
	require.True(t, v.Report("echo", "idle:1", live(5), 3, later))
	got, err = v.Pick("echo", 1, nil, "", later)
	require.NoError(t, err)
	require.Equal(t, []string{"idle:1"}, got)
}

func TestStaleLoaderLeavesRotationAndReturnsOnReport(t *testing.T) {
	v := newView(t, StrategyLeastLoad)
	v.Apply([]Instance{inst("echo", "a:1", live(4), 1), inst("echo", "b:1", live(4), 1)}, t0)
	require.Equal(t, 2, v.Live("echo", t0))

	// b keeps reporting, a goes silent.
	now := t0
	for i := range 3 {
		now = now.Add(time.Second)
		require.True(t, v.Report("echo", "b:1", live(4), uint64(2+i), now))
	}
	require.Equal(t, 2, v.Live("echo", now), "3 s after the last report is not yet stale")
	now = now.Add(time.Second)
	require.Equal(t, 1, v.Live("echo", now))
	got, err := v.Pick("echo", 3, nil, "", now)
	require.NoError(t, err)
	require.Equal(t, []string{"b:1"}, got)

	require.True(t, v.Report("echo", "a:1", live(4), 2, now))
	require.Equal(t, 2, v.Live("echo", now))

	// Everybody stale: known service, no engine.
	_, err = v.Pick("echo", 1, nil, "", now.Add(4*time.Second))
	require.True(t, errors.Is(err, aserr.ErrNoEngine), "%v", err)
}

func TestNotLiveAndDisabledLeaveAtOnce(t *testing.T) {
	v := newView(t, StrategyLeastLoad)
	v.Apply([]Instance{inst("echo", "a:1", live(4), 1), inst("echo", "b:1", live(4), 1), inst("echo", "c:1", live(4), 1)}, t0)

	require.True(t, v.Report("echo", "a:1", Load{Total: 10, Idle: 4, Live: 0}, 2, t0))
	v.Upsert(Instance{Service: "echo", Addr: "b:1", Admin: &Admin{Enabled: false, Weight: 100}}, t0)
	got, err := v.Pick("echo", 3, nil, "", t0)
	require.NoError(t, err)
	require.Equal(t, []string{"c:1"}, got)

	// Admin state survives a later load report; enabling brings b back.
	require.True(t, v.Report("echo", "b:1", live(4), 5, t0))
	require.Equal(t, 1, v.Live("echo", t0))
	v.Upsert(Instance{Service: "echo", Addr: "b:1", Admin: &Admin{Enabled: true, Weight: 100}}, t0)
	require.Equal(t, 2, v.Live("echo", t0))
}

func TestExcludeAndDistinct(t *testing.T) {
	v := newView(t, StrategyLeastLoad)
	v.Apply([]Instance{inst("echo", "a:1", live(9), 1), inst("echo", "b:1", live(5), 1), inst("echo", "c:1", live(1), 1)}, t0)

	got, err := v.Pick("echo", 5, nil, "", t0)
	require.NoError(t, err)
	require.Equal(t, []string{"a:1", "b:1", "c:1"}, got, "n larger than the pool gives each loader once")

	got, err = v.Pick("echo", 2, []string{"a:1"}, "", t0)
	require.NoError(t, err)
	require.Equal(t, []string{"b:1", "c:1"}, got)

	_, err = v.Pick("echo", 1, []string{"a:1", "b:1", "c:1"}, "", t0)
	require.True(t, errors.Is(err, aserr.ErrNoEngine), "%v", err)

	got, err = v.Pick("echo", 0, nil, "", t0)
	require.NoError(t, err)
	require.Len(t, got, 1, "n=0 means 1")
}

func TestNotFoundVersusNoEngine(t *testing.T) {
	v := newView(t, StrategyLeastLoad)
	_, err := v.Pick("nope", 1, nil, "", t0)
	require.Equal(t, 10404, aserr.CodeOf(err))

	v.Apply([]Instance{inst("echo", "a:1", live(1), 1)}, t0)
	v.Remove("echo", "a:1", 1, t0)
	_, err = v.Pick("echo", 1, nil, "", t0)
	require.Equal(t, 10223, aserr.CodeOf(err))
	require.True(t, v.Known("echo"))
}

func TestOldSeqIgnored(t *testing.T) {
	v := newView(t, StrategyLeastLoad)
	v.Apply([]Instance{inst("echo", "a:1", live(4), 5)}, t0)
	require.False(t, v.Report("echo", "a:1", live(1), 4, t0))
	require.False(t, v.Report("echo", "a:1", live(1), 5, t0), "a duplicate does not reset local accounting")
	require.Equal(t, int32(4), v.Dump(t0)[0].Loaders[0].Load.Idle)
	require.True(t, v.Report("echo", "a:1", live(2), 6, t0))
	require.Equal(t, int32(2), v.Dump(t0)[0].Loaders[0].Load.Idle)

	// Once stale, a lower seq is taken (the registry restarted and counts anew).
	later := t0.Add(4 * time.Second)
	require.True(t, v.Report("echo", "a:1", live(3), 1, later))
	require.Equal(t, 1, v.Live("echo", later))
}

func TestRemovedLoaderNotRevivedByLateReport(t *testing.T) {
	v := newView(t, StrategyLeastLoad)
	v.Apply([]Instance{inst("echo", "a:1", live(4), 5)}, t0)
	v.Remove("echo", "a:1", 6, t0)
	require.False(t, v.Report("echo", "a:1", live(4), 6, t0))
	require.Equal(t, 0, v.Live("echo", t0))
	// Re-registration clears the tombstone even when the registry's seq starts over.
	v.Upsert(inst("echo", "a:1", live(4), 1), t0)
	require.True(t, v.Report("echo", "a:1", live(4), 2, t0))
	require.Equal(t, 1, v.Live("echo", t0))
}

func TestApplyReplacesMembershipKeepsAdmin(t *testing.T) {
	v := newView(t, StrategyLeastLoad)
	v.Apply([]Instance{inst("echo", "a:1", live(4), 1), inst("echo", "b:1", live(4), 1)}, t0)
	v.Upsert(Instance{Service: "echo", Addr: "a:1", Admin: &Admin{Enabled: false}}, t0)
	v.Apply([]Instance{inst("echo", "a:1", live(4), 2), inst("tts", "x:1", live(4), 1)}, t0)
	d := v.Dump(t0)
	require.Len(t, d, 2)
	require.Equal(t, "echo", d[0].Service)
	require.Len(t, d[0].Loaders, 1)
	require.False(t, d[0].Loaders[0].Admin.Enabled, "a snapshot without admin keeps the admin state")
	require.Equal(t, "stale", func() string {
		return v.Dump(t0.Add(time.Minute))[1].Loaders[0].Reason
	}())
}

func TestSweepForgetsLongSilentLoaders(t *testing.T) {
	v := newView(t, StrategyLeastLoad)
	v.Apply([]Instance{inst("echo", "a:1", live(4), 1), inst("echo", "b:1", live(4), 1)}, t0)
	now := t0.Add(9 * time.Second)
	v.Report("echo", "b:1", live(4), 2, now)
	require.Equal(t, 0, v.Sweep(now))
	now = t0.Add(11 * time.Second)
	require.Equal(t, 1, v.Sweep(now))
	require.Len(t, v.Dump(now)[0].Loaders, 1)
	_, err := v.Pick("echo", 1, nil, "", now)
	require.NoError(t, err)
}

func TestRoundRobin(t *testing.T) {
	v := newView(t, StrategyRoundRobin)
	require.Equal(t, StrategyRoundRobin, v.StrategyName("echo"))
	v.Apply([]Instance{inst("echo", "a:1", live(9), 1), inst("echo", "b:1", live(0), 1), inst("echo", "c:1", live(1), 1)}, t0)
	var firsts []string
	for range 6 {
		got, err := v.Pick("echo", 2, nil, "", t0)
		require.NoError(t, err)
		require.Len(t, got, 2)
		require.NotEqual(t, got[0], got[1])
		firsts = append(firsts, got[0])
	}
	require.Equal(t, []string{"a:1", "b:1", "c:1", "a:1", "b:1", "c:1"}, firsts)
}

func TestNewStrategyUnknown(t *testing.T) {
	_, err := NewStrategy("random")
	require.Error(t, err)
}

func TestPickConcurrent(t *testing.T) {
	v := newView(t, StrategyLeastLoad)
	var snap []Instance
	for i := range 4 {
		snap = append(snap, inst("echo", fmt.Sprintf("l%d:1", i), live(100), 1))
	}
	v.Apply(snap, t0)
	done := make(chan struct{})
	for range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 50 {
				_, _ = v.Pick("echo", 3, nil, "", t0)
			}
		}()
	}
	for i := range 20 {
		v.Report("echo", "l0:1", live(100), uint64(2+i), t0)
	}
	for range 4 {
		<-done
	}
	require.Equal(t, uint64(200), v.Stats(t0)[0].Picks)
}

func TestLeastLoadDistributionFollowsIdle(t *testing.T) {
	v := newView(t, StrategyLeastLoad)
	idle := map[string]int32{"a:1": 8, "b:1": 4, "c:1": 2, "d:1": 2}
	counts := map[string]int{}
	now := t0
	for round := range 50 {
		now = now.Add(time.Second)
		for addr, n := range idle {
			v.Report("echo", addr, live(n), uint64(round+1), now)
		}
		for range 16 {
			got, err := v.Pick("echo", 3, nil, "", now)
			require.NoError(t, err)
			require.Len(t, got, 3)
			counts[got[0]]++
		}
	}
	require.Equal(t, map[string]int{"a:1": 400, "b:1": 200, "c:1": 100, "d:1": 100}, counts)
	require.Equal(t, uint64(0), v.Stats(now)[0].Overcommits)
}
