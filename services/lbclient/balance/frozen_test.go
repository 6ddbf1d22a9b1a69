package balance

import (
	"errors"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/stretchr/testify/require"
)

func TestFrozenViewKeepsSilentLoadersInRotation(t *testing.T) {
	v := newView(t, StrategyLeastLoad)
	v.Apply([]Instance{inst("echo", "a:1", live(4), 1), inst("echo", "b:1", live(4), 1),
		inst("echo", "dead:1", Load{Total: 4}, 1), inst("echo", "off:1", live(4), 1), inst("echo", "gone:1", live(4), 1)}, t0)
	v.Upsert(Instance{Service: "echo", Addr: "off:1", Load: live(4), Seq: 1, Admin: &Admin{Enabled: false, Weight: 100}}, t0)
	v.Remove("echo", "gone:1", 1, t0)
	require.Equal(t, 2, v.Live("echo", t0))

	frozenAt := t0.Add(time.Second)
	require.True(t, v.Freeze(frozenAt))
	require.False(t, v.Freeze(frozenAt.Add(time.Second)), "already frozen")
	f, since := v.Frozen()
	require.True(t, f)
	require.Equal(t, frozenAt, since)

	// Far past StaleAfter and ForgetAfter: a and b stay in rotation and in memory; the
	// not-live, disabled and removed loaders stay out.
	late := t0.Add(time.Minute)
	require.Equal(t, 2, v.Live("echo", late))
	require.Zero(t, v.Sweep(late))
	got, err := v.Pick("echo", 5, nil, "", late)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"a:1", "b:1"}, got)
	for _, s := range v.Dump(late) {
		for _, l := range s.Loaders {
			if l.Addr == "a:1" || l.Addr == "b:1" {
				require.True(t, l.InRotation)
				require.Empty(t, l.Reason)
			}
		}
	}
	// Changes that do arrive still apply while frozen.
	v.Upsert(Instance{Service: "echo", Addr: "b:1", Load: live(4), Seq: 2, Admin: &Admin{Enabled: false, Weight: 100}}, late)
	require.Equal(t, 1, v.Live("echo", late))
	require.True(t, v.Report("echo", "b:1", Load{Total: 4}, 3, late))
	v.Upsert(Instance{Service: "echo", Addr: "b:1", Load: Load{Total: 4}, Seq: 3, Admin: &Admin{Enabled: true, Weight: 100}}, late)
	require.Equal(t, 1, v.Live("echo", late), "live=0 stays out")
}

func TestThawRestartsStalenessFromTheThaw(t *testing.T) {
	v := newView(t, StrategyLeastLoad)
	v.Apply([]Instance{inst("echo", "a:1", live(4), 1), inst("echo", "b:1", live(4), 1)}, t0)
	require.True(t, v.Freeze(t0.Add(2*time.Second)))
	thaw := t0.Add(30 * time.Second)
	require.True(t, v.Thaw(thaw))
	require.False(t, v.Thaw(thaw), "not frozen")
	f, _ := v.Frozen()
	require.False(t, f)

	// Every loader gets StaleAfter from the thaw to report again.
	require.Equal(t, 2, v.Live("echo", thaw.Add(3*time.Second)))
	now := thaw.Add(2 * time.Second)
	require.True(t, v.Report("echo", "a:1", live(3), 2, now))
	// b does not report: stale 3 s after the thaw, a is not.
	require.Equal(t, 1, v.Live("echo", thaw.Add(3*time.Second+time.Millisecond)))
	got, err := v.Pick("echo", 2, nil, "", thaw.Add(4*time.Second))
	require.NoError(t, err)
	require.Equal(t, []string{"a:1"}, got)
	// Forgetting also counts from the thaw.
	require.Zero(t, v.Sweep(thaw.Add(9*time.Second)))
	require.Equal(t, 2, v.Sweep(thaw.Add(20*time.Second)))
	_, err = v.Pick("echo", 1, nil, "", thaw.Add(20*time.Second))
	require.True(t, errors.Is(err, aserr.ErrNoEngine), "%v", err)
}

func TestUnfrozenViewEvictsAsBefore(t *testing.T) {
	v := newView(t, StrategyLeastLoad)
	v.Apply([]Instance{inst("echo", "a:1", live(4), 1)}, t0)
	require.Equal(t, 0, v.Live("echo", t0.Add(3*time.Second+time.Millisecond)))
	require.True(t, v.Freeze(t0.Add(4*time.Second)))
	require.Equal(t, 1, v.Live("echo", t0.Add(4*time.Second)), "a stale loader returns to rotation when the view freezes")
}

func TestSnapshotWithoutLoadKeepsKnownLoad(t *testing.T) {
	v := newView(t, StrategyLeastLoad)
	v.Apply([]Instance{inst("echo", "a:1", live(4), 7)}, t0)
	require.True(t, v.Freeze(t0.Add(time.Second)))
	// A registry restarted from its store lists a:1 without a load, with a lower seq.
	now := t0.Add(20 * time.Second)
	v.Apply([]Instance{{Service: "echo", Addr: "a:1", Seq: 1, NoLoad: true}, {Service: "echo", Addr: "new:1", Seq: 2, NoLoad: true}}, now)
	v.Thaw(now)
	ld, seq, ok := v.LoaderLoad("echo", "a:1")
	require.True(t, ok)
	require.Equal(t, live(4), ld, "known loader keeps its last load")
	require.Equal(t, uint64(1), seq, "and takes the registry's seq")
	require.Equal(t, 1, v.Live("echo", now), "new loader without load is not live")
	// The restarted registry's next report (seq 3) is taken.
	require.True(t, v.Report("echo", "a:1", live(2), 3, now.Add(time.Second)))
}
