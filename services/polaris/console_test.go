package polaris_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/athenaserving/asf/services/polaris"
	"github.com/athenaserving/asf/services/polaris/config"
	"github.com/athenaserving/asf/services/polaris/registry"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// logBuf is a log sink tests can read while the server writes.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// bootstrapToken returns the admin token the server logged at its first start.
func bootstrapToken(t *testing.T, logs string) string {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(logs))
	var found []string
	for sc.Scan() {
		var e map[string]any
		if json.Unmarshal(sc.Bytes(), &e) == nil {
			if tok, ok := e["token"].(string); ok && strings.Contains(fmt.Sprint(e["message"]), "admin token created") {
				found = append(found, tok)
			}
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one bootstrap token in the log, found %d", len(found))
	}
	return found[0]
}

// startWithLog starts polaris in dataDir with its log captured.
func startWithLog(t *testing.T, dataDir string) (*polaris.Server, *logBuf) {
	t.Helper()
	lb := &logBuf{}
	cfg := polaris.DefaultConfig()
	cfg.GRPCListen, cfg.AdminListen, cfg.NATSListen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.ConsoleListen, cfg.DataDir = "127.0.0.1:0", dataDir
	cfg.TLS.Insecure = true // NATS without credentials
	srv, err := polaris.New(cfg, zerolog.New(lb), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return srv, lb
}

type apiClient struct {
	t    *testing.T
	base string
	tok  string
}

type apiErr struct {
	Error struct {
		Code    int    `json:"code"`
		Status  int    `json:"status"`
		Message string `json:"message"`
	} `json:"error"`
}

// do sends a request and decodes the answer into out (when not nil); it returns the status.
func (c apiClient) do(method, path string, body any, out any) int {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequestWithContext(c.t.Context(), method, c.base+path, rd)
	if c.tok != "" {
		req.Header.Set("Authorization", "Bearer "+c.tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		c.t.Fatalf("%s %s: content type %q: %s", method, path, ct, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			c.t.Fatalf("%s %s: %v: %s", method, path, err, raw)
		}
	}
	return resp.StatusCode
}

// wantErr checks an error answer's status and code.
func (c apiClient) wantErr(method, path string, body any, status, code int) {
	c.t.Helper()
	var e apiErr
	if got := c.do(method, path, body, &e); got != status || e.Error.Code != code || e.Error.Message == "" {
		c.t.Fatalf("%s %s: status %d code %d %q, want %d/%d", method, path, got, e.Error.Code, e.Error.Message, status, code)
	}
}

const fileURL = "/api/v1/config/files/asf/default/echo/1/echo.toml"

func TestAdminAPI(t *testing.T) {
	dir := t.TempDir()
	srv, logs := startWithLog(t, dir)
	base := "http://" + srv.ConsoleAddr()
	admin := apiClient{t, base, bootstrapToken(t, logs.String())}

	// Authentication.
	apiClient{t, base, ""}.wantErr("GET", "/api/v1/services", nil, 401, 10401)
	apiClient{t, base, "plr_nope"}.wantErr("GET", "/api/v1/services", nil, 401, 10401)
	var who map[string]any
	if admin.do("GET", "/api/v1/whoami", nil, &who) != 200 || who["role"] != "admin" {
		t.Fatalf("whoami: %v", who)
	}
	var created struct{ ID, Token, Role string }
	if admin.do("POST", "/api/v1/tokens", map[string]string{"name": "ops", "role": "viewer"}, &created) != 200 || created.Token == "" {
		t.Fatalf("create viewer: %+v", created)
	}
	viewer := apiClient{t, base, created.Token}
	viewer.wantErr("PUT", fileURL, map[string]string{"content": "x"}, 403, 10403)
	viewer.wantErr("POST", "/api/v1/tokens", map[string]string{"name": "x", "role": "admin"}, 403, 10403)

	// Bad input: nothing is written.
	admin.wantErr("PUT", fileURL, `{"content": "a=1"`, 400, 10163)
	admin.wantErr("PUT", fileURL, `{"content": "a=1", "extra": 1}`, 400, 10163)
	admin.wantErr("PUT", fileURL, `{"content": "a=1"} {}`, 400, 10163)
	admin.wantErr("PUT", fileURL, map[string]string{}, 400, 10107)
	admin.wantErr("PUT", fileURL, `{"content":"`+strings.Repeat("x", 5<<20)+`"}`, 413, 10413)
	admin.wantErr("GET", fileURL+"/history", nil, 404, 10404)
	admin.wantErr("GET", "/api/v1/config/files?project=nope", nil, 404, 10404)
	admin.wantErr("GET", "/api/v1/services/nope/instances", nil, 404, 10404)
	admin.wantErr("GET", "/api/v1/nothing", nil, 404, 10404)
	admin.wantErr("POST", "/api/v1/tokens", map[string]string{"name": "x", "role": "root"}, 400, 10107)

	// Config: push twice, gray push, history, diff, rollback, applied, delete.
	var f1, f2, g3, r4 struct {
		Revision int64
		Content  string
		Gray     bool
	}
	admin.do("PUT", fileURL, map[string]string{"content": "a=1\nb=2\n", "comment": "first"}, &f1)
	admin.do("PUT", fileURL, map[string]string{"content": "a=1\nb=3\n", "comment": "second"}, &f2)
	admin.do("PUT", fileURL, map[string]string{"content": "a=1\nb=4\n", "gray_group": "canary"}, &g3)
	if f1.Revision != 1 || f2.Revision != 2 || g3.Revision != 3 || !g3.Gray {
		t.Fatalf("revisions %d %d %d", f1.Revision, f2.Revision, g3.Revision)
	}
	var cur, gray struct {
		Revision int64
		Content  string
	}
	viewer.do("GET", fileURL, nil, &cur)
	viewer.do("GET", fileURL+"?gray=canary", nil, &gray)
	if cur.Revision != 2 || gray.Revision != 3 {
		t.Fatalf("current %d gray %d", cur.Revision, gray.Revision)
	}
	var d struct {
		Added, Removed int
		Unified        string
	}
	viewer.do("GET", fileURL+"/diff?from=1&to=2", nil, &d)
	if d.Added != 1 || d.Removed != 1 || d.Unified != " a=1\n-b=2\n+b=3\n" {
		t.Fatalf("diff: %+v", d)
	}
	admin.wantErr("GET", fileURL+"/diff?from=1&to=x", nil, 400, 10107)
	admin.wantErr("GET", fileURL+"/diff?from=1&to=9", nil, 404, 10404)
	var files struct {
		Files []struct {
			Current   int64
			Revisions int
			Gray      map[string]int64
		}
	}
	viewer.do("GET", "/api/v1/config/files?project=asf", nil, &files)
	if len(files.Files) != 1 || files.Files[0].Current != 2 || files.Files[0].Gray["canary"] != 3 {
		t.Fatalf("files: %+v", files)
	}
	admin.do("POST", fileURL+"/rollback", map[string]int64{"revision": 1}, &r4)
	if r4.Revision != 4 || r4.Content != "a=1\nb=2\n" {
		t.Fatalf("rollback: %+v", r4)
	}
	var hist struct {
		Current   int64
		Revisions []struct{ Revision int64 }
	}
	viewer.do("GET", fileURL+"/history", nil, &hist)
	if hist.Current != 4 || len(hist.Revisions) != 4 {
		t.Fatalf("history: %+v", hist)
	}
	k := configKeyOf("asf", "default", "echo", "1", "echo.toml")
	if err := srv.ConfigCenter().ReportApplied(t.Context(), k, 4, callerAt("10.0.0.1:1"), true, ""); err != nil {
		t.Fatal(err)
	}
	var ap struct{ Reports []struct{ Addr string } }
	viewer.do("GET", fileURL+"/applied", nil, &ap)
	if len(ap.Reports) != 1 || ap.Reports[0].Addr != "10.0.0.1:1" {
		t.Fatalf("applied: %+v", ap)
	}

	// Registry: instances with load, admin state, consumers.
	registerEcho(t, srv, "127.0.0.1:7001")
	var inst struct {
		Instances []struct {
			Load  struct{ Idle, Total int32 }
			Admin struct {
				Enabled bool
				Weight  int32
			}
		}
	}
	viewer.do("GET", "/api/v1/services/echo/instances", nil, &inst)
	if len(inst.Instances) != 1 || inst.Instances[0].Load.Total != 4 || !inst.Instances[0].Admin.Enabled {
		t.Fatalf("instances: %+v", inst)
	}
	admin.do("PUT", "/api/v1/services/echo/instances/127.0.0.1:7001/admin", map[string]any{"enabled": false, "weight": 7}, nil)
	viewer.do("GET", "/api/v1/services/echo/instances", nil, &inst)
	if a := inst.Instances[0].Admin; a.Enabled || a.Weight != 7 {
		t.Fatalf("admin: %+v", a)
	}
	admin.wantErr("PUT", "/api/v1/services/echo/instances/127.0.0.1:7001/admin", map[string]any{"weight": -1}, 400, 10107)
	var cons struct{ Consumers []any }
	viewer.do("GET", "/api/v1/consumers", nil, &cons)
	if len(cons.Consumers) != 0 {
		t.Fatalf("consumers: %+v", cons)
	}

	admin.do("DELETE", fileURL, nil, nil)
	admin.wantErr("GET", fileURL, nil, 404, 10404)

	// Revoking the viewer ends it; the admin token survives a restart and no second
	// token is printed.
	admin.do("DELETE", "/api/v1/tokens/"+created.ID, nil, nil)
	viewer.wantErr("GET", "/api/v1/services", nil, 401, 10401)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	srv2, logs2 := startWithLog(t, dir)
	if strings.Contains(logs2.String(), "admin token created") {
		t.Fatal("second start printed a new admin token")
	}
	admin.base = "http://" + srv2.ConsoleAddr()
	if admin.do("GET", "/api/v1/whoami", nil, nil) != 200 {
		t.Fatal("admin token lost across restart")
	}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func TestConsoleSessionsAndCSRF(t *testing.T) {
	srv, logs := startWithLog(t, t.TempDir())
	base := "http://" + srv.ConsoleAddr()
	adminTok := bootstrapToken(t, logs.String())
	admin := apiClient{t, base, adminTok}
	var viewerTok struct{ Token string }
	admin.do("POST", "/api/v1/tokens", map[string]string{"name": "v", "role": "viewer"}, &viewerTok)
	admin.do("PUT", fileURL, map[string]string{"content": "a=1\n"}, nil)

	browser := func() *http.Client {
		jar, _ := cookiejar.New(nil)
		return &http.Client{Jar: jar}
	}
	get := func(c *http.Client, path string) (int, string) {
		resp, err := c.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	post := func(c *http.Client, path string, form url.Values) (int, string) {
		resp, err := c.PostForm(base+path, form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	fileForm := func(csrf string) url.Values {
		return url.Values{"csrf": {csrf}, "project": {"asf"}, "group": {"default"}, "service": {"echo"}, "version": {"1"}, "file": {"echo.toml"}, "content": {"a=2\r\n"}}
	}

	// Not logged in: pages redirect to the login form.
	anon := browser()
	if code, body := get(anon, "/ui/config"); code != 200 || !strings.Contains(body, `name="token"`) {
		t.Fatalf("anonymous: %d", code)
	}
	if code, _ := post(anon, "/login", url.Values{"token": {"wrong"}}); code != 401 {
		t.Fatalf("bad login: %d", code)
	}

	// Admin: login, CSRF required, push works.
	ab := browser()
	if code, body := post(ab, "/login", url.Values{"token": {adminTok}, "next": {"/ui/config"}}); code != 200 || !strings.Contains(body, "echo.toml") {
		t.Fatalf("login: %d %s", code, body)
	}
	u, _ := url.Parse(base)
	for _, ck := range ab.Jar.Cookies(u) {
		if ck.Name == "polaris_session" && ck.Value == adminTok {
			t.Fatal("the token itself is the cookie")
		}
	}
	_, page := get(ab, "/ui/config/file?project=asf&group=default&service=echo&version=1&file=echo.toml")
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no csrf token in the file page")
	}
	if code, _ := post(ab, "/ui/config/push", fileForm("forged")); code != 403 {
		t.Fatalf("push without csrf: %d", code)
	}
	if code, body := post(ab, "/ui/config/push", fileForm(m[1])); code != 200 || !strings.Contains(body, "pushed revision 2") {
		t.Fatalf("push: %d", code)
	}
	got, err := srv.ConfigCenter().Get(t.Context(), configKeyOf("asf", "default", "echo", "1", "echo.toml"), callerAt(""))
	if err != nil || string(got.Content) != "a=2\n" {
		t.Fatalf("pushed content %q %v", got.Content, err)
	}

	// Viewer: reads, cannot write even with its own CSRF token.
	vb := browser()
	post(vb, "/login", url.Values{"token": {viewerTok.Token}})
	_, page = get(vb, "/ui/config/file?project=asf&group=default&service=echo&version=1&file=echo.toml")
	m = csrfRE.FindStringSubmatch(page)
	if m == nil || strings.Contains(page, "Push a revision") {
		t.Fatal("viewer page: csrf missing or push form shown")
	}
	if code, _ := post(vb, "/ui/config/push", fileForm(m[1])); code != 403 {
		t.Fatalf("viewer push: %d", code)
	}

	// Logout ends the session.
	_, page = get(ab, "/ui/")
	m = csrfRE.FindStringSubmatch(page)
	post(ab, "/logout", url.Values{"csrf": {m[1]}})
	if _, body := get(ab, "/ui/"); !strings.Contains(body, `name="token"`) {
		t.Fatal("still logged in after logout")
	}

	// A login link works once.
	var link struct{ URL string }
	admin.do("POST", "/api/v1/login-links", nil, &link)
	lb := browser()
	if code, body := get(lb, link.URL+"&next=/ui/tokens"); code != 200 || !strings.Contains(body, "API tokens") {
		t.Fatalf("login link: %d", code)
	}
	if code, _ := get(browser(), link.URL); code != 401 {
		t.Fatalf("login link reused: %d", code)
	}
}

func configKeyOf(p, g, s, v, f string) config.Key {
	return config.Key{Project: p, Group: g, Service: s, Version: v, File: f}
}

func callerAt(addr string) config.Caller { return config.Caller{Addr: addr} }

func registerEcho(t *testing.T, srv *polaris.Server, addr string) {
	t.Helper()
	_, err := srv.Registry().Register(t.Context(), registry.Instance{Service: "echo", Addr: addr, Version: "1.0"},
		registry.Load{Total: 4, Best: 4, Idle: 3, Live: 1}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
}
