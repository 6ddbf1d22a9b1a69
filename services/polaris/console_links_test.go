package polaris_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/athenaserving/asf/services/polaris/registry"
)

// TestConsoleLinksEscapeNames follows the console's links for a service whose name holds
// "/" (and other characters that need escaping in a path): the services page links to its
// page, and the admin form on it posts to, and redirects back to, the same service.
func TestConsoleLinksEscapeNames(t *testing.T) {
	srv, logs := startWithLog(t, t.TempDir())
	base := "http://" + srv.ConsoleAddr()
	const svc = "team/echo v2?#%"
	const addr = "127.0.0.1:7101"
	if _, err := srv.Registry().Register(t.Context(), registry.Instance{Service: svc, Addr: addr, Version: "1.0"},
		registry.Load{Total: 4, Best: 4, Idle: 4, Live: 1}, time.Minute); err != nil {
		t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	do := func(resp *http.Response, err error) (int, string, string) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Request.URL.EscapedPath(), string(b)
	}
	if code, _, _ := do(c.PostForm(base+"/login", url.Values{"token": {bootstrapToken(t, logs.String())}})); code != 200 {
		t.Fatalf("login: %d", code)
	}
	_, _, page := do(c.Get(base + "/ui/"))
	m := regexp.MustCompile(`href="(/ui/services/[^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no service link on the services page:\n%s", page)
	}
	link := strings.ReplaceAll(m[1], "&amp;", "&")
	if want := "/ui/services/" + url.PathEscape(svc); link != want {
		t.Fatalf("link %q, want %q", link, want)
	}
	code, _, page := do(c.Get(base + link))
	if code != 200 || !strings.Contains(page, addr) {
		t.Fatalf("GET %s: %d\n%s", link, code, page)
	}
	a := regexp.MustCompile(`action="(/ui/services/[^"]+/admin)"`).FindStringSubmatch(page)
	csrf := csrfRE.FindStringSubmatch(page)
	if a == nil || csrf == nil {
		t.Fatalf("no admin form on the service page:\n%s", page)
	}
	code, path, page := do(c.PostForm(base+a[1], url.Values{"csrf": {csrf[1]}, "addr": {addr}, "weight": {"42"}}))
	if code != 200 || path != link || !strings.Contains(page, "weight=42") {
		t.Fatalf("POST %s: %d, landed on %s\n%s", a[1], code, path, page)
	}
	if sts := srv.Registry().List(svc); len(sts) != 1 || sts[0].Admin.Weight != 42 {
		t.Fatalf("admin state after the form: %+v", sts)
	}
}
