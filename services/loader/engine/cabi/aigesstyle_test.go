package cabi

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/athenaserving/asf/services/loader/engine"
	"github.com/athenaserving/asf/services/loader/engine/cabi/cabitest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
)

// buildAigesStyle compiles testdata/aigesstyle/wrapper.c — an engine in AIGES's spelling
// (WrapperAPI, wrapperXxxPtr typedefs, empty parameter lists) — against
// services/loader/include with compiler (extra args first), -Wall -Wextra -Werror and
// -fvisibility=hidden, so only the WrapperAPI functions are exported. The engine's
// wrapperInit fails (31004) if a constant of the headers differs from AIGES's value.
func buildAigesStyle(t *testing.T, compiler string, lang ...string) string {
	t.Helper()
	cc, err := exec.LookPath(compiler)
	if err != nil {
		t.Skipf("%s not installed", compiler)
	}
	_, file, _, _ := runtime.Caller(0)
	src := filepath.Join(filepath.Dir(file), "testdata", "aigesstyle", "wrapper.c")
	out := filepath.Join(t.TempDir(), "libwrapper.so")
	args := append(append([]string{}, lang...), "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC",
		"-fvisibility=hidden", "-I", cabitest.IncludeDir(), "-o", out, src)
	if b, err := exec.Command(cc, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", compiler, strings.Join(args, " "), err, b)
	}
	return out
}

func TestAigesStyleEngine(t *testing.T) {
	for _, tc := range []struct {
		name, compiler string
		lang           []string
	}{
		{"gcc", "gcc", nil},
		{"g++", "g++", []string{"-x", "c++"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			so := buildAigesStyle(t, tc.compiler, tc.lang...)
			for _, async := range []bool{false, true} {
				t.Run(fmt.Sprintf("async=%v", async), func(t *testing.T) { runAigesStyle(t, so, async) })
			}
		})
	}
}

// runAigesStyle loads the engine through the cabi loader and runs a once request and a
// three-frame session.
func runAigesStyle(t *testing.T, so string, async bool) {
	reg := prometheus.NewRegistry()
	var logs syncBuf
	e := open(t, so, Options{Async: async, Registry: reg, Log: zerolog.New(&logs).Level(zerolog.DebugLevel)},
		map[string]string{"name": "unit"})
	for _, s := range append(append([]string{}, Required...), Optional...) {
		if !e.Has(s) {
			t.Errorf("%s not exported", s)
		}
	}
	if v := e.Version(); v != "aigesstyle 1.0 unit" {
		t.Fatalf("version %q", v)
	}

	resp, err := e.Once(t.Context(), engine.Request{Tag: "sid-aiges", Inputs: []engine.Payload{text("text", "hello")}})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Outputs) != 1 || resp.Outputs[0].Name != "text" || string(resp.Outputs[0].Data) != "HELLO" ||
		resp.Outputs[0].Type != engine.DataText || resp.Outputs[0].Attrs["encoding"] != "utf8" {
		t.Fatalf("once outputs %+v", resp.Outputs)
	}
	if got := testutil.ToFloat64(e.meter.WithLabelValues("chars")); got != 5 {
		t.Fatalf("meter chars = %v, want 5", got)
	}
	if l := logs.String(); !strings.Contains(l, "sid-aiges") || !strings.Contains(l, "exec") {
		t.Fatalf("trace log missing: %s", l)
	}
	_, err = e.Once(t.Context(), engine.Request{Params: map[string]string{"fail": "1"}, Inputs: []engine.Payload{text("text", "x")}})
	kind := ErrExec
	if async {
		kind = ErrExecAsync
	}
	checkEngineErr(t, err, 31001, "failure requested by parameter fail", kind)

	var c collector
	s, err := e.NewSession(t.Context(), engine.SessionParams{Tag: "sid-aiges-s"}, c.emit)
	if err != nil {
		t.Fatal(err)
	}
	frames := []engine.Frame{
		{SyncID: 0, Status: engine.StatusBegin, Inputs: []engine.Payload{text("audio", "ab")}},
		{SyncID: 1, Status: engine.StatusContinue, Inputs: []engine.Payload{text("audio", "cd")}},
		{SyncID: 2, Status: engine.StatusEnd, Inputs: []engine.Payload{text("audio", "ef")}},
	}
	for _, f := range frames {
		if err := s.Write(t.Context(), f); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"AB", "CD", "EF"}
	res := c.snapshot()
	if len(res) != len(want) {
		t.Fatalf("session results %+v", res)
	}
	for i, r := range res {
		if r.Err != nil || r.Status != frames[i].Status || len(r.Outputs) != 1 || string(r.Outputs[0].Data) != want[i] {
			t.Fatalf("result %d = %+v", i, r)
		}
	}
	if d := s.(*Session).DebugInfo(); d != "aigesstyle writes=3" {
		t.Fatalf("debug info %q", d)
	}
	if got := testutil.ToFloat64(e.meter.WithLabelValues("writes")); got != 3 {
		t.Fatalf("meter writes = %v, want 3", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
