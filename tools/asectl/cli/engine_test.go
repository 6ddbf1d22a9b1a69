package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/testpoll"
	"github.com/athenaserving/asf/tests/suitetest"
	"github.com/athenaserving/asf/tools/asectl/cli"
)

// withSDK points the loader's Python workers at the repository's aiges SDK.
func withSDK(t *testing.T, c *ctl) {
	sdk := filepath.Join(repoRoot(t), "sdk", "python")
	t.Setenv("ASF_AIGES_SDK", sdk) // the loader processes inherit it
	c.env["ASF_AIGES_SDK"] = sdk
}

func TestEngineNewDryrunSchemaPack(t *testing.T) {
	c := newCtl(t)
	withSDK(t, c)
	loader := loaderBinary(t)
	root := t.TempDir()
	py, cdir := filepath.Join(root, "greeter"), filepath.Join(root, "greeter-c")
	if out := c.ok("engine", "new", "--lang", "python", "--dir", py, "greeter"); !strings.Contains(out, "wrapper.py") {
		t.Fatalf("engine new:\n%s", out)
	}
	c.ok("engine", "new", "--lang", "c", "--dir", cdir, "greeter-c")
	c.fails(cli.ExitError, "not empty", "engine", "new", "--lang", "python", "--dir", py, "greeter")
	c.fails(cli.ExitUsage, "--lang", "engine", "new", "x")
	c.fails(cli.ExitError, "lower-case", "engine", "new", "--lang", "c", "--dir", filepath.Join(root, "bad"), "Bad_Name")

	// schema: the project's schema file, keyed to the service.
	var doc struct {
		Meta map[string]any `json:"meta"`
	}
	if err := json.Unmarshal([]byte(c.ok("engine", "schema", py, "-o", "json")), &doc); err != nil || doc.Meta["serviceId"] != "greeter" {
		t.Fatalf("engine schema: %+v %v", doc, err)
	}
	if out := c.ok("schema", "validate", filepath.Join(py, "schema_greeter.json")); !strings.Contains(out, "greeter") {
		t.Fatalf("the generated schema validates: %s", out)
	}

	// dryrun: the Python engine through the loader's worker processes, once and as a stream.
	sample := filepath.Join(py, "sample.txt")
	if out := c.ok("engine", "dryrun", py, "--loader", loader, "--input", "text="+sample+":text"); !strings.Contains(out, "Hello, athena") {
		t.Fatalf("python dryrun:\n%s", out)
	}
	c.fails(cli.ExitError, "build it first", "engine", "dryrun", cdir, "--loader", loader)
	mk := exec.Command("make", "libwrapper.so")
	mk.Dir = cdir
	if out, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("make the C engine: %v\n%s", err, out)
	}
	out := c.ok("engine", "dryrun", cdir, "--loader", loader, "--input", "text="+filepath.Join(cdir, "sample.txt")+":text", "--stream", "--frame-bytes", "3")
	if !strings.Contains(out, "Hello, ath") || !strings.Contains(out, "Hello, ena") {
		t.Fatalf("C stream dryrun:\n%s", out)
	}
	if out := c.ok("engine", "dryrun", cdir, "--loader", loader, "--input", "text="+sample+":text", "--engine-config", "greeting=Hi"); !strings.Contains(out, "Hi, athena") {
		t.Fatalf("C once dryrun with engine config:\n%s", out)
	}
	c.fails(cli.ExitError, "loader dryrun failed", "engine", "dryrun", py, "--loader", loader, "--input", "text=/nonexistent:text")

	// pack: the project's own Dockerfile and files; a bare library gets a generated one.
	ctxDir := filepath.Join(root, "ctx")
	c.ok("engine", "pack", py, "--context", ctxDir)
	for _, f := range []string{"Dockerfile", "wrapper.py", "schema_greeter.json", "aiges.toml"} {
		if _, err := os.Stat(filepath.Join(ctxDir, f)); err != nil {
			t.Errorf("build context lacks %s", f)
		}
	}
	soCtx := filepath.Join(root, "so-ctx")
	c.ok("engine", "pack", filepath.Join(cdir, "libwrapper.so"), "--service", "my-cap", "--context", soCtx)
	df, _ := os.ReadFile(filepath.Join(soCtx, "Dockerfile"))
	for _, want := range []string{"FROM ${BASE}", "ASF_LOADER_SERVICE=my-cap", "ASF_LOADER_ENGINE=c", "/opt/asf/engines/my-cap/libwrapper.so"} {
		if !strings.Contains(string(df), want) {
			t.Errorf("generated Dockerfile lacks %q:\n%s", want, df)
		}
	}
	if _, err := os.Stat(filepath.Join(soCtx, "engine", "schema_my-cap.json")); err != nil {
		t.Errorf("the schema is packed: %v", err)
	}
	// The image build runs docker build with the context and the base image.
	r := c.run("engine", "pack", py, "--tag", "greeter:dev", "--docker", "echo")
	if r.code != 0 || !strings.Contains(r.err, "build -t greeter:dev --build-arg BASE=asf/loader:dev") {
		t.Fatalf("pack with a docker command: %+v", r)
	}
	c.fails(cli.ExitUsage, "--tag", "engine", "pack", py)
}

