package forward_test

import (
	"bytes"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/testpoll"
	"github.com/athenaserving/asf/services/loader"
	"github.com/athenaserving/asf/tests/asetest"
	"github.com/athenaserving/asf/tests/suitetest"
)

// python is the interpreter that imports Debian's python3-fastapi and python3-uvicorn.
const python = "/usr/bin/python3"

// exampleDir is examples/forward: the FastAPI app, its forward spec and its schema.
func exampleDir(t *testing.T) string {
	t.Helper()
	d, err := filepath.Abs(filepath.Join("..", "..", "examples", "forward"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// startUvicorn serves examples/forward/upper_api.py with uvicorn on a socket bound here
// on 127.0.0.1:0 (handed over as fd 3) until the test ends, and returns its base URL. It
// skips the test when FastAPI or uvicorn cannot be imported.
func startUvicorn(t *testing.T, token string) string {
	t.Helper()
	if out, err := exec.Command(python, "-c", "import fastapi, uvicorn").CombinedOutput(); err != nil {
		t.Skipf("FastAPI upstream skipped: %s cannot import fastapi and uvicorn (Debian python3-fastapi python3-uvicorn; run scripts/engines.sh install as root): %s",
			python, strings.TrimSpace(string(out)))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	_ = ln.Close() // the duplicate in f stays open for the child
	var logs bytes.Buffer
	cmd := exec.Command(python, "-m", "uvicorn", "--fd", "3", "--app-dir", exampleDir(t), "--log-level", "warning", "upper_api:app")
	cmd.ExtraFiles = []*os.File{f}
	cmd.Env = append(os.Environ(), "UPPER_API_TOKEN="+token)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("uvicorn:\n%s", logs.String())
		}
	})
	testpoll.Until(t, 20*time.Second, "uvicorn answering /healthz", func() bool {
		select {
		case <-exited:
			t.Fatalf("uvicorn exited:\n%s", logs.String())
		default:
		}
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return base
}

// Capability upper is served by the FastAPI app of examples/forward through a forward
// loader with the example's spec (its upstream URL pointed at the app started here): the
// request and answer mappings, the bearer token from the environment, the schema, and a
// 503 of the upstream reaching the client as 10226 after the retry.
func TestForwardToFastAPI(t *testing.T) {
	base := startUvicorn(t, "tok-fastapi")
	dir := exampleDir(t)
	example, err := os.ReadFile(filepath.Join(dir, "upper.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	spec := writeFile(t, "upper.yaml", strings.Replace(string(example), "http://127.0.0.1:8000", base, 1))
	t.Setenv("UPPER_API_TOKEN", "tok-fastapi")
	s := suitetest.Start(t, suitetest.Options{Loaders: 1, Service: "upper", Engine: loader.EngineForward,
		Loader: func(_ int, c *loader.Config) { c.EnginePath = spec }})
	s.PushSchema(filepath.Join(dir, "schema_upper.json"))
	c := s.Client()

	r, err := c.Once(t.Context(), "upper", asetest.Frame{Status: 3, Params: map[string]any{"lang": "fr"}, Payload: text("bonjour le monde")})
	if err != nil || r.Header.Code != 0 {
		t.Fatalf("once: %v %s", err, r.Raw)
	}
	t.Logf("upper: %s", r.Raw)
	if got := output(t, r, "result"); got != "BONJOUR LE MONDE" {
		t.Fatalf("result %q", got)
	}
	if r.Attr("result", "length") != "16" || r.Attr("result", "model") != `"upper-1"` {
		t.Fatalf("attributes: %s", r.Raw)
	}

	r, err = c.Once(t.Context(), "upper", asetest.Frame{Status: 3, Params: map[string]any{"lang": "xx"}, Payload: text("x")})
	if err != nil || r.Header.Code != 10163 {
		t.Fatalf("schema: %v %s", err, r.Raw)
	}

	r, err = c.Once(t.Context(), "upper", asetest.Frame{Status: 3, Payload: text("overload")})
	if err != nil || r.Header.Code != 10226 || r.HTTPStatus != http.StatusBadGateway || !strings.HasSuffix(r.Header.Message, "upstream answered HTTP 503 Service Unavailable: upstream error") {
		t.Fatalf("overload: %v %d %s", err, r.HTTPStatus, r.Raw)
	}
	if n := s.Counter("loader-0", "asf_loader_forward_upstream_retries_total"); n != 1 {
		t.Fatalf("retries %v, want 1", n)
	}
}
