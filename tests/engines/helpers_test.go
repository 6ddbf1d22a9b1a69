// Package engines holds the end-to-end tests of the example engines (examples/engines:
// tts, asr, digits) served by the whole suite in one process and driven through webgate
// with signed ASE requests (tests/asetest). Each test publishes its engines' capability
// schemas to polaris first, so webgate validates requests and types outputs as in a
// deployment. Tests whose Debian packages are absent are skipped with the reason;
// scripts/engines.sh installs them (as root) and builds the C engines.
package engines

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/athenaserving/asf/services/loader"
	"github.com/athenaserving/asf/tests/asetest"
	"github.com/athenaserving/asf/tests/suitetest"
)

// repoRoot is the checkout's root (tests/engines/../..).
func repoRoot(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Clean(filepath.Join(wd, "..", ".."))
}

// schemaPath is the capability schema of example engine name.
func schemaPath(t testing.TB, name string) string {
	return filepath.Join(repoRoot(t), "examples", "engines", name, "schema_"+name+".json")
}

// built is the outcome of scripts/engines.sh build, run once per test binary.
var built struct {
	once sync.Once
	dir  string
	libs map[string]string // engine → .so path
	skip map[string]string // engine → reason
	err  error
}

// engineLib returns the built library of a C engine (tts, asr), or skips the test with
// the reason the build script gave.
func engineLib(t *testing.T, name string) string {
	t.Helper()
	root := repoRoot(t)
	built.once.Do(func() {
		built.libs, built.skip = map[string]string{}, map[string]string{}
		built.dir, built.err = os.MkdirTemp("", "asf-engines-")
		if built.err != nil {
			return
		}
		cmd := exec.Command("bash", filepath.Join(root, "scripts", "engines.sh"), "build")
		cmd.Env = append(os.Environ(), "ASF_ENGINES_DIR="+built.dir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			built.err = fmt.Errorf("scripts/engines.sh build: %v\n%s", err, out)
			return
		}
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			eng, rest, ok := strings.Cut(sc.Text(), ": ")
			if !ok {
				continue
			}
			if p, ok := strings.CutPrefix(rest, "built "); ok {
				built.libs[eng] = p
			} else if r, ok := strings.CutPrefix(rest, "skipped: "); ok {
				built.skip[eng] = r
			}
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	if p := built.libs[name]; p != "" {
		return p
	}
	t.Skipf("engine %s skipped: %s (run scripts/engines.sh as root to install its packages)", name, built.skip[name])
	return ""
}

// requireDigits skips unless Debian's python3 imports scikit-learn, and points the loader
// at the aiges SDK of this checkout.
func requireDigits(t *testing.T) string {
	t.Helper()
	root := repoRoot(t)
	out, err := exec.Command("/usr/bin/python3", "-c", "import sklearn, numpy, PIL").CombinedOutput()
	if err != nil {
		t.Skipf("engine digits skipped: /usr/bin/python3 cannot import sklearn, numpy and PIL (Debian python3-sklearn python3-numpy python3-pil): %s",
			strings.TrimSpace(string(out)))
	}
	t.Setenv("ASF_AIGES_SDK", filepath.Join(root, "sdk", "python"))
	return filepath.Join(root, "examples", "engines", "digits", "wrapper.py")
}

// loaderSpec is one loader of a test suite.
type loaderSpec struct {
	service, engine, path string
	config                map[string]string
	async                 bool
	workers, licence      int
}

// startSuite starts the suite (webgate authenticating with suitetest.DemoApp) with one
// loader per spec, publishes the schema of every spec's service to polaris and returns
// the suite and a signed client.
func startSuite(t *testing.T, specs ...loaderSpec) (*suitetest.Suite, *asetest.Client) {
	t.Helper()
	set := func(i int, c *loader.Config) {
		sp := specs[i]
		c.Service, c.Engine, c.EnginePath, c.EngineConfig = sp.service, sp.engine, sp.path, sp.config
		c.Async, c.Workers = sp.async, sp.workers
		if sp.licence > 0 {
			c.Licence = sp.licence
		}
	}
	s := suitetest.Start(t, suitetest.Options{Loaders: 1, Service: specs[0].service, Engine: specs[0].engine, Loader: set})
	for i := 1; i < len(specs); i++ {
		s.AddLoader()
		svc := specs[i].service
		suitetest.WaitFor(t, 10*time.Second, func() bool { return s.LB.Live(svc) >= 1 })
	}
	for _, sp := range specs {
		s.PushSchema(schemaPath(t, sp.service))
	}
	return s, s.Client()
}

// once sends a signed once request and fails the test unless it succeeds.
func once(t *testing.T, c *asetest.Client, capability string, f asetest.Frame) *asetest.Response {
	t.Helper()
	r, err := tryOnce(c, capability, f)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// tryOnce is once for goroutines: it returns failures instead of failing the test.
func tryOnce(c *asetest.Client, capability string, f asetest.Frame) (*asetest.Response, error) {
	ctx, cancel := contextTimeout()
	defer cancel()
	r, err := c.Once(ctx, capability, f)
	if err != nil {
		return r, fmt.Errorf("%s: %w", capability, err)
	}
	if r.HTTPStatus != http.StatusOK || r.Header.Code != 0 {
		return r, fmt.Errorf("%s: HTTP %d, header %+v %s", capability, r.HTTPStatus, r.Header, r.Message)
	}
	return r, nil
}

// contextTimeout bounds one request or handshake.
func contextTimeout() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), time.Minute)
}

// stream opens a signed WebSocket session to capability, closed when the test ends.
func stream(t *testing.T, c *asetest.Client, capability string) *asetest.Session {
	t.Helper()
	ctx, cancel := contextTimeout()
	defer cancel()
	sess, err := c.Stream(ctx, capability)
	if err != nil {
		t.Fatalf("dial %s: %v", capability, err)
	}
	t.Cleanup(func() { _ = sess.Close() })
	return sess
}

// send sends one frame of a session.
func send(t *testing.T, sess *asetest.Session, f asetest.Frame) {
	t.Helper()
	if err := sess.Send(f); err != nil {
		t.Fatalf("send frame: %v", err)
	}
}

// readResults reads a session's responses until the one with status 2 (or an error
// response) and sends them in order on the returned channel, then closes it. The
// goroutine also ends when the session is closed.
func readResults(sess *asetest.Session) <-chan *asetest.Response {
	ch := make(chan *asetest.Response, 256)
	go func() {
		defer close(ch)
		for {
			r, err := sess.Recv(30 * time.Second)
			if err != nil {
				return
			}
			ch <- r
			if r.Header.Code != 0 || r.StatusValue() == 2 {
				return
			}
		}
	}()
	return ch
}

// output returns the data of output name, failing the test when it is absent.
func output(t *testing.T, r *asetest.Response, name string) []byte {
	t.Helper()
	b, err := r.Bytes(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// gauge reads a gauge from a loader's admin /metrics (sum over labels).
func gauge(t *testing.T, l *loader.Server, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + l.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}