// An engine goes from `asectl engine new` to a signed `asectl call once` answer through
// the suite using only asectl.
func TestEngineToSignedAnswer(t *testing.T) {
	s := suitetest.Start(t, suitetest.Options{Loaders: 1})
	c := newCtl(t)
	withSDK(t, c)
	loader := loaderBinary(t)
	c.login(s)
	dir := filepath.Join(t.TempDir(), "greeter")
	c.ok("engine", "new", "--lang", "python", "--dir", dir, "greeter")
	c.ok("schema", "push", filepath.Join(dir, "schema_greeter.json"))
	c.ok("app", "create", "app1", "--capabilities", "greeter", "--save")

	tls := s.TLS("loader")
	ctx, cancel := context.WithCancel(t.Context())
	var out, errw syncBuffer
	done := c.start(ctx, &out, &errw, "engine", "run", dir, "--loader", loader, "--tls-ca", tls.CA, "--tls-cert", tls.Cert, "--tls-key", tls.Key,
		"--log", filepath.Join(t.TempDir(), "loader.log"))
	defer func() {
		cancel()
		if code := <-done; code != 0 || !strings.Contains(out.String(), "loader stopped") {
			t.Errorf("engine run: exit %d\n%s%s", code, out.String(), errw.String())
		}
	}()
	testpoll.Until(t, 60*time.Second, "engine run serves greeter", func() bool {
		if errw.String() != "" {
			t.Fatalf("engine run: %s", errw.String())
		}
		return strings.Contains(out.String(), "serving greeter")
	})
	// webgate applies apps.json on its own schedule; the first call may precede it.
	var answer string
	testpoll.Until(t, 10*time.Second, "a signed answer from greeter", func() bool {
		r := c.run("call", "once", "greeter", "--input", "text:text", "--text", "athena")
		answer = r.out
		return r.code == 0
	})
	if answer != "Hello, athena\n" {
		t.Fatalf("answer %q", answer)
	}
	if out := c.ok("call", "stream", "greeter", "--input", "text:text", "--text", "abcd", "--frames", "2"); out != "Hello, ab\nHello, cd\n" {
		t.Fatalf("stream answer %q", out)
	}
}

// A real image build, where it is cheap: Docker present and the loader base image built
// (make images). The image's loader runs the engine.
func TestEnginePackBuildsAnImage(t *testing.T) {
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("no docker")
	}
	if exec.Command("docker", "image", "inspect", "asf/loader:dev").Run() != nil {
		t.Skip("no asf/loader:dev image (make images builds it)")
	}
	c := newCtl(t)
	dir := filepath.Join(t.TempDir(), "greeter")
	c.ok("engine", "new", "--lang", "python", "--dir", dir, "greeter")
	tag := fmt.Sprintf("asectl-test-greeter:%d", os.Getpid())
	c.ok("engine", "pack", dir, "--tag", tag)
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", tag).Run() })
	out, err := exec.Command("docker", "run", "--rm", "--entrypoint", "/usr/local/bin/loader", tag, "dryrun", "--engine", "python",
		"--engine-path", "/opt/asf/engines/greeter/wrapper.py", "--workers", "1", "--input", "text=/opt/asf/engines/greeter/aiges.toml").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Hello, # greeter") {
		t.Fatalf("dryrun in the image: %v\n%s", err, out)
	}
}
