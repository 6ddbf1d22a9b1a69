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
