// Package jaegertest starts a throw-away Jaeger v2 (bin/jaeger, built by scripts/jaeger.sh)
// for tests, on 127.0.0.1 with its traces in memory, and reads traces back from its query
// API. The binary is $ASF_JAEGER_BIN or bin/jaeger at the workspace root (the directory
// holding go.work), run with the workspace's deploy/jaeger/config.yaml. Without the binary
// the test is skipped, or fails when ASF_JAEGER_REQUIRED=1 (CI: `make test` builds it).
//
//	j := jaegertest.Start(t)
//	// give the services --trace-endpoint j.Endpoint(), send a request, then:
//	tr := j.WaitTrace(t, traceID, 10*time.Second, jaegertest.SpanCount(5))
//	for _, s := range tr.Spans {
//	    t.Log(s.Service, s.Operation, s.SpanID, s.ParentID)
//	}
package jaegertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/testpoll"
	"github.com/athenaserving/asf/tests/layering"
	"github.com/athenaserving/asf/tools/suite"
)

// RequiredEnv is the variable that turns a missing bin/jaeger from a skip into a failure.
const RequiredEnv = "ASF_JAEGER_REQUIRED"

// startTimeout bounds how long Jaeger may take to report itself ready.
const startTimeout = 60 * time.Second

// ErrNotFound is returned by Trace for a trace id Jaeger does not hold (yet).
var ErrNotFound = errors.New("trace not found")

// Binary returns the path of the Jaeger binary and of its config file, or "" and "" with
// the reason they are missing.
func Binary() (bin, config, why string) {
	root, err := layering.RepoRoot()
	if p := os.Getenv("ASF_JAEGER_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", "", fmt.Sprintf("ASF_JAEGER_BIN=%s: %v", p, err)
		}
		bin = p
	}
	if err != nil {
		return "", "", err.Error()
	}
	config = filepath.Join(root, "deploy", "jaeger", "config.yaml")
	if _, err := os.Stat(config); err != nil {
		return "", "", fmt.Sprintf("%s missing", config)
	}
	if bin == "" {
		bin = filepath.Join(root, "bin", "jaeger")
		if _, err := os.Stat(bin); err != nil {
			return "", "", fmt.Sprintf("%s missing: build it with scripts/jaeger.sh (make jaeger) or set ASF_JAEGER_BIN", bin)
		}
	}
	return bin, config, ""
}

// Jaeger is a running Jaeger.
type Jaeger struct {
	endpoint, queryURL string
	http               *http.Client
}

// Endpoint is the OTLP/gRPC endpoint (host:port, plaintext): the services' trace-endpoint.
func (j *Jaeger) Endpoint() string { return j.endpoint }

// QueryURL is the base URL of the query API and the UI (http://127.0.0.1:port).
func (j *Jaeger) QueryURL() string { return j.queryURL }

// Start starts Jaeger and returns when it accepts spans and answers queries; it is
// stopped when the test ends. Without the binary it skips the test, or fails it when
// ASF_JAEGER_REQUIRED=1.
func Start(t testing.TB) *Jaeger {
	t.Helper()
	bin, config, why := Binary()
	if bin == "" {
		if os.Getenv(RequiredEnv) == "1" {
			t.Fatalf("jaeger not available (%s=1): %s", RequiredEnv, why)
		}
		t.Skip("jaeger not available: " + why)
	}
	dir := t.TempDir()
	for attempt := 1; ; attempt++ {
		// The OTLP receiver does not report the ports it bound, so they are picked free
		// here (and the start retried should another process take one meanwhile); the
		// query service binds port 0 and logs its addresses.
		j, stop, err := start(bin, config, filepath.Join(dir, "jaeger-"+strconv.Itoa(attempt)+".log"), freePorts(t, 2))
		if err == nil {
			t.Cleanup(stop)
			return j
		}
		if attempt == 3 {
			t.Fatal(err)
		}
	}
}

func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var out []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		out = append(out, ln.Addr().(*net.TCPAddr).Port)
	}
	return out
}

