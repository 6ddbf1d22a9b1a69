package balance

import (
	"errors"
	"testing"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/stretchr/testify/require"
)

func TestPickPinnedVersion(t *testing.T) {
	v := newView(t, StrategyLeastLoad)
	a, b := inst("echo", "a:1", live(4), 1), inst("echo", "b:1", live(4), 1)
	a.Version, b.Version = "1", "2"
	v.Apply([]Instance{a, b}, t0)
	for range 6 {
		got, err := v.Pick("echo@2", 3, nil, "", t0)
		require.NoError(t, err)
		require.Equal(t, []string{"b:1"}, got)
	}
	// A load report (no version) keeps the registered version.
	require.True(t, v.Report("echo", "b:1", live(4), 2, t0))
	got, err := v.Pick("echo@2", 3, nil, "", t0)
	require.NoError(t, err)
	require.Equal(t, []string{"b:1"}, got)
	// Unpinned picks see both versions.
	got, err = v.Pick("echo", 3, nil, "", t0)
	require.NoError(t, err)
	require.Len(t, got, 2)

	_, err = v.Pick("echo@9", 1, nil, "", t0)
	require.True(t, errors.Is(err, ErrUnknownVersion) && aserr.CodeOf(err) == 10404, "unknown version: %v", err)
	// A known version whose loaders are all excluded is busy, not unknown.
	_, err = v.Pick("echo@2", 1, []string{"b:1"}, "", t0)
	require.Equal(t, aserr.ErrNoEngine.Code, aserr.CodeOf(err), "%v", err)
}
