package obs

import (
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
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
