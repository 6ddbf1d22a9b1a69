package buildinfo

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFromBuildInfoReadsTheVCSStamp(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.0", Settings: []debug.BuildSetting{
		{Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: "6e176e5c0ffee"},
		{Key: "vcs.modified", Value: "true"},
	}}
	got := fromBuildInfo(Info{Version: "1.4.0", Commit: "unknown"}, bi)
	require.Equal(t, Info{Version: "1.4.0", Commit: "6e176e5c0ffee", Modified: true, GoVersion: "go1.26.0"}, got)
	require.Equal(t, "webgate version 1.4.0 commit 6e176e5c0ffee (modified) go1.26.0", got.String("webgate"))
}

func TestGetWithoutVCSStampSaysUnknownAndDev(t *testing.T) {
	// A test binary carries no vcs.revision.
	got := Get()
	require.Equal(t, "dev", got.Version)
	require.Equal(t, runtime.Version(), got.GoVersion)
	require.NotEmpty(t, got.Commit)
	line := got.String("x")
	require.True(t, strings.HasPrefix(line, "x version dev commit "), line)
	require.True(t, strings.HasSuffix(line, runtime.Version()), line)
}

func TestWantsVersion(t *testing.T) {
	require.True(t, WantsVersion([]string{"--log-level", "info", "--version"}))
	require.True(t, WantsVersion([]string{"-version"}))
	require.False(t, WantsVersion([]string{"--", "--version"}))
	require.False(t, WantsVersion([]string{"--versions"}))
	require.False(t, WantsVersion(nil))
}

func TestPrintIfAsked(t *testing.T) {
	var b strings.Builder
	require.False(t, PrintIfAsked(&b, "asedemo", []string{"tts"}))
	require.Empty(t, b.String())
	require.True(t, PrintIfAsked(&b, "asedemo", []string{"--version"}))
	require.Equal(t, Get().String("asedemo")+"\n", b.String())
	require.Equal(t, "asedemo version "+Get().Short(), Get().String("asedemo"))
}
