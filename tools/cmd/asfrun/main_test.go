package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/athenaserving/asf/tools/asfbench"
	"github.com/athenaserving/asf/tools/suite"
)

// repoRoot is the repository root above the test's directory.
func repoRoot(t *testing.T) string {
	root, err := suite.RepoRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func run1(t *testing.T, dir, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// TestEngines starts the suite the way `make run ENGINE=...` does with three engines of
// the user's — the Python echo example (its directory), the C echo example built by its
// Makefile, and an aiges.toml beside that library — and calls each once through webgate,
// signed, with the request asfrun prints.
func TestEngines(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every service binary")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	root := repoRoot(t)
	bin := t.TempDir()
	run1(t, root, "go", "build", "-o", bin+"/",
		"./services/polaris/cmd/polaris", "./services/lbclient/cmd/lbclient", "./services/loader/cmd/loader",
		"./services/atom/cmd/atom", "./services/webgate/cmd/webgate")

	// The C echo engine, built by its own Makefile in a directory of its own.
	cdir := t.TempDir()
	for _, f := range []string{"Makefile", "wrapper.c"} {
		b, err := os.ReadFile(filepath.Join(root, "examples", "engines", "c-echo", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cdir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run1(t, cdir, "make", "-s", "INCLUDE="+filepath.Join(root, "services", "loader", "include"))
	so := filepath.Join(cdir, "libwrapper.so")
	// An AIGES deployment directory: aiges.toml and libwrapper.so side by side.
	tdir := t.TempDir()
	run1(t, tdir, "cp", so, filepath.Join(tdir, "libwrapper.so"))
	toml := filepath.Join(tdir, "aiges.toml")
	if err := os.WriteFile(toml, []byte("[toml-echo]\nfinder = 0\nport = 5090\n\n[fc]\nmax = 4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ASF_AIGES_SDK", filepath.Join(root, "sdk", "python")) // the loaders run from a temporary bin

	logs := filepath.Join(t.TempDir(), "logs")
	c, err := parseFlags([]string{"--bin", bin, "--free-ports", "--logs", logs, "--engines", "", "--loaders", "1",
		"--engine", filepath.Join(root, "examples", "engines", "python-echo") + "," + so, "--engine", toml,
		"--engine-service", "python-echo,c-echo", "--engine-args", "--workers 1"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	s, err := start(ctx, c, &out)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(context.Background()); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	usage := out.String()
	for _, svc := range []string{"python-echo", "c-echo", "toml-echo"} {
		for _, want := range []string{"asectl call once /v1/private/" + svc + " --webgate " + s.WebgateURL() + " --app-id",
			"asectl call sign /v1/private/" + svc + " --webgate " + s.WebgateURL()} {
			if !strings.Contains(usage, want) {
				t.Fatalf("usage lacks %q:\n%s", want, usage)
			}
		}
	}
	if !strings.Contains(usage, "--input text:text:utf8") || !strings.Contains(usage, "permissive default schema") {
		t.Fatalf("usage:\n%s", usage)
	}

	app := s.App()
	hello := base64.StdEncoding.EncodeToString([]byte("hello athena"))
	for _, path := range []string{filepath.Join(root, "examples", "engines", "python-echo"), so, toml} {
		e, err := suite.ResolveEngine(ctx, path, suite.EngineOptions{SchemaDir: t.TempDir(), Root: root,
			Service: map[string]string{so: "c-echo"}[path]})
		if err != nil {
			t.Fatal(err)
		}
		url, err := asfbench.SignURL(s.WebgateURL()+e.Route(), http.MethodPost, asfbench.Credentials{APIKey: app.APIKey, APISecret: app.APISecret}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Post(url, "application/json", bytes.NewReader(e.Request(app.AppID, 3, "hello athena", true)))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var r struct {
			Header struct {
				Code int `json:"code"`
			} `json:"header"`
			Payload map[string]map[string]any `json:"payload"`
		}
		if err := json.Unmarshal(b, &r); err != nil || resp.StatusCode != 200 || r.Header.Code != 0 {
			t.Fatalf("%s: %d %s (%v)", e.Service, resp.StatusCode, b, err)
		}
		in := e.Inputs()[0]
		if r.Payload[in.Name][in.DataType] != hello {
			t.Fatalf("%s: payload %s", e.Service, b)
		}
	}
}

func TestParseFlags(t *testing.T) {
	c, err := parseFlags([]string{"--engine", "a.so, b/wrapper.py", "--engine", "c/aiges.toml", "--engine-service", "x"})
	if err != nil || len(c.engines) != 3 || c.engines[1] != "b/wrapper.py" || len(c.services) != 1 {
		t.Fatalf("%+v %v", c, err)
	}
	if _, err := parseFlags([]string{"--engine-service", "x"}); err == nil {
		t.Fatal("--engine-service without --engine: no error")
	}
}
