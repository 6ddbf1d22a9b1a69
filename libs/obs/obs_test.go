package obs

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

func startAdmin(t *testing.T, opts ...AdminOption) string {
	t.Helper()
	a, err := NewAdmin("127.0.0.1:0", prometheus.NewRegistry(), func() bool { return true }, opts...)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Serve() }()
	t.Cleanup(func() {
		if err := a.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return "http://" + a.Addr()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestPprofOffByDefault(t *testing.T) {
	base := startAdmin(t)
	for _, p := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/cmdline", "/debug/pprof/symbol"} {
		if code, _ := get(t, base+p); code != http.StatusNotFound {
			t.Errorf("%s: HTTP %d, want 404 with pprof off", p, code)
		}
	}
	if code, _ := get(t, base+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz: HTTP %d", code)
	}
}

func TestPprofOnNeverServesCmdline(t *testing.T) {
	base := startAdmin(t, WithPprof(true))
	if code, _ := get(t, base+"/debug/pprof/goroutine?debug=1"); code != http.StatusOK {
		t.Errorf("goroutine profile: HTTP %d, want 200 with pprof on", code)
	}
	if code, body := get(t, base+"/debug/pprof/cmdline"); code != http.StatusNotFound {
		t.Errorf("cmdline: HTTP %d %q, want 404 even with pprof on", code, body)
	}
}

func TestLoggerTimeIsRFC3339UTCWithMilliseconds(t *testing.T) {
	var buf bytes.Buffer
	log := NewLogger(&buf, "webgate", "info").With().Str("sid", "x").Logger()
	before := time.Now().Truncate(time.Millisecond)
	log.Info().Msg("hello")
	log.Debug().Msg("not logged at info")
	var line struct {
		Time    string `json:"time"`
		Svc     string `json:"svc"`
		Message string `json:"message"`
	}
	require.NoError(t, json.Unmarshal(buf.Bytes(), &line), buf.String())
	require.Equal(t, "webgate", line.Svc)
	require.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`, line.Time)
	ts, err := time.Parse(time.RFC3339Nano, line.Time)
	require.NoError(t, err)
	require.False(t, ts.Before(before), "%s before %s", ts, before)
	require.Equal(t, 1, strings.Count(buf.String(), `"time"`))
	require.Equal(t, 1, strings.Count(buf.String(), "\n"))
}

// TestMetricsServeExemplarsInOpenMetrics checks that a scraper asking for OpenMetrics gets
// a histogram's exemplar (the trace id of a sampled request) and that the text format stays
// the default.
func TestMetricsServeExemplarsInOpenMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "asf_test_seconds", Help: "test", Buckets: []float64{1}})
	reg.MustRegister(h)
	h.(prometheus.ExemplarObserver).ObserveWithExemplar(0.5, prometheus.Labels{"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"})
	a, err := NewAdmin("127.0.0.1:0", reg, nil)
	require.NoError(t, err)
	go func() { _ = a.Serve() }()
	t.Cleanup(func() { _ = a.Shutdown(context.Background()) })

	req, err := http.NewRequest(http.MethodGet, "http://"+a.Addr()+"/metrics", nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, resp.Header.Get("Content-Type"), "application/openmetrics-text")
	require.Contains(t, string(body), `# {trace_id="4bf92f3577b34da6a3ce929d0e0e4736"} 0.5`)

	_, text := get(t, "http://"+a.Addr()+"/metrics")
	require.Contains(t, text, "asf_test_seconds_bucket")
	require.NotContains(t, text, "trace_id", "the text format carries no exemplars")
}
