package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/cfgload"
	"github.com/athenaserving/asf/libs/grpcx"
	loaderpb "github.com/athenaserving/asf/libs/proto/loader/v1"
	"github.com/athenaserving/asf/libs/testpoll"
	"github.com/athenaserving/asf/services/loader"
	"github.com/athenaserving/asf/services/loader/engine/cabi/cabitest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// aigesTOML is an AIGES-style file for the c-echo engine; %s are the realTimeRlt value
// and extra [wrapper] lines.
const aigesTOML = `[svcName]
finder = 0
host = "127.0.0.1"
port = 0

[aiges]
gesMock = false
sessMode = true
realTimeRlt = %s
usrCfg = ""
sub = "common"
asyncMode = false

[wrapper]
"common.lic" = "1"
name = "fromtoml"
%s

[log]
level = "debug"
file = "./log/aiges.log"

[fc]
able = 1
router = "sessionManager"
max = 1
ttl = 4000
report = 250
best = 1

[elog]
elogRemote = false
`

// aigesDir builds c-echo into a fresh directory (as libwrapper.so, where AIservice
// finds it) and writes aiges.toml beside it.
func aigesDir(t *testing.T, realtime, wrapperExtra string) (dir, toml string) {
	t.Helper()
	so := cabitest.BuildEcho(t)
	dir = filepath.Dir(so)
	toml = filepath.Join(dir, "aiges.toml")
	if err := os.WriteFile(toml, fmt.Appendf(nil, aigesTOML, realtime, wrapperExtra), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, toml
}

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

// config is what the loader command builds from args: prepare, then cfgload.
func config(t *testing.T, args []string, getenv func(string) string, workDir string) (loader.Config, startup) {
	t.Helper()
	st, err := prepare(args, getenv, workDir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.cfg
	if err := cfgload.Load("loader", st.args, getenv, &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg, st
}

func TestAIGESCommandLine(t *testing.T) {
	dir, toml := aigesDir(t, "false", "")
	cfg, st := config(t, []string{"-m", "0", "-c", toml, "-s", "svcName"}, env(), t.TempDir())
	want := loader.DefaultConfig()
	want.Service = "svcName"
	want.GRPCListen = "127.0.0.1:0"
	want.Licence = 1
	want.SessionIdleTTL = 4 * time.Second
	want.HeartbeatInterval = 250 * time.Millisecond
	want.Engine, want.EnginePath = loader.EngineC, filepath.Join(dir, "libwrapper.so")
	want.EngineConfig = map[string]string{"common.lic": "1", "name": "fromtoml"}
	want.RealtimeResult = false
	want.LogLevel = "debug"
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("config\n got %+v\nwant %+v", cfg, want)
	}

	// The warnings reach the service's logger once each, -m 0 is not warned.
	var buf bytes.Buffer
	st.logWarnings(zerolog.New(&buf))
	for _, w := range []string{`"section":"aiges","keys":["gesMock","sessMode","sub"]`, `"section":"fc","keys":["able","best","router"]`,
		`"section":"elog"`, `"section":"svcName","keys":["finder"]`, `"section":"log","keys":["file"]`} {
		if strings.Count(buf.String(), w) != 1 {
			t.Errorf("want one %s in\n%s", w, buf.String())
		}
	}
	if strings.Contains(buf.String(), `"-m"`) {
		t.Errorf("-m 0 warned:\n%s", buf.String())
	}

	// Precedence: aiges.toml < YAML < env < flags; --service beats -s.
	yaml := filepath.Join(t.TempDir(), "loader.yaml")
	if err := os.WriteFile(yaml, []byte("licence: 3\nsession-idle-ttl: 9s\nasync: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, st = config(t, []string{"-c", toml, "-s", "svcName", "--config", yaml, "--licence", "7", "--service", "other", "-p", "proj"},
		env("ASF_LOADER_LICENCE", "5", "ASF_LOADER_SESSION_IDLE_TTL", "8s"), dir)
	if cfg.Licence != 7 || cfg.SessionIdleTTL != 8*time.Second || !cfg.Async || cfg.Service != "other" || cfg.HeartbeatInterval != 250*time.Millisecond {
		t.Fatalf("precedence: %+v", cfg)
	}
	buf.Reset()
	st.logWarnings(zerolog.New(&buf))
	if !strings.Contains(buf.String(), `"keys":["-p"]`) {
		t.Errorf("-p not warned:\n%s", buf.String())
	}
}

func TestAIGESServeExitCodes(t *testing.T) {
	dir, toml := aigesDir(t, "true", "")
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("[fc]\nmax = 1\nttl = [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, failing := aigesDir(t, "true", `init_fail = "1"`)
	listen := []string{"--admin-listen", "127.0.0.1:0", "--polaris=", "--insecure"}
	done, cancel := context.WithCancel(t.Context())
	cancel() // serve starts, finds ctx ended and shuts down

	cases := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"serves", append([]string{"-m", "0", "-c", toml, "-s", "svcName"}, listen...), 0, ""},
		{"malformed file names the line", []string{"-c", bad, "-s", "svcName"}, 2, "bad.toml:3:"},
		{"missing -c value", []string{"-s", "svcName", "-c"}, 2, "-c needs a value"},
		{"wrapper keys reach wrapperInit", append([]string{"-c", failing, "-s", "svcName"}, listen...), 1, ""},
		{"help mentions the AIGES flags", []string{"--help"}, 0, "-c FILE"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var errb bytes.Buffer
			code := serve(done, c.args, env(), dir, &errb)
			if code != c.code || !strings.Contains(errb.String(), c.stderr) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, errb.String(), c.code, c.stderr)
			}
		})
	}
}

