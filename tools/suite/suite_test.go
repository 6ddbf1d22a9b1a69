package suite

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/testpoll"
	"github.com/athenaserving/asf/tools/asfbench"
)

// repoRoot is the repository root above the test's directory.
func repoRoot(t *testing.T) string {
	root, err := RepoRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// TestSuiteProcesses builds the five binaries and runs them as separate processes, the
// way `make run` does, then sends the once request that `make run` prints.
func TestSuiteProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every service binary")
	}
	root := repoRoot(t)
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+"/",
		"./services/polaris/cmd/polaris", "./services/lbclient/cmd/lbclient", "./services/loader/cmd/loader",
		"./services/atom/cmd/atom", "./services/webgate/cmd/webgate")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// With bin/jaeger built (make jaeger), Jaeger starts first, as in make run.
	jaeger := filepath.Join(root, "bin", "jaeger")
	_, noJaeger := os.Stat(jaeger)
	if noJaeger != nil && os.Getenv("ASF_JAEGER_REQUIRED") == "1" {
		t.Fatalf("ASF_JAEGER_REQUIRED=1: %v", noJaeger)
	}
	s, err := Start(ctx, Options{BinDir: bin, Loaders: 2, LogDir: t.TempDir(),
		Schemas: []string{filepath.Join(root, "examples", "engines", "digits", "schema_digits.json")},
		Jaeger:  noJaeger == nil, JaegerBin: jaeger, TraceSampleRate: "1"})
	if err != nil {
		t.Fatal(err)
	}
	if noJaeger == nil {
		checkJaeger(t, s)
	} else {
		t.Logf("without Jaeger: %v", noJaeger)
	}
	t.Cleanup(func() {
		if err := s.Stop(context.Background()); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	if got := len(s.LoaderAddrs()); got != 2 {
		t.Fatalf("loaders = %d", got)
	}
	if os.Getenv("GOMAXPROCS") == "" { // every service runs with the suite's share of the cores
		want := fmt.Sprintf("GOMAXPROCS=%d", SharedGoMaxProcs())
		for _, p := range s.Procs() {
			env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", p.Cmd.Process.Pid))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(strings.Split(string(env), "\x00"), want) {
				t.Errorf("%s runs without %s", p.Name, want)
			}
		}
	}
	body := `{"header":{"app_id":"demo","status":3},"parameter":{"echo":{}},"payload":{"input":{"encoding":"utf8","status":3,"text":"aGVsbG8gYXRoZW5h"}}}`
	app := s.App()
	url, err := asfbench.SignURL(s.WebgateURL()+"/v1/private/echo", http.MethodPost, asfbench.Credentials{APIKey: app.APIKey, APISecret: app.APISecret}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	body = strings.Replace(body, `"app_id":"demo"`, `"app_id":"`+app.AppID+`"`, 1)
	resp, err := http.Post(url, "application/json", bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var r struct {
		Header struct {
			Code int    `json:"code"`
			SID  string `json:"sid"`
		} `json:"header"`
		Payload map[string]map[string]any `json:"payload"`
	}
	if err := json.Unmarshal(b, &r); err != nil || resp.StatusCode != 200 || r.Header.Code != 0 || r.Header.SID == "" {
		t.Fatalf("once: %d %s (%v)", resp.StatusCode, b, err)
	}
	if r.Payload["input"]["text"] != "aGVsbG8gYXRoZW5h" {
		t.Fatalf("echo payload: %s", b)
	}
	if noJaeger == nil && s.hasFlag("webgate", "trace-endpoint") {
		// Every request is sampled (TraceSampleRate 1): webgate's spans reach Jaeger.
		testpoll.CheckFor(t, 20*time.Second, 100*time.Millisecond, func() error {
			var sv struct {
				Data []string `json:"data"`
			}
			resp, err := http.Get(s.JaegerURL() + "/api/services")
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if err := json.NewDecoder(resp.Body).Decode(&sv); err != nil {
				return err
			}
			if !slices.Contains(sv.Data, "webgate") {
				return fmt.Errorf("Jaeger lists no webgate spans yet: %v", sv.Data)
			}
			t.Logf("Jaeger lists spans of %v", sv.Data)
			return nil
		})
	}

	// Stop is ordered and clean: every process exits on SIGTERM.
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	for _, p := range s.Procs() {
		t.Errorf("%s still listed after Stop", p.Name)
	}
}

// checkJaeger: the suite's Jaeger answers its query API, and every service whose binary
// has --trace-endpoint was given Jaeger's OTLP endpoint.
func checkJaeger(t *testing.T, s *Suite) {
	t.Helper()
	ui, ep := s.JaegerURL(), s.TraceEndpoint()
	if ui == "" || ep == "" {
		t.Fatalf("Jaeger started but JaegerURL %q, TraceEndpoint %q", ui, ep)
	}
	resp, err := http.Get(ui + "/api/services")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("Jaeger %s/api/services: %s", ui, resp.Status)
	}
	procs := s.Procs()
	var traced []string
	defer func() { t.Logf("Jaeger %s; given --trace-endpoint %s: %v", ui, ep, traced) }()
	if procs[0].Name != JaegerName {
		t.Errorf("first process %s, want jaeger (stopped last)", procs[0].Name)
	}
	for _, p := range procs[1:] {
		svc := filepath.Base(p.Cmd.Path)
		i := slices.Index(p.args, "--trace-endpoint")
		if i >= 0 {
			traced = append(traced, p.Name)
		}
		switch {
		case s.hasFlag(svc, "trace-endpoint") && (i < 0 || p.args[i+1] != ep):
			t.Errorf("%s: args %v lack --trace-endpoint %s", p.Name, p.args, ep)
		case !s.hasFlag(svc, "trace-endpoint") && i >= 0:
			t.Errorf("%s has no --trace-endpoint flag but got it: %v", p.Name, p.args)
		}
	}
}

// TestProcEnv: a service gets GOMAXPROCS as Options.GoMaxProcs says, unless this
// process's environment sets one.
func TestProcEnv(t *testing.T) {
	t.Setenv("GOMAXPROCS", "")
	os.Unsetenv("GOMAXPROCS")
	last := func(env []string) string { // what procEnv added to this process's environment
		if len(env) == len(os.Environ()) {
			return "<inherited>"
		}
		return env[len(env)-1]
	}
	for _, c := range []struct {
		procs int
		want  string
	}{
		{0, fmt.Sprintf("GOMAXPROCS=%d", max(1, runtime.NumCPU()/2))},
		{3, "GOMAXPROCS=3"},
		{-1, "<inherited>"},
	} {
		if got := last(Options{GoMaxProcs: c.procs}.procEnv()); got != c.want {
			t.Errorf("GoMaxProcs %d: %s, want %s", c.procs, got, c.want)
		}
	}
	t.Setenv("GOMAXPROCS", "7")
	if got := last(Options{GoMaxProcs: 3}.procEnv()); got != "<inherited>" {
		t.Errorf("with GOMAXPROCS=7 set: %s, want the environment inherited", got)
	}
}

// TestLoaderRuntimeGODEBUG: a loader gets RuntimeGODEBUG only when its engine makes no C
// calls in its process; GODEBUG settings of the suite's own environment still win.
func TestLoaderRuntimeGODEBUG(t *testing.T) {
	for _, c := range []struct {
		args  []string
		callC bool
	}{
		{[]string{"--engine", "echo"}, false},
		{[]string{"--engine=python", "--workers", "2"}, false},
		{[]string{"--engine", "forward"}, false},
		{[]string{"--engine", "c", "--engine-path", "x.so"}, true},
		{[]string{"--engine", "echo", "--engine", "c"}, true}, // the last one counts
		{[]string{"-c", "aiges.toml", "-s", "asr"}, true},     // may name a C engine
		{nil, true},
	} {
		if got := callsC(c.args); got != c.callC {
			t.Errorf("callsC(%q) = %v, want %v", c.args, got, c.callC)
		}
	}
	env := WithRuntimeGODEBUG([]string{"A=1", "GODEBUG=schedtrace=0,gctrace=1"})
	if want := []string{"A=1", "GODEBUG=" + RuntimeGODEBUG + ",schedtrace=0,gctrace=1"}; !slices.Equal(env, want) {
		t.Errorf("WithRuntimeGODEBUG = %q, want %q", env, want)
	}
	if env := WithRuntimeGODEBUG([]string{"A=1"}); !slices.Equal(env, []string{"A=1", "GODEBUG=" + RuntimeGODEBUG}) {
		t.Errorf("WithRuntimeGODEBUG without GODEBUG = %q", env)
	}
}

// TestRuntimeGODEBUGEverywhere: make build, the images and compose's loaders without a C
// engine carry the same runtime default as RuntimeGODEBUG.
func TestRuntimeGODEBUGEverywhere(t *testing.T) {
	for _, f := range []struct {
		path string
		n    int // occurrences
	}{
		{"../../Makefile", 1},
		{"../../deploy/images/Dockerfile", 2},          // the four services, the Python demo loader
		{"../../deploy/compose/docker-compose.yml", 1}, // loader-echo
	} {
		b, err := os.ReadFile(f.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Count(string(b), RuntimeGODEBUG); got != f.n {
			t.Errorf("%s holds %q %d times, want %d", f.path, RuntimeGODEBUG, got, f.n)
		}
	}
}
