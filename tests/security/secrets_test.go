package security

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	polarispb "github.com/athenaserving/asf/libs/proto/polaris/v1"
	"github.com/athenaserving/asf/services/webgate"
	"github.com/athenaserving/asf/tests/asetest"
	"github.com/athenaserving/asf/tests/suitetest"
	"google.golang.org/grpc/codes"
)

// logBuf is one process's captured log.
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

// haystack collects everything the scenario saw: logs, metrics, answers, pages.
type haystack struct {
	mu    sync.Mutex
	items map[string]string // what → text
}

func (h *haystack) add(what, text string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.items[what] += text
}

func randomSecret(prefix string) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// secretsOf are the secrets of the suite's files: every private key's PEM body lines
// and every NATS seed.
func secretsOf(t *testing.T, s *suitetest.Suite) map[string]string {
	t.Helper()
	out := map[string]string{}
	keys, _ := filepath.Glob(filepath.Join(s.PKIDir(), "*.key"))
	for _, k := range keys {
		b, err := os.ReadFile(k)
		if err != nil {
			t.Fatal(err)
		}
		out["private key "+filepath.Base(k)] = string(b)
		for i, line := range strings.Split(string(b), "\n") {
			if len(line) >= 24 && !strings.HasPrefix(line, "-----") {
				out[fmt.Sprintf("private key %s line %d", filepath.Base(k), i)] = line
			}
		}
	}
	seeds, _ := filepath.Glob(filepath.Join(s.NATSDir, "*.nk"))
	for _, f := range seeds {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if line = strings.TrimSpace(line); len(line) >= 24 && !strings.HasPrefix(line, "-----") && !strings.HasPrefix(line, "*") {
				out["nats seed "+filepath.Base(f)] = line
			}
		}
	}
	if len(keys) < 6 || len(seeds) < 2 {
		t.Fatalf("found %d private keys and %d seeds: the suite's files moved", len(keys), len(seeds))
	}
	return out
}