// syncBuffer is a log sink safe for the loader's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startAIGES runs a real loader configured from an aiges.toml the way the command does.
func startAIGES(t *testing.T, realtime string, extra ...string) (loaderpb.LoaderClient, *syncBuffer, *prometheus.Registry) {
	t.Helper()
	dir, toml := aigesDir(t, realtime, "")
	args := append([]string{"-m", "0", "-c", toml, "-s", "svcName", "--admin-listen", "127.0.0.1:0", "--polaris=", "--warm-up", "0"}, extra...)
	cfg, st := config(t, args, env(), dir)
	logs := &syncBuffer{}
	log := zerolog.New(logs)
	st.logWarnings(log)
	reg := prometheus.NewRegistry()
	s, err := loader.New(cfg, log, reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cc, err := grpcx.Dial(s.GRPCAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return loaderpb.NewLoaderClient(cc), logs, reg
}

// gauge reads a gauge's value from reg (-1 when absent).
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}

func frame(sync int32, st loaderpb.Status, data string) *loaderpb.LoaderInput {
	return &loaderpb.LoaderInput{
		ServiceId: "svcName", Headers: map[string]string{"sid": "aiges-test"}, SyncId: sync, Status: st,
		Pl: []*loaderpb.Payload{{Meta: &loaderpb.MetaDesc{Name: "text"}, Data: []byte(data)}},
	}
}

// recvAll reads a session's outputs until the server ends the stream.
func recvAll(st loaderpb.Loader_SessionClient) ([]*loaderpb.LoaderOutput, error) {
	var outs []*loaderpb.LoaderOutput
	for {
		out, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return outs, nil
		}
		if err != nil {
			return outs, grpcx.FromStatus(err)
		}
		outs = append(outs, out)
	}
}

