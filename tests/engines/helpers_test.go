// Package engines holds the end-to-end tests of the example engines (examples/engines:
// tts, asr, digits) served by the whole suite in one process and driven through webgate
// with signed ASE requests. Tests whose Debian packages are absent are skipped with the
// reason; scripts/engines.sh installs them (as root) and builds the C engines.
package engines

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/athenaserving/asf/services/loader"
	"github.com/athenaserving/asf/services/webgate"
	"github.com/athenaserving/asf/tests/suitetest"
	"github.com/gorilla/websocket"
)

// The app every test signs with (webgate's demo app).
const (
	appID     = "engines-e2e"
	apiKey    = "engines-key"
	apiSecret = "engines-secret"
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

// startSuite starts the suite with one loader per spec and a webgate that authenticates
// with the demo app.
func startSuite(t *testing.T, specs ...loaderSpec) *suitetest.Suite {
	t.Helper()
	set := func(i int, c *loader.Config) {
		sp := specs[i]
		c.Service, c.Engine, c.EnginePath, c.EngineConfig = sp.service, sp.engine, sp.path, sp.config
		c.Async, c.Workers = sp.async, sp.workers
		if sp.licence > 0 {
			c.Licence = sp.licence
		}
	}
	s := suitetest.Start(t, suitetest.Options{
		Loaders: 1, Service: specs[0].service, Engine: specs[0].engine, Loader: set,
		Webgate: func(c *webgate.Config) {
			c.Auth = "on"
			c.DemoApp = appID + ":" + apiKey + ":" + apiSecret
		},
	})
	for i := 1; i < len(specs); i++ {
		s.AddLoader()
		svc := specs[i].service
		suitetest.WaitFor(t, 10*time.Second, func() bool { return s.LB.Live(svc) >= 1 })
	}
	return s
}

// signedURL signs method+path for webgate (ASE HMAC-SHA256, URL parameters) and returns
// the URL to call; base is http://host:port or ws://host:port.
func signedURL(base, method, path string) string {
	u, _ := url.Parse(base)
	date := time.Now().UTC().Format(http.TimeFormat)
	origin := "host: " + u.Host + "\ndate: " + date + "\n" + method + " " + path + " HTTP/1.1"
	mac := hmac.New(sha256.New, []byte(apiSecret))
	mac.Write([]byte(origin))
	sig := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	authz := fmt.Sprintf(`api_key="%s", algorithm="hmac-sha256", headers="host date request-line", signature="%s"`, apiKey, sig)
	q := url.Values{"authorization": {base64.StdEncoding.EncodeToString([]byte(authz))}, "date": {date}, "host": {u.Host}}
	return base + path + "?" + q.Encode()
}

// header and response are the parts of an ASE response the tests read.
type header struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	SID     string `json:"sid"`
	Status  int    `json:"status"`
}

type response struct {
	Header  header                                `json:"header"`
	Payload map[string]map[string]json.RawMessage `json:"payload"`
}

// postOnce sends a signed once request for capability and decodes the response.
func postOnce(t *testing.T, s *suitetest.Suite, capability string, body []byte) response {
	t.Helper()
	r, err := tryOnce(s, capability, body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// tryOnce is postOnce for goroutines: it returns failures instead of failing the test.
func tryOnce(s *suitetest.Suite, capability string, body []byte) (response, error) {
	var r response
	resp, err := http.Post(signedURL(s.URL(), "POST", "/v1/private/"+capability), "application/json", bytes.NewReader(body))
	if err != nil {
		return r, fmt.Errorf("post %s: %w", capability, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("%s response %d %.300q: %w", capability, resp.StatusCode, b, err)
	}
	if resp.StatusCode != http.StatusOK || r.Header.Code != 0 {
		return r, fmt.Errorf("%s: HTTP %d, header %+v", capability, resp.StatusCode, r.Header)
	}
	return r, nil
}

// dialWS opens a signed WebSocket session to capability.
func dialWS(t *testing.T, s *suitetest.Suite, capability string) *websocket.Conn {
	t.Helper()
	ws := "ws" + strings.TrimPrefix(s.URL(), "http")
	c, resp, err := websocket.DefaultDialer.Dial(signedURL(ws, "GET", "/v1/private/"+capability), nil)
	if err != nil {
		code := 0
		if resp != nil {
			code = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (HTTP %d)", capability, err, code)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// bytesField decodes an output's base64 data field.
func bytesField(t *testing.T, item map[string]json.RawMessage, field string) []byte {
	t.Helper()
	var s string
	if err := json.Unmarshal(item[field], &s); err != nil {
		t.Fatalf("field %s = %.200s: %v", field, item[field], err)
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("field %s: %v", field, err)
	}
	return b
}

// jsonField decodes an output's data field holding JSON: inlined (format json) or base64.
func jsonField(t *testing.T, item map[string]json.RawMessage, field string, dst any) {
	t.Helper()
	raw := item[field]
	if len(raw) > 0 && raw[0] == '"' {
		raw = bytesField(t, item, field)
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		t.Fatalf("field %s = %.200s: %v", field, raw, err)
	}
}

// attr returns an output attribute as text (numbers and strings alike).
func attr(item map[string]json.RawMessage, key string) string {
	raw := item[key]
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
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