// TestSecretsNeverLeak runs a cross-service scenario — once and stream requests, error
// paths, refused credentials, admin pushes over gRPC and the API, console pages as an
// admin and as a viewer, every service's /metrics and debug views — capturing every
// process's log, and checks that none of the secrets it used appears anywhere: the
// app's api_secret, the admin and viewer tokens, the TLS private keys, the NATS seeds.
// The one exception is an admin reading the apps file it owns.
func TestSecretsNeverLeak(t *testing.T) {
	logs := map[string]*logBuf{}
	var logsMu sync.Mutex
	s := suitetest.Start(t, suitetest.Options{Loaders: 1,
		LogTo: func(process string) io.Writer {
			logsMu.Lock()
			defer logsMu.Unlock()
			l := &logBuf{}
			logs[process] = l
			return l
		},
		Webgate: func(c *webgate.Config) { c.Pprof = true }, // profiles on: cmdline still not served
	})
	hay := &haystack{items: map[string]string{}}
	consoleBase := "http://" + s.Polaris.ConsoleAddr()

	// An app with a secret of its own, pushed as an operator does; the demo app stays.
	app := asetest.Credentials{AppID: "secapp", APIKey: "secapp-key", APISecret: randomSecret("apisecret-")}
	apps := func(comment string) []byte {
		return fmt.Appendf(nil, `{"apps":[{"app_id":%q,"api_key":%q,"api_secret":%q},{"app_id":%q,"api_key":%q,"api_secret":%q,"qps":%s}]}`,
			app.AppID, app.APIKey, app.APISecret, suitetest.DemoApp.AppID, suitetest.DemoApp.APIKey, suitetest.DemoApp.APISecret, comment)
	}
	s.PushConfig("webgate", "apps.json", apps("1000"))
	client := asetest.New(s.URL(), &app)
	frame := asetest.Frame{Status: 3, Header: map[string]any{"uid": "u1"}, Payload: map[string]asetest.Data{"input": asetest.Text("secret scenario")}}
	suitetest.WaitFor(t, 10*time.Second, func() bool {
		r, err := client.Once(t.Context(), "echo", frame)
		return err == nil && r.HTTPStatus == http.StatusOK && r.Header.Code == 0
	})
	viewer := createToken(t, s, "leak-viewer", "viewer")
	secrets := secretsOf(t, s)
	secrets["app api_secret"] = app.APISecret
	secrets["demo app api_secret"] = suitetest.DemoApp.APISecret
	secrets["admin token"] = suitetest.AdminToken
	secrets["viewer token"] = viewer

	// Once, stream, multiplex and the error paths.
	for i := range 3 {
		r, err := client.Once(t.Context(), "echo", frame)
		if err != nil || r.Header.Code != 0 {
			t.Fatalf("once %d: %v %v", i, err, r)
		}
		hay.add("once answers", string(r.Raw))
	}
	sess, err := client.Stream(t.Context(), "echo")
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range []int{0, 1, 2} {
		f := frame
		f.Status = st
		if err := sess.Send(f); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
	}
	res, err := sess.RecvUntilEnd(10 * time.Second)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	for _, r := range res {
		hay.add("stream answers", string(r.Raw))
	}
	_ = sess.Close()
	for _, c := range []string{"nope", "echo"} { // an unknown capability; a malformed frame
		raw := []byte(`{"header":{"app_id":"secapp","status":3},"parameter":{"echo":{}},"payload":{"input":{"encoding":"utf8","status":3,"text":"!!notbase64"}}}`)
		r, err := client.Post(t.Context(), asetest.Route(c), raw)
		if err != nil {
			t.Fatal(err)
		}
		if r.Header.Code == 0 {
			t.Fatalf("error path %s answered success: %s", c, r.Raw)
		}
		hay.add("error answers", string(r.Raw))
	}
	wrongSecret := app
	wrongSecret.APISecret = app.APISecret + "x" // close to the secret: must not be echoed either
	if r, err := asetest.New(s.URL(), &wrongSecret).Once(t.Context(), "echo", frame); err != nil || r.HTTPStatus != http.StatusUnauthorized {
		t.Fatalf("a wrong secret: %v %v", err, r)
	} else {
		hay.add("refusal answers", string(r.Raw))
	}

	// Admin changes over gRPC and the API; refusals carrying the tokens.
	s.PushConfig("webgate", "apps.json", apps("2000"))
	st, _, b := httpDo(t, nil, http.MethodPut, consoleBase+"/api/v1/config/files/asf/default/echo/v1/echo.toml", suitetest.AdminToken,
		[]byte(`{"content":"workers = 2\n","comment":"security scenario"}`))
	if st != http.StatusOK {
		t.Fatalf("push over the API: HTTP %d %s", st, b)
	}
	hay.add("API answers", string(b))
	ms := map[string]method{}
	for _, m := range methods(t) {
		ms[m.Full] = m
	}
	cc := dial(t, s.Polaris.GRPCAddr(), s.DialOption("polaris"))
	for name, tok := range map[string]string{"viewer": viewer, "unknown": viewer + "x"} {
		err := invoke(t, cc, ms["/asf.polaris.v1.Config/Push"], adminRPCs["/asf.polaris.v1.Config/Push"], tok)
		if grpcCode(err) != codes.PermissionDenied && grpcCode(err) != codes.Unauthenticated {
			t.Fatalf("push with a %s token: %v", name, err)
		}
		hay.add("gRPC refusals", err.Error())
		st, _, b := httpDo(t, nil, http.MethodPut, consoleBase+"/api/v1/config/files/asf/default/echo/v1/echo.toml", tok, []byte(`{"content":"x"}`))
		if st != http.StatusForbidden && st != http.StatusUnauthorized {
			t.Fatalf("API push with a %s token: HTTP %d", name, st)
		}
		hay.add("API refusals", string(b))
	}
	// A loader certificate reading webgate's apps is refused without seeing them.
	lc := dial(t, s.Polaris.GRPCAddr(), suiteCert(t, s, "lbclient", "polaris"))
	err = invoke(t, lc, ms["/asf.polaris.v1.Config/Get"], &polarispb.GetConfigRequest{Key: &polarispb.ConfigKey{Project: "asf", Group: "default", Service: "webgate", Version: "v1", File: "apps.json"}}, "")
	wantRefused(t, "lbclient reading apps.json", err, codes.PermissionDenied, 10403)
	hay.add("gRPC refusals", fmt.Sprint(err))

	// The apps file through the API: an admin reads its secrets, a viewer never does.
	appsURL := consoleBase + "/api/v1/config/files/asf/default/webgate/v1/apps.json"
	var adminOwned []string
	for _, p := range []string{"", "/history", "/revisions/1", "/diff?from=1&to=2"} {
		st, _, b := httpDo(t, nil, http.MethodGet, appsURL+p, viewer, nil)
		if st != http.StatusOK {
			t.Fatalf("viewer GET apps.json%s: HTTP %d %s", p, st, b)
		}
		hay.add("viewer API reads", string(b))
		st, _, b = httpDo(t, nil, http.MethodGet, appsURL+p, suitetest.AdminToken, nil)
		if st != http.StatusOK {
			t.Fatalf("admin GET apps.json%s: HTTP %d %s", p, st, b)
		}
		adminOwned = append(adminOwned, string(b))
	}
	// The search below is meaningful only if the content travels as text: an admin
	// sees the secret verbatim, a viewer the redaction mark in its place.
	if !strings.Contains(strings.Join(adminOwned, ""), app.APISecret) {
		t.Error("an admin token does not read the apps file it owns as text")
	}
	if v := hay.items["viewer API reads"]; !strings.Contains(v, `\"api_secret\": \"***\"`) && !strings.Contains(v, `\"api_secret\":\"***\"`) {
		t.Errorf("a viewer's read of apps.json shows no redacted api_secret: %.300s", v)
	}
	for _, p := range []string{"/api/v1/services", "/api/v1/services/echo/instances", "/api/v1/consumers", "/api/v1/config/files", "/api/v1/whoami", "/api/v1/tokens"} {
		for _, tok := range []string{suitetest.AdminToken, viewer} {
			_, _, b := httpDo(t, nil, http.MethodGet, consoleBase+p, tok, nil)
			hay.add("API reads", string(b))
		}
	}

	// The console's pages, as an admin and as a viewer.
	fileQ := url.Values{"project": {"asf"}, "group": {"default"}, "service": {"webgate"}, "version": {"v1"}, "file": {"apps.json"}}
	diffQ := url.Values{"project": {"asf"}, "group": {"default"}, "service": {"webgate"}, "version": {"v1"}, "file": {"apps.json"}, "from": {"1"}, "to": {"2"}}
	pages := []string{"/ui/", "/ui/services/echo", "/ui/config", "/ui/config/file?" + fileQ.Encode(), "/ui/config/diff?" + diffQ.Encode(), "/ui/tokens", "/login"}
	for _, who := range []struct {
		name, token string
	}{{"admin", suitetest.AdminToken}, {"viewer", viewer}} {
		c, _ := consoleSession(t, s, who.token)
		for _, p := range pages {
			st, _, b := httpDo(t, c, http.MethodGet, consoleBase+p, "", nil)
			if st != http.StatusOK && !(who.name == "viewer" && p == "/ui/tokens" && st == http.StatusForbidden) {
				t.Errorf("console %s as %s: HTTP %d", p, who.name, st)
			}
			text := string(b) + "\n" + html.UnescapeString(string(b))
			if who.name == "admin" && strings.HasPrefix(p, "/ui/config/") {
				// An admin's page of the apps file shows the api_secrets it owns.
				adminOwned = append(adminOwned, text)
				text = strings.ReplaceAll(text, app.APISecret, "")
				text = strings.ReplaceAll(text, suitetest.DemoApp.APISecret, "")
			}
			hay.add("console "+who.name+" "+p, text)
		}
	}

	if v := hay.items["console viewer /ui/config/file?"+fileQ.Encode()]; !strings.Contains(v, "***") {
		t.Errorf("the viewer's console page of apps.json shows no redaction")
	}

	// Every service's admin port: metrics, probes, debug views, profiles.
	admins := map[string]string{"polaris": s.Polaris.AdminAddr(), "lbclient": s.LB.AdminAddr(), "atom-0": s.Atoms[0].AdminAddr(),
		"webgate": s.Webgate.AdminAddr(), "loader-0": s.Loaders[0].AdminAddr()}
	for name, addr := range admins {
		for _, p := range []string{"/metrics", "/healthz", "/readyz", "/v1/registry", "/v1/config/applied", "/v1/view", "/debug/pprof/"} {
			_, _, b := httpDo(t, nil, http.MethodGet, "http://"+addr+p, "", nil)
			hay.add(name+" admin "+p, string(b))
		}
		if st, _, b := httpDo(t, nil, http.MethodGet, "http://"+addr+"/debug/pprof/cmdline", "", nil); st != http.StatusNotFound {
			t.Errorf("%s serves /debug/pprof/cmdline: HTTP %d %.80s", name, st, b)
		}
	}
	if st, _, _ := httpDo(t, nil, http.MethodGet, "http://"+s.Webgate.AdminAddr()+"/debug/pprof/", "", nil); st != http.StatusOK {
		t.Errorf("webgate with pprof on: /debug/pprof/ HTTP %d", st)
	}
	if st, _, _ := httpDo(t, nil, http.MethodGet, "http://"+s.Atoms[0].AdminAddr()+"/debug/pprof/", "", nil); st != http.StatusNotFound {
		t.Errorf("atom with pprof off (default): /debug/pprof/ HTTP %d", st)
	}
	for name, gathered := range map[string]string{"polaris": "asf_polaris", "webgate": "asf_webgate"} {
		if !strings.Contains(hay.items[name+" admin /metrics"], gathered) {
			t.Errorf("%s /metrics holds no %s metric: scraped the wrong port?", name, gathered)
		}
	}

	// Shut down first, so that the shutdown logs are in too.
	shutdownForLogs(t, s)
	logsMu.Lock()
	for name, l := range logs {
		hay.add("log of "+name, l.String())
		if l.String() == "" {
			t.Errorf("no log captured from %s", name)
		}
	}
	logsMu.Unlock()
	if len(logs) != 5 {
		t.Errorf("captured the logs of %d processes, want 5", len(logs))
	}

	// The needle check.
	names := make([]string, 0, len(hay.items))
	for k := range hay.items {
		names = append(names, k)
	}
	sort.Strings(names)
	total := 0
	for _, where := range names {
		text := hay.items[where]
		total += len(text)
		for what, secret := range secrets {
			if i := strings.Index(text, secret); i >= 0 {
				lo, hi := max(0, i-120), min(len(text), i+len(secret)+40)
				t.Errorf("%s appears in %s: …%s…", what, where, text[lo:hi])
			}
		}
	}
	if total < 50_000 {
		t.Errorf("only %d bytes of logs, metrics and pages searched: the scenario did not run", total)
	}
	t.Logf("%d secrets searched in %d sources, %d KiB", len(secrets), len(names), total/1024)
}

// shutdownForLogs stops the suite's processes now (suitetest's cleanup then finds them
// stopped), so that their shutdown logs are captured before the search.
func shutdownForLogs(t *testing.T, s *suitetest.Suite) {
	t.Helper()
	ctx := t.Context()
	_ = s.Webgate.Shutdown(ctx)
	for _, a := range s.Atoms {
		_ = a.Shutdown(ctx)
	}
	for _, l := range s.Loaders {
		_ = l.Shutdown(ctx)
	}
	_ = s.LB.Shutdown(ctx)
	_ = s.Polaris.Shutdown(ctx)
}