// TestAIGESLoader runs a loader from an aiges.toml: the [wrapper] keys reach wrapperInit,
// [fc] max = 1 admits one session at a time, and realTimeRlt decides whether results
// come after every frame or only after the last.
func TestAIGESLoader(t *testing.T) {
	for _, c := range []struct {
		name, realtime string
		extra          []string
		outputs        []string // data of each output, in order
	}{
		{"realTimeRlt=true", "true", nil, []string{"a", "b", "c"}},
		{"realTimeRlt=false", "false", nil, []string{"abc"}},
		// The worker process gets realtime-result on its command line.
		{"realTimeRlt=false isolation process", "false", []string{"--isolation", "process"}, []string{"abc"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			client, logs, reg := startAIGES(t, c.realtime, c.extra...)
			if c.extra == nil && !strings.Contains(logs.String(), `"version":"c-echo 1.0.0 fromtoml"`) {
				t.Fatalf("wrapperInit did not get [wrapper] name:\n%s", logs.String())
			}
			st, err := client.Session(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Send(frame(0, loaderpb.Status_STATUS_BEGIN, "a")); err != nil {
				t.Fatal(err)
			}
			// fc.max = 1: while the session holds the slot, a once request is refused.
			testpoll.Until(t, 5*time.Second, "session open", func() bool { return gauge(t, reg, "asf_loader_sessions_active") == 1 })
			if _, err := client.Once(t.Context(), frame(0, loaderpb.Status_STATUS_ONCE, "x")); aserr.CodeOf(grpcx.FromStatus(err)) != 10110 {
				t.Fatalf("once during the session: %v, want 10110", err)
			}
			for i, s := range []loaderpb.Status{loaderpb.Status_STATUS_CONTINUE, loaderpb.Status_STATUS_END} {
				if err := st.Send(frame(int32(i+1), s, string(rune('b'+i)))); err != nil {
					t.Fatal(err)
				}
			}
			_ = st.CloseSend()
			outs, err := recvAll(st)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range outs {
				var d strings.Builder
				for _, p := range o.GetPl() {
					d.Write(p.GetData())
				}
				got = append(got, d.String())
			}
			if !reflect.DeepEqual(got, c.outputs) || outs[len(outs)-1].GetStatus() != loaderpb.Status_STATUS_END {
				t.Fatalf("outputs %q (%v), want %q ending with END", got, outs, c.outputs)
			}
			// The slot is free again.
			testpoll.Until(t, 5*time.Second, "licence free", func() bool {
				_, err := client.Once(t.Context(), frame(0, loaderpb.Status_STATUS_ONCE, "x"))
				return err == nil
			})
		})
	}
}

// TestAIGESPythonEngine runs the python echo engine from an aiges.toml in python plugin
// mode: the interpreter comes from pythonPluginCmd (here a script standing in for a
// virtualenv's python, which records that it ran).
func TestAIGESPythonEngine(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "examples", "engines", "python-echo", "wrapper.py"))
	if err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(dir, "interpreter-used")
	interp := filepath.Join(dir, "venv-python")
	files := map[string]string{
		filepath.Join(dir, "wrapper", "wrapper.py"): string(src),
		interp: fmt.Sprintf("#!/bin/sh\necho ran >> %q\nexec %q \"$@\"\n", marker, py),
		filepath.Join(dir, "aiges.toml"): fmt.Sprintf("[svcName]\nhost = \"127.0.0.1\"\n\n[aiges]\nasyncMode = true\nrealTimeRlt = true\n"+
			"pythonPluginCmd = \"%s -m aiges.serve\"\n\n[fc]\nmax = 2\n", interp),
	}
	for p, body := range files {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg, st := config(t, []string{"-c", filepath.Join(dir, "aiges.toml"), "-s", "svcName", "--admin-listen", "127.0.0.1:0", "--polaris=", "--warm-up", "0", "--workers", "1"},
		env("AIGES_PLUGIN_MODE", "python"), dir)
	if cfg.Engine != loader.EnginePython || cfg.Python != interp || !cfg.Async || cfg.EnginePath != filepath.Join(dir, "wrapper", "wrapper.py") {
		t.Fatalf("config %+v", cfg)
	}
	var logs syncBuffer
	log := zerolog.New(&logs)
	st.logWarnings(log)
	s, err := loader.New(cfg, log, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatalf("start: %v\n%s", err, logs.String())
	}
	cc, err := grpcx.Dial(s.GRPCAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	out, err := loaderpb.NewLoaderClient(cc).Once(ctx, frame(0, loaderpb.Status_STATUS_ONCE, "hi"))
	if err != nil || out.GetCode() != 0 || len(out.GetPl()) == 0 {
		t.Fatalf("once: %v, %v\n%s", out, err, logs.String())
	}
	if b, err := os.ReadFile(marker); err != nil || !strings.Contains(string(b), "ran") {
		t.Fatalf("pythonPluginCmd's interpreter did not run: %v", err)
	}
	if !strings.Contains(logs.String(), "only the interpreter") {
		t.Fatalf("pythonPluginCmd's arguments not warned:\n%s", logs.String())
	}
}
