package balance

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func dropView(t *testing.T) (*View, *[]Dropped) {
	t.Helper()
	var got []Dropped
	v, err := NewView(Options{StaleAfter: 3 * time.Second, ForgetAfter: 10 * time.Second, OnDropped: func(d Dropped) { got = append(got, d) }})
	require.NoError(t, err)
	return v, &got
}

func TestExpireReportsSilentLiveLoadersOnce(t *testing.T) {
	v, got := dropView(t)
	v.Apply([]Instance{inst("echo", "a:1", live(4), 1), inst("echo", "b:1", live(4), 1), inst("echo", "c:1", Load{Total: 10}, 1)}, t0)
	require.Empty(t, v.Expire(t0.Add(3*time.Second)))
	v.Report("echo", "b:1", live(4), 2, t0.Add(2*time.Second))
	// a is silent past StaleAfter; b reported later; c is not live (stopping on purpose).
	require.Equal(t, []Dropped{{Service: "echo", Addr: "a:1", Reason: DropSilent}}, v.Expire(t0.Add(3*time.Second+time.Millisecond)))
	require.Equal(t, []Dropped{{Service: "echo", Addr: "a:1", Reason: DropSilent}}, *got)
	require.Empty(t, v.Expire(t0.Add(4*time.Second)), "reported once")
	// Back with a report: in rotation again, and reported again when silent again.
	v.Report("echo", "a:1", live(4), 3, t0.Add(5*time.Second))
	require.Equal(t, 2, v.Live("echo", t0.Add(5*time.Second)))
	require.Equal(t, []Dropped{{Service: "echo", Addr: "a:1", Reason: DropSilent}, {Service: "echo", Addr: "b:1", Reason: DropSilent}},
		sortDropped(v.Expire(t0.Add(9*time.Second))))
}

func sortDropped(d []Dropped) []Dropped {
	if len(d) == 2 && d[0].Addr > d[1].Addr {
		d[0], d[1] = d[1], d[0]
	}
	return d
}

func TestExpireReportsNothingWhileFrozen(t *testing.T) {
	v, got := dropView(t)
	v.Apply([]Instance{inst("echo", "a:1", live(4), 1)}, t0)
	v.Freeze(t0.Add(time.Second))
	require.Empty(t, v.Expire(t0.Add(10*time.Second)))
	v.Thaw(t0.Add(10 * time.Second))
	require.Empty(t, v.Expire(t0.Add(12*time.Second)), "a loader has StaleAfter after a thaw")
	require.Len(t, v.Expire(t0.Add(13*time.Second+time.Millisecond)), 1)
	require.Len(t, *got, 1)
}

func TestRemoveReportsEvictionNotDeregistration(t *testing.T) {
	v, got := dropView(t)
	v.Apply([]Instance{inst("echo", "a:1", live(4), 1), inst("echo", "b:1", live(4), 1), inst("echo", "c:1", live(4), 1)}, t0)
	// b deregisters right after a report (its live=0 may come after the removal).
	v.Remove("echo", "b:1", 1, t0.Add(500*time.Millisecond))
	require.Empty(t, *got)
	// a is removed by the registry after 3 s of silence, before Expire saw it.
	v.Remove("echo", "a:1", 1, t0.Add(3*time.Second))
	require.Equal(t, []Dropped{{Service: "echo", Addr: "a:1", Reason: DropEvicted}}, *got)
	// c was reported silent already: its removal is not reported again.
	v.Expire(t0.Add(3*time.Second + time.Millisecond))
	v.Remove("echo", "c:1", 1, t0.Add(3500*time.Millisecond))
	require.Equal(t, []Dropped{{Service: "echo", Addr: "a:1", Reason: DropEvicted}, {Service: "echo", Addr: "c:1", Reason: DropSilent}}, *got)
}