func start(bin, config, logPath string, ports []int) (*Jaeger, func(), error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, nil, err
	}
	otlp := "127.0.0.1:" + strconv.Itoa(ports[0])
	cmd := exec.Command(bin, "--config", config)
	cmd.Env = append(os.Environ(),
		"ASF_JAEGER_OTLP_GRPC_LISTEN="+otlp,
		"ASF_JAEGER_OTLP_HTTP_LISTEN=127.0.0.1:"+strconv.Itoa(ports[1]),
		"ASF_JAEGER_QUERY_HTTP_LISTEN=127.0.0.1:0",
		"ASF_JAEGER_QUERY_GRPC_LISTEN=127.0.0.1:0",
		"ASF_JAEGER_LOG_LEVEL=info",
	)
	cmd.Stdout = logf
	stderr, err := cmd.StderrPipe()
	if err != nil {
		_ = logf.Close()
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return nil, nil, err
	}
	var once sync.Once
	exited := make(chan struct{})
	var waitErr error
	query := make(chan string, 1)
	ready := make(chan struct{})
	go func() { // owned by the process: ends when it exits
		suite.ScanJaegerLog(stderr, logf, query, ready)
		waitErr = cmd.Wait()
		_ = logf.Close()
		close(exited)
	}()
	stop := func() {
		once.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
		})
	}
	fail := func(format string, args ...any) (*Jaeger, func(), error) {
		stop()
		out, _ := os.ReadFile(logPath)
		return nil, nil, fmt.Errorf(format+"\n%s", append(args, tail(out, 30))...)
	}
	deadline := time.NewTimer(startTimeout)
	defer deadline.Stop()
	var queryAddr string
	for queryAddr == "" || ready != nil {
		select {
		case queryAddr = <-query:
		case <-ready:
			ready = nil
		case <-exited:
			return fail("jaeger exited during start-up: %v", waitErr)
		case <-deadline.C:
			return fail("jaeger not ready in %s", startTimeout)
		}
	}
	j := &Jaeger{endpoint: otlp, queryURL: "http://" + queryAddr,
		http: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}}
	if err := testpoll.Check(10*time.Second, 20*time.Millisecond, func() error {
		_, err := j.Services(context.Background())
		return err
	}); err != nil {
		return fail("jaeger query API at %s: %v", j.queryURL, err)
	}
	return j, stop, nil
}

func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Span is one span of a trace as the query API returns it.
type Span struct {
	TraceID, SpanID string
	// ParentID is the span id of the CHILD_OF parent ("" for a root span).
	ParentID  string
	Service   string
	Operation string
	Start     time.Time
	Duration  time.Duration
	// Tags are the span's attributes (and its kind, status, ...), as strings.
	Tags map[string]string
}

// Trace is one trace: its spans ordered by start time.
type Trace struct {
	ID    string
	Spans []Span
}

// Services are the distinct service names of the trace's spans, sorted.
func (tr *Trace) Services() []string {
	var out []string
	for _, s := range tr.Spans {
		if !slices.Contains(out, s.Service) {
			out = append(out, s.Service)
		}
	}
	sort.Strings(out)
	return out
}

// Find returns the first span of service with operation ("" matches any), or nil.
func (tr *Trace) Find(service, operation string) *Span {
	for i, s := range tr.Spans {
		if s.Service == service && (operation == "" || s.Operation == operation) {
			return &tr.Spans[i]
		}
	}
	return nil
}

// Parent returns the span's parent in the trace, or nil for a root span (or a parent not
// in the trace).
func (tr *Trace) Parent(s *Span) *Span {
	for i, p := range tr.Spans {
		if s.ParentID != "" && p.SpanID == s.ParentID {
			return &tr.Spans[i]
		}
	}
	return nil
}

// String lists the spans, one a line: service, operation, span id, parent id.
func (tr *Trace) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "trace %s, %d spans:", tr.ID, len(tr.Spans))
	for _, s := range tr.Spans {
		fmt.Fprintf(&b, "\n  %-10s %-40s span %s parent %s", s.Service, s.Operation, s.SpanID, orDash(s.ParentID))
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// apiTrace is a trace of the query API's JSON (Jaeger's UI model).
type apiTrace struct {
	TraceID string `json:"traceID"`
	Spans   []struct {
		TraceID       string `json:"traceID"`
		SpanID        string `json:"spanID"`
		OperationName string `json:"operationName"`
		References    []struct {
			RefType string `json:"refType"`
			SpanID  string `json:"spanID"`
		} `json:"references"`
		StartTime int64 `json:"startTime"` // µs since the epoch
		Duration  int64 `json:"duration"`  // µs
		Tags      []struct {
			Key   string `json:"key"`
			Value any    `json:"value"`
		} `json:"tags"`
		ProcessID string `json:"processID"`
	} `json:"spans"`
	Processes map[string]struct {
		ServiceName string `json:"serviceName"`
	} `json:"processes"`
}

type apiResponse[T any] struct {
	Data   T `json:"data"`
	Errors []struct {
		Code int    `json:"code"`
		Msg  string `json:"msg"`
	} `json:"errors"`
}

func (j *Jaeger) get(ctx context.Context, path string, into any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.queryURL+path, nil)
	if err != nil {
		return 0, err
	}
	resp, err := j.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, fmt.Errorf("GET %s: %s: %s", path, resp.Status, strings.TrimSpace(string(body)))
	}
	if err := json.Unmarshal(body, into); err != nil {
		return resp.StatusCode, fmt.Errorf("GET %s: %w", path, err)
	}
	return resp.StatusCode, nil
}

