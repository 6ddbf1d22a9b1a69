package cli_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/athenaserving/asf/tests/suitetest"
	"github.com/athenaserving/asf/tools/asectl/cli"
)

// ctl runs asectl command lines against one contexts file, as a user in a shell would.
type ctl struct {
	t      *testing.T
	config string
	env    map[string]string
}

func newCtl(t *testing.T) *ctl {
	return &ctl{t: t, config: filepath.Join(t.TempDir(), "asectl", "config.yaml"), env: map[string]string{}}
}

// result is one command line's outcome.
type result struct {
	out, err string
	code     int
}

// run runs args with stdin in and returns what it printed and its exit status.
func (c *ctl) runIn(ctx context.Context, in string, args ...string) result {
	c.t.Helper()
	var out, errb bytes.Buffer
	argv := append([]string{"--config", c.config}, args...)
	code := cli.Run(ctx, argv, cli.IO{In: strings.NewReader(in), Out: &out, Err: &errb, Getenv: func(k string) string { return c.env[k] }})
	return result{out.String(), errb.String(), code}
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
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

// start runs args until ctx ends, writing to out and errw, and sends the exit status on
// the returned channel.
func (c *ctl) start(ctx context.Context, out, errw io.Writer, args ...string) <-chan int {
	done := make(chan int, 1)
	argv := append([]string{"--config", c.config}, args...)
	go func() { // ends when the command does (ctx ends it)
		done <- cli.Run(ctx, argv, cli.IO{In: strings.NewReader(""), Out: out, Err: errw, Getenv: func(k string) string { return c.env[k] }})
	}()
	return done
}

func (c *ctl) run(args ...string) result {
	c.t.Helper()
	return c.runIn(c.t.Context(), "", args...)
}

// ok runs args, fails the test unless they exit 0, and returns standard output.
func (c *ctl) ok(args ...string) string {
	c.t.Helper()
	r := c.run(args...)
	if r.code != 0 {
		c.t.Fatalf("asectl %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.out, r.err)
	}
	return r.out
}

// fails runs args and fails the test unless they exit with code and print want on stderr.
func (c *ctl) fails(code int, want string, args ...string) result {
	c.t.Helper()
	r := c.run(args...)
	if r.code != code || !strings.Contains(r.err, want) {
		c.t.Fatalf("asectl %s: want exit %d with %q, got %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, r.code, r.out, r.err)
	}
	return r
}

// login logs c in to the suite's polaris and points its context at the suite's edge and
// polaris gRPC address.
func (c *ctl) login(s *suitetest.Suite) {
	c.t.Helper()
	c.ok("login", "--polaris", "http://"+s.Polaris.ConsoleAddr(), "--token", suitetest.AdminToken,
		"--webgate", s.URL(), "--polaris-grpc", s.Polaris.GRPCAddr())
}

// repoRoot is the repository's root (tools/asectl/cli is three levels down).
func repoRoot(t *testing.T) string {
	abs, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

func TestMain(m *testing.M) {
	code := m.Run()
	if loaderErr == nil && loaderPath != "" {
		_ = os.RemoveAll(filepath.Dir(loaderPath))
	}
	os.Exit(code)
}

var (
	loaderOnce sync.Once
	loaderPath string
	loaderErr  error
)

// loaderBinary builds the loader (cgo) once per test binary run and returns its path.
func loaderBinary(t *testing.T) string {
	t.Helper()
	loaderOnce.Do(func() {
		dir, err := os.MkdirTemp("", "asectl-test-loader-")
		if err != nil {
			loaderErr = err
			return
		}
		loaderPath = filepath.Join(dir, "loader")
		cmd := exec.Command("go", "build", "-o", loaderPath, "./cmd/loader")
		cmd.Dir = filepath.Join(repoRoot(t), "services", "loader")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			loaderErr = err
			loaderPath = string(out)
		}
	})
	if loaderErr != nil {
		t.Fatalf("build the loader: %v\n%s", loaderErr, loaderPath)
	}
	return loaderPath
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }
