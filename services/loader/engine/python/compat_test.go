package python

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/services/loader/engine"
	"github.com/athenaserving/asf/services/loader/worker"
	"github.com/rs/zerolog"
)

// startWith starts a Python engine with opts (Workers 1, the test's logger) and finis it
// at the end of the test.
func startWith(t *testing.T, opts Options, cfg map[string]string) *worker.Pool {
	t.Helper()
	needPython(t)
	opts.Workers = 1
	opts.Log = zerolog.New(zerolog.NewTestWriter(t))
	eng := New(opts)
	p, ok := eng.(*worker.Pool)
	if !ok {
		t.Fatalf("New: %v", eng.Init(t.Context(), nil))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := p.Init(ctx, cfg); err != nil {
		t.Fatalf("init: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Fini(context.Background()); err != nil {
			t.Errorf("fini: %v", err)
		}
	})
	return p
}

// TestTemplateWrapper runs a wrapper.py exactly as the aiges 0.16 template generates it.
func TestTemplateWrapper(t *testing.T) {
	e := startWith(t, Options{WrapperPath: repoPath(t, "sdk/python/tests/fixtures/template")}, map[string]string{"common.lic": "2"})
	img := []byte("\x89PNG fake")
	resp, err := e.Once(t.Context(), engine.Request{Tag: "t", Params: map[string]string{"p1": "3"}, Inputs: []engine.Payload{
		{Meta: engine.Meta{Name: "data", Type: engine.DataImage}, Data: img},
		{Meta: engine.Meta{Name: "switch", Type: engine.DataText}, Data: []byte("ctrl")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	png, err := os.ReadFile(repoPath(t, "sdk/python/tests/fixtures/template/test_data/test.png"))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Outputs) != 3 || resp.Outputs[0].Name != "ccc" || string(resp.Outputs[2].Data) != string(png) {
		t.Fatalf("outputs: %+v", resp.Outputs)
	}
}

// TestStreamExampleAsync runs the aiges 0.16 stream example in asyncMode: results come
// only through callback from its handle threads, and its wrapperOnceExec returning None
// is an engine error.
func TestStreamExampleAsync(t *testing.T) {
	e := startWith(t, Options{WrapperPath: repoPath(t, "sdk/python/tests/fixtures/stream_mock"), Async: true}, nil)
	c := make(collector, 8)
	s, err := e.NewSession(t.Context(), engine.SessionParams{Tag: "sid-mock"}, func(r engine.Result) { c <- r })
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range []engine.Status{engine.StatusBegin, engine.StatusContinue, engine.StatusEnd} {
		if err := s.Write(t.Context(), engine.Frame{SyncID: int32(i), Status: st, Inputs: []engine.Payload{
			{Meta: engine.Meta{Name: "data", Type: engine.DataImage}, Data: []byte{byte(i)}}}}); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		r := c.next(t)
		if r.Err != nil || r.Status != st || len(r.Outputs) != 1 || r.Outputs[0].Name != "boxes" {
			t.Fatalf("result %d: %+v", i, r)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	select {
	case r := <-c:
		t.Fatalf("a result beyond the callbacks (wrapperRead called in asyncMode?): %+v", r)
	default:
	}
	_, err = e.Once(t.Context(), engine.Request{Tag: "o", Inputs: in("data", "x")})
	if aserr.CodeOf(err) != 30003 || !strings.Contains(aserr.MessageOf(err), "returned None") {
		t.Fatalf("once returning None: %v (code %d)", err, aserr.CodeOf(err))
	}
}

const prefixWrapper = `
import sys
from aiges.dto import Response, ResponseData
from aiges.sdk import WrapperBase

class Wrapper(WrapperBase):
    def wrapperInit(self, config):
        return 0

    def wrapperOnceExec(self, params, reqData, usrTag="", persId=0):
        p = sys.prefix.encode()
        return Response([ResponseData(key="prefix", data=p, length=len(p))])
`

// TestVirtualenvInterpreter runs workers with a virtualenv's python (Options.Python) and
// through a full command (Options.PluginCmd): the worker's sys.prefix is the venv.
func TestVirtualenvInterpreter(t *testing.T) {
	needPython(t)
	dir := t.TempDir()
	venv := filepath.Join(dir, "venv")
	if out, err := exec.CommandContext(t.Context(), DefaultPython, "-m", "venv", "--system-site-packages", "--without-pip", venv).CombinedOutput(); err != nil {
		t.Skipf("cannot create a virtualenv (Debian python3-venv: scripts/engines.sh install): %v\n%s", err, out)
	}
	wdir := filepath.Join(dir, "w")
	if err := os.MkdirAll(wdir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(wdir, "wrapper.py"), []byte(prefixWrapper), 0o644); err != nil {
		t.Fatal(err)
	}
	py := filepath.Join(venv, "bin", "python")
	for name, opts := range map[string]Options{
		"python":    {WrapperPath: wdir, Python: py},
		"plugincmd": {WrapperPath: wdir, PluginCmd: py + " -X utf8"},
	} {
		t.Run(name, func(t *testing.T) {
			e := startWith(t, opts, nil)
			resp, err := e.Once(t.Context(), engine.Request{Tag: "v", Inputs: in("x", "y")})
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Outputs) != 1 || string(resp.Outputs[0].Data) != venv {
				t.Fatalf("worker outputs %+v, want sys.prefix = the venv %s", resp.Outputs, venv)
			}
		})
	}
	if _, err := Config(Options{WrapperPath: wdir, Python: filepath.Join(dir, "no-python")}); aserr.CodeOf(err) != 10107 {
		t.Fatalf("missing interpreter: %v", err)
	}
}

// TestMissingWrapperClass: a wrapper.py without class Wrapper fails Init with 30001
// saying so.
func TestMissingWrapperClass(t *testing.T) {
	needPython(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "wrapper.py"), []byte("from aiges.sdk import WrapperBase\n\nclass Engine(WrapperBase):\n    pass\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e := New(Options{WrapperPath: dir, Workers: 1, Log: zerolog.New(zerolog.NewTestWriter(t))})
	err := e.Init(t.Context(), nil)
	if aserr.CodeOf(err) != 30001 || !strings.Contains(err.Error(), "defines no class Wrapper") {
		t.Fatalf("init: %v (code %d)", err, aserr.CodeOf(err))
	}
	_ = e.Fini(t.Context())
}
