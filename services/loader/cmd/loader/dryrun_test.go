package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/services/loader"
	"github.com/athenaserving/asf/services/loader/engine"
	"github.com/athenaserving/asf/services/loader/engine/cabi/cabitest"
	"go.uber.org/goleak"
)

// TestMain doubles as the engine-worker subcommand for --isolation process runs (the
// pool starts os.Executable(), this test binary, with "engine-worker").
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == loader.EngineWorkerCommand {
		os.Exit(loader.EngineWorkerMain(context.Background(), os.Args[2:], os.Getenv))
	}
	goleak.VerifyTestMain(m)
}

func runDryrun(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := dryrun(t.Context(), args, func(string) string { return "" }, &out, &errb)
	return code, out.String(), errb.String()
}

func TestDryrunC(t *testing.T) {
	so := cabitest.BuildEcho(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.txt")
	if err := os.WriteFile(in, []byte("hello dryrun"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"once", []string{"--param", "prefix=>"}, []string{"once: 1 output(s)", "text: text, 13 bytes, status once", ">hello dryrun"}},
		{"once-async", []string{"--async"}, []string{"once: 1 output(s)", "hello dryrun"}},
		{"stream", []string{"--stream", "--frame-bytes", "5"}, []string{"result 1: status begin", "hello", "result 3: status end", " dryrun"[:5], "session: 3 frame(s), 3 result(s)"}},
		{"stream-async", []string{"--stream", "--async", "--frame-bytes", "100"}, []string{"result 2: status end", "session: 2 frame(s)"}},
		{"isolation", []string{"--isolation", "process"}, []string{"once: 1 output(s)", "hello dryrun"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"--engine", "c", "--engine-path", so, "--input", "text=" + in + ":text"}, c.args...)
			code, out, errs := runDryrun(t, args...)
			if code != 0 {
				t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Fatalf("stdout lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestDryrunErrors(t *testing.T) {
	so := cabitest.BuildEcho(t)
	in := filepath.Join(t.TempDir(), "in.bin")
	if err := os.WriteFile(in, []byte{1, 2, 3}, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs := runDryrun(t, "--engine", "c", "--engine-path", so, "--input", "a="+in+":audio", "--param", "fail=1")
	if code != 1 || strings.Count(errs, "code 20001") != 1 || strings.Count(errs, "failure requested by parameter fail") != 1 {
		t.Fatalf("exit %d, stderr %s (want the code and message once each)", code, errs)
	}
	code, _, errs = runDryrun(t, "--engine", "c", "--engine-path", so, "--input", "a="+in, "--engine-config", "init_fail=1")
	if code != 1 || !strings.Contains(errs, "code 20002") {
		t.Fatalf("exit %d, stderr %s", code, errs)
	}
	code, _, errs = runDryrun(t, "--engine", "c", "--engine-path", so, "--input", "a="+in, "--expect", "other")
	if code != 1 || !strings.Contains(errs, "code 10106") {
		t.Fatalf("exit %d, stderr %s", code, errs)
	}
	if code, _, _ := runDryrun(t, "--engine", "c", "--engine-path", so); code != 2 {
		t.Fatalf("no input: exit %d, want 2", code)
	}
	if code, _, _ := runDryrun(t, "--engine", "c", "--input", "a="+in); code != 1 {
		t.Fatalf("no engine-path: exit %d, want 1", code)
	}
}

func TestDescribe(t *testing.T) {
	wrapped := fmt.Errorf("engine wrapperExec: %w", aserr.New(20001, "c-echo: failed"))
	cases := []struct {
		err  error
		want string
	}{
		{wrapped, "engine wrapperExec: c-echo: failed (code 20001)"},
		{fmt.Errorf("init: %w", fmt.Errorf("no wrapper.py: %w", aserr.ErrInvalidParam)), "init: no wrapper.py: invalid parameter value (code 10107)"},
		{errors.New("open in.txt: no such file"), "open in.txt: no such file (code 11502)"},
		{fmt.Errorf("no END result: %w", context.DeadlineExceeded), "no END result: context deadline exceeded (code 10102)"},
		{hidden{aserr.ErrLicenceFull}, "busy (code 10110: licence not enough)"},
	}
	for _, c := range cases {
		if got := describe(c.err); got != c.want {
			t.Errorf("describe(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

// hidden is an error whose text hides the coded error it wraps.
type hidden struct{ err error }

func (h hidden) Error() string { return "busy" }
func (h hidden) Unwrap() error { return h.err }

func TestFrames(t *testing.T) {
	in := []engine.Payload{{Meta: engine.Meta{Name: "a"}, Data: []byte("abcdefg")}, {Meta: engine.Meta{Name: "b"}, Data: []byte("xy")}}
	fr := frames(in, 3)
	if len(fr) != 3 || fr[0].Status != engine.StatusBegin || fr[1].Status != engine.StatusContinue || fr[2].Status != engine.StatusEnd {
		t.Fatalf("frames %+v", fr)
	}
	if len(fr[0].Inputs) != 2 || len(fr[1].Inputs) != 1 || string(fr[2].Inputs[0].Data) != "g" {
		t.Fatalf("frames %+v", fr)
	}
	if fr := frames([]engine.Payload{{Meta: engine.Meta{Name: "a"}}}, 3); len(fr) != 2 || fr[1].Status != engine.StatusEnd {
		t.Fatalf("empty input frames %+v", fr)
	}
}

func FuzzParseInput(f *testing.F) {
	for _, s := range []string{"text=a.txt", "audio=/x/a.pcm:audio", "a=b:c:image", "=x", "a=", "a=:text"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		name, file, typ, err := parseInput(s)
		if err != nil {
			return
		}
		if name == "" || file == "" || typ < engine.DataText || typ > engine.DataOther {
			t.Fatalf("parseInput(%q) = %q %q %v", s, name, file, typ)
		}
		if !strings.HasPrefix(s, name+"="+file) {
			t.Fatalf("parseInput(%q) = %q %q", s, name, file)
		}
	})
}

func TestDryrunPython(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed")
	}
	wrapper := filepath.Join(cabitest.Dir(), "..", "python-echo", "wrapper.py")
	if _, err := os.Stat(wrapper); err != nil {
		t.Skip("examples/engines/python-echo not present")
	}
	in := filepath.Join(t.TempDir(), "in.txt")
	if err := os.WriteFile(in, []byte("hello python"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, extra := range [][]string{nil, {"--stream", "--frame-bytes", "6"}} {
		args := append([]string{"--engine", "python", "--engine-path", wrapper, "--workers", "1", "--input", "text=" + in}, extra...)
		code, out, errs := runDryrun(t, args...)
		if code != 0 || !strings.Contains(out, "hello") {
			t.Fatalf("%v: exit %d\nstdout:\n%s\nstderr:\n%s", extra, code, out, errs)
		}
	}
	// --python picks the interpreter (a virtualenv's): a missing one fails Init with 10107.
	code, _, errs := runDryrun(t, "--engine", "python", "--engine-path", wrapper, "--workers", "1", "--input", "text="+in,
		"--python", "/nonexistent/venv/bin/python")
	if code != 1 || !strings.Contains(errs, "/nonexistent/venv/bin/python") || strings.Count(errs, "code 10107") != 1 {
		t.Fatalf("missing interpreter: exit %d, stderr %s", code, errs)
	}
}