// Trace fetches the trace with the given hex id from the query API (/api/traces/<id>); a
// trace Jaeger does not hold gives ErrNotFound.
func (j *Jaeger) Trace(ctx context.Context, traceID string) (*Trace, error) {
	var r apiResponse[[]apiTrace]
	code, err := j.get(ctx, "/api/traces/"+traceID, &r)
	if code == http.StatusNotFound {
		return nil, fmt.Errorf("trace %s: %w", traceID, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	if len(r.Data) == 0 {
		return nil, fmt.Errorf("trace %s: %w", traceID, ErrNotFound)
	}
	return convert(r.Data[0]), nil
}

func convert(a apiTrace) *Trace {
	tr := &Trace{ID: a.TraceID}
	for _, s := range a.Spans {
		sp := Span{TraceID: s.TraceID, SpanID: s.SpanID, Operation: s.OperationName,
			Service:  a.Processes[s.ProcessID].ServiceName,
			Start:    time.UnixMicro(s.StartTime),
			Duration: time.Duration(s.Duration) * time.Microsecond,
			Tags:     map[string]string{}}
		for _, r := range s.References {
			if r.RefType == "CHILD_OF" && sp.ParentID == "" {
				sp.ParentID = r.SpanID
			}
		}
		for _, kv := range s.Tags {
			sp.Tags[kv.Key] = fmt.Sprint(kv.Value)
		}
		tr.Spans = append(tr.Spans, sp)
	}
	sort.SliceStable(tr.Spans, func(a, b int) bool { return tr.Spans[a].Start.Before(tr.Spans[b].Start) })
	return tr
}

// Services lists the service names Jaeger holds spans of (/api/services), sorted.
func (j *Jaeger) Services(ctx context.Context) ([]string, error) {
	var r apiResponse[[]string]
	if _, err := j.get(ctx, "/api/services", &r); err != nil {
		return nil, err
	}
	sort.Strings(r.Data)
	return r.Data, nil
}

// WaitTrace polls the query API until the trace exists and cond (nil: any) accepts it,
// and returns it; after timeout it fails the test with the last reason and the spans seen.
// Spans reach Jaeger in batches, so a trace may first appear with some of its spans.
func (j *Jaeger) WaitTrace(t testing.TB, traceID string, timeout time.Duration, cond func(*Trace) error) *Trace {
	t.Helper()
	var got *Trace
	testpoll.CheckFor(t, timeout, 50*time.Millisecond, func() error {
		tr, err := j.Trace(t.Context(), traceID)
		if err != nil {
			return err
		}
		got = tr
		if cond != nil {
			if err := cond(tr); err != nil {
				return fmt.Errorf("%w\n%s", err, tr)
			}
		}
		return nil
	})
	return got
}

// SpanCount is a WaitTrace condition: the trace has at least n spans.
func SpanCount(n int) func(*Trace) error {
	return func(tr *Trace) error {
		if len(tr.Spans) < n {
			return fmt.Errorf("%d spans, want at least %d", len(tr.Spans), n)
		}
		return nil
	}
}

// HasServices is a WaitTrace condition: the trace has spans of every named service.
func HasServices(names ...string) func(*Trace) error {
	return func(tr *Trace) error {
		have := tr.Services()
		var missing []string
		for _, n := range names {
			if !slices.Contains(have, n) {
				missing = append(missing, n)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("no spans of %v yet (have %v)", missing, have)
		}
		return nil
	}
}
