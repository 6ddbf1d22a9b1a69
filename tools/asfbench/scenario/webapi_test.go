package scenario

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/athenaserving/asf/libs/capability"
	"github.com/athenaserving/asf/tools/asfbench/report"
)

// TestWebAPIOnceTargets: the WebAPI 2.0 rows are checked against the same targets and the
// same bare Go echo rows as the ASE rows, under their own metric names.
func TestWebAPIOnceTargets(t *testing.T) {
	env := &Env{Profile: Full()}
	sc := &report.Scenario{XLabel: "concurrency", Rows: []*report.Row{
		row("suite", 1, 3000, 400*time.Microsecond, time.Millisecond, 0),
		row(webapiSystem, 1, 2800, 450*time.Microsecond, time.Millisecond, 0),
		row("bare Go echo", 1, 9000, 100*time.Microsecond, time.Millisecond, 0),
		row(webapiSystem, 64, 4000, 0, 0, 0),
		row("bare Go echo", 64, 10000, 0, 0, 0),
	}}
	ts := onceTargetsOf(sc, env, webapiSystem, "webgate WebAPI 2.0 once")
	require.Len(t, ts, 2)
	assert.Equal(t, "webgate WebAPI 2.0 once p50, c=1 (full path, echo)", ts[0].Metric)
	assert.Equal(t, report.StatusPass, ts[0].Status, "p50 0.45 ms ≤ 0.65 ms")
	assert.Equal(t, "4.500×", ts[0].Ratio)
	assert.Equal(t, report.StatusPass, ts[1].Status, "share 0.4 ≥ 0.35")

	// Without the suite every WebAPI 2.0 row and target says why.
	env = &Env{Profile: Quick(), SuiteUnavailable: "test without suite"}
	sc = &report.Scenario{XLabel: "concurrency"}
	require.NoError(t, runWebAPIOnce(t.Context(), env, nil, sc))
	require.Len(t, sc.Rows, len(env.Profile.OnceConcurrency))
	for _, r := range sc.Rows {
		assert.Equal(t, webapiSystem, r.System)
		assert.Equal(t, "test without suite", r.NotAvailable)
	}
	require.Len(t, sc.Targets, 2)
	for _, tg := range sc.Targets {
		assert.Equal(t, report.StatusNotMeasured, tg.Status)
		assert.True(t, strings.HasPrefix(tg.Metric, "webgate WebAPI 2.0 once"), tg.Metric)
	}
}

// TestWebAPIEchoSchema: the schema pushed for the WebAPI 2.0 rows is one webgate takes.
func TestWebAPIEchoSchema(t *testing.T) {
	require.True(t, json.Valid([]byte(webapiEchoSchema)))
	s, err := capability.Parse([]byte(webapiEchoSchema))
	require.NoError(t, err)
	require.NotNil(t, s.WebAPI())
	assert.Equal(t, webapiRoute, s.WebAPI().Route())
	assert.False(t, s.HasInputSchema(), "no validation: the same work as the ASE rows")
}
