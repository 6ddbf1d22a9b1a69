package suite

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// fakeBin writes an executable script named name into dir that prints help on --help.
func fakeBin(t *testing.T, dir, name, help string) {
	t.Helper()
	script := "#!/bin/sh\ncat <<'EOF'\n" + help + "\nEOF\nexit 2\n"
	if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestTraceArgs: a service gets --trace-endpoint only when the suite has an endpoint and
// the binary lists the flag in its --help (whatever its exit code).
func TestTraceArgs(t *testing.T) {
	dir := t.TempDir()
	fakeBin(t, dir, "atom", "  --log-level string\n  --trace-endpoint string   OTLP/gRPC collector")
	fakeBin(t, dir, "loader", "  --log-level string\n  --trace-endpoint-x string")
	fakeBin(t, dir, "webgate", "Usage of webgate:\n  -trace-endpoint value\n    \tOTLP/gRPC collector\n  -trace-sample-rate value")

	s := &Suite{opts: Options{BinDir: dir, TraceEndpoint: "127.0.0.1:4317", TraceSampleRate: "1"}}
	if got, want := s.traceArgs("atom"), []string{"--trace-endpoint", "127.0.0.1:4317"}; !slices.Equal(got, want) {
		t.Errorf("atom (no --trace-sample-rate but webgate's): %v, want %v", got, want)
	}
	if got, want := s.traceArgs("webgate"), []string{"--trace-endpoint", "127.0.0.1:4317", "--trace-sample-rate", "1"}; !slices.Equal(got, want) {
		t.Errorf("webgate (Go flag help, one dash): %v, want %v", got, want)
	}
	if got := s.traceArgs("loader"); got != nil {
		t.Errorf("loader without the flag: %v, want none", got)
	}
	if got := s.traceArgs("missing"); got != nil {
		t.Errorf("a binary that does not run: %v, want none", got)
	}
	off := &Suite{opts: Options{BinDir: dir}}
	if got := off.traceArgs("atom"); got != nil {
		t.Errorf("no trace endpoint: %v, want none", got)
	}
	if off.JaegerURL() != "" || off.TraceEndpoint() != "" {
		t.Errorf("no Jaeger: JaegerURL %q, TraceEndpoint %q", off.JaegerURL(), off.TraceEndpoint())
	}
}
