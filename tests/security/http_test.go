package security

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/athenaserving/asf/tests/suitetest"
)

// httpDo makes one request and returns the status, headers and body.
func httpDo(t *testing.T, c *http.Client, method, u, token string, body []byte) (int, http.Header, []byte) {
	t.Helper()
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	req, err := http.NewRequestWithContext(t.Context(), method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil && !strings.Contains(u, "/ui/") && !strings.HasSuffix(u, "/login") {
		req.Header.Set("Content-Type", "application/json")
	}
	if strings.Contains(u, "/ui/") && method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// apiError is the admin API's documented error body.
type apiError struct {
	Error struct {
		Code    int    `json:"code"`
		Status  int    `json:"status"`
		Message string `json:"message"`
	} `json:"error"`
}

// wantAPIError fails unless the answer is HTTP status with the documented JSON error of code.
func wantAPIError(t *testing.T, what string, st int, h http.Header, body []byte, status, code int) {
	t.Helper()
	var e apiError
	if st != status || json.Unmarshal(body, &e) != nil || e.Error.Code != code || e.Error.Status != status || e.Error.Message == "" ||
		!strings.HasPrefix(h.Get("Content-Type"), "application/json") {
		t.Errorf("%s: HTTP %d %s, want %d with {\"error\":{\"code\":%d,...}}", what, st, body, status, code)
	}
	if status == http.StatusUnauthorized && h.Get("WWW-Authenticate") == "" {
		t.Errorf("%s: 401 without WWW-Authenticate", what)
	}
}

// createToken makes an API token of role with the admin token and returns its secret.
func createToken(t *testing.T, s *suitetest.Suite, name, role string) string {
	t.Helper()
	st, _, b := httpDo(t, nil, http.MethodPost, "http://"+s.Polaris.ConsoleAddr()+"/api/v1/tokens", suitetest.AdminToken,
		[]byte(`{"name":"`+name+`","role":"`+role+`"}`))
	var v struct {
		Token string `json:"token"`
	}
	if st != http.StatusOK || json.Unmarshal(b, &v) != nil || v.Token == "" {
		t.Fatalf("create %s token: HTTP %d %s", role, st, b)
	}
	return v.Token
}

// consoleSession logs a browser into the console with token (through a one-time login
// link) and returns its client and the CSRF token of its forms.
func consoleSession(t *testing.T, s *suitetest.Suite, token string) (*http.Client, string) {
	t.Helper()
	base := "http://" + s.Polaris.ConsoleAddr()
	st, _, b := httpDo(t, nil, http.MethodPost, base+"/api/v1/login-links", token, []byte(`{}`))
	var v struct {
		URL string `json:"url"`
	}
	if st != http.StatusOK || json.Unmarshal(b, &v) != nil || v.URL == "" {
		t.Fatalf("login link: HTTP %d %s", st, b)
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if st, _, b := httpDo(t, c, http.MethodGet, base+v.URL, "", nil); st != http.StatusSeeOther {
		t.Fatalf("login: HTTP %d %s", st, b)
	}
	st, _, page := httpDo(t, c, http.MethodGet, base+"/ui/", "", nil)
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(page)
	if st != http.StatusOK || m == nil {
		t.Fatalf("console page without a CSRF token: HTTP %d %s", st, page)
	}
	return c, string(m[1])
}

// route is one route of an HTTP router, read from its source.
type route struct {
	Method, Path string // Method "" for a pattern without one
	Op           string // the service.Op the admin API route checks (admin API only)
	Auth, Post   bool   // console: behind a session, and a form post
}

var (
	reConst        = regexp.MustCompile(`const (\w+) = "([^"]*)"`)
	reAPIRoute     = regexp.MustCompile(`route\(((?:"[^"]*"|\w+)(?:\s*\+\s*(?:"[^"]*"|\w+))*),\s*service\.(Op\w+),`)
	reConsoleRoute = regexp.MustCompile(`mux\.HandleFunc\("([^"]+)",\s*(c\.authed\((true|false),)?`)
	reAnyRoute     = regexp.MustCompile(`\b(route|HandleFunc|Handle)\(`)
)

// sourceRoutes reads the routes registered in the Go files of dir (relative to the
// tests module): every call of route(...) (admin API, pattern + op) or mux.HandleFunc
// (console). String constants in those files are substituted. It fails when a file
// registers a route in a form it cannot read, so no route escapes the suite.
func sourceRoutes(t *testing.T, dir string, api bool) []route {
	t.Helper()
	files, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []route
	for _, f := range files {
		if !strings.HasSuffix(f.Name(), ".go") || strings.HasSuffix(f.Name(), "_test.go") {
			continue
		}
		src, err := os.ReadFile(dir + "/" + f.Name())
		if err != nil {
			t.Fatal(err)
		}
		consts := map[string]string{}
		for _, m := range reConst.FindAllStringSubmatch(string(src), -1) {
			consts[m[1]] = m[2]
		}
		found := 0
		if api {
			for _, m := range reAPIRoute.FindAllStringSubmatch(string(src), -1) {
				var p strings.Builder
				for _, part := range strings.Split(m[1], "+") {
					part = strings.TrimSpace(part)
					if s, ok := strings.CutPrefix(part, `"`); ok {
						p.WriteString(strings.TrimSuffix(s, `"`))
					} else if v, ok := consts[part]; ok {
						p.WriteString(v)
					} else {
						t.Fatalf("%s: route pattern part %q is not a string constant", f.Name(), part)
					}
				}
				out = append(out, splitPattern(p.String(), route{Op: m[2]}))
				found++
			}
		} else {
			for _, m := range reConsoleRoute.FindAllStringSubmatch(string(src), -1) {
				out = append(out, splitPattern(m[1], route{Auth: m[2] != "", Post: m[3] == "true"}))
				found++
			}
		}
		// Every registration call must have been read (the route helper's own
		// definition and the inner mux.HandleFunc of the admin API excepted).
		calls := 0
		for _, line := range strings.Split(string(src), "\n") {
			l := strings.TrimSpace(line)
			if strings.HasPrefix(l, "//") || strings.HasPrefix(l, "route := func") || strings.HasPrefix(l, "func (") {
				continue
			}
			if api && strings.HasPrefix(l, "mux.HandleFunc(pattern,") {
				continue
			}
			if reAnyRoute.MatchString(l) && (api && strings.HasPrefix(l, "route(") || !api && strings.HasPrefix(l, "mux.Handle")) {
				calls++
			}
		}
		if calls != found {
			t.Fatalf("%s/%s registers %d routes, the suite read %d: teach sourceRoutes the new form", dir, f.Name(), calls, found)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no routes found in %s", dir)
	}
	return out
}

func splitPattern(p string, r route) route {
	if m, path, ok := strings.Cut(p, " "); ok {
		r.Method, r.Path = m, path
	} else {
		r.Path = p
	}
	return r
}

// samplePath fills a pattern's wildcards with values that name nothing secret and
// exist where they need to ({$} and {x...} included).
func samplePath(p string) string {
	p = strings.ReplaceAll(p, "{$}", "")
	vals := map[string]string{"service": "echo", "addr": "127.0.0.1:1", "id": "nope", "project": "asf", "group": "default",
		"version": "v1", "file": "security.txt", "rev": "1", "app_id": "app1", "res_id": "res1"}
	return regexp.MustCompile(`\{(\w+)(\.\.\.)?\}`).ReplaceAllStringFunc(p, func(w string) string {
		name := strings.Trim(w, "{}.")
		if v, ok := vals[name]; ok {
			return url.PathEscape(v)
		}
		return "x"
	})
}
