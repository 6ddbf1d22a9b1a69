package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/testpoll"
	"github.com/athenaserving/asf/tests/suitetest"
	"github.com/athenaserving/asf/tools/asectl/cli"
)

func TestLoginAndContexts(t *testing.T) {
	s := suitetest.Start(t, suitetest.Options{Loaders: 1})
	c := newCtl(t)
	c.fails(cli.ExitError, "asectl login", "svc", "ls") // no context yet: says what to do
	c.fails(cli.ExitError, "unknown or revoked", "login", "--polaris", "http://"+s.Polaris.ConsoleAddr(), "--token", "wrong-token-0123456789")
	c.fails(cli.ExitUsage, "--polaris", "login", "--token", "x")
	c.login(s)
	st, err := os.Stat(c.config)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("contexts file: %v %v", st, err)
	}
	b, _ := os.ReadFile(c.config)
	if !strings.Contains(string(b), suitetest.AdminToken) {
		t.Fatalf("the token is kept in the contexts file:\n%s", b)
	}
	// A second context from the token on stdin; switching and deleting.
	r := c.runIn(t.Context(), suitetest.AdminToken+"\n", "login", "--name", "second", "--polaris", "http://"+s.Polaris.ConsoleAddr(), "--token-file", "-")
	if r.code != 0 {
		t.Fatalf("login from stdin: %+v", r)
	}
	var ls struct {
		Contexts []struct {
			Name    string `json:"name"`
			Current bool   `json:"current"`
		} `json:"contexts"`
	}
	if err := json.Unmarshal([]byte(c.ok("context", "ls", "-o", "json")), &ls); err != nil || len(ls.Contexts) != 2 || !ls.Contexts[1].Current {
		t.Fatalf("context ls: %+v %v", ls, err)
	}
	if out := c.ok("context", "ls"); strings.Contains(out, suitetest.AdminToken) || !strings.Contains(out, "* ") {
		t.Fatalf("context ls shows tokens or no current mark:\n%s", out)
	}
	c.ok("context", "use", "default")
	c.ok("context", "delete", "second")
	c.fails(cli.ExitError, "no context", "context", "use", "second")
	c.ok("context", "set", "--app-id", "a1")
	if out := c.ok("context", "ls", "-o", "yaml"); !strings.Contains(out, "app_id: a1") {
		t.Fatalf("context set: %s", out)
	}
}

func TestServicesAndTop(t *testing.T) {
	s := suitetest.Start(t, suitetest.Options{Loaders: 2})
	c := newCtl(t)
	c.login(s)
	if out := c.ok("svc", "ls"); !strings.Contains(out, "echo") || !strings.Contains(out, "PROVIDERS") {
		t.Fatalf("svc ls:\n%s", out)
	}
	var d struct {
		Instances []struct {
			Instance struct{ Addr, Kind string } `json:"instance"`
			Admin    struct {
				Enabled bool  `json:"enabled"`
				Weight  int32 `json:"weight"`
			} `json:"admin"`
		} `json:"instances"`
	}
	describe := func() {
		t.Helper()
		if err := json.Unmarshal([]byte(c.ok("svc", "describe", "echo", "--kind", "provider", "-o", "json")), &d); err != nil {
			t.Fatal(err)
		}
	}
	describe()
	if len(d.Instances) != 2 {
		t.Fatalf("two loaders, got %+v", d.Instances)
	}
	addr := d.Instances[0].Instance.Addr
	c.ok("svc", "disable", "echo", addr)
	c.ok("svc", "weight", "echo", addr, "50")
	describe()
	for _, i := range d.Instances {
		if i.Instance.Addr == addr && (i.Admin.Enabled || i.Admin.Weight != 50) {
			t.Fatalf("after disable and weight 50: %+v", i)
		}
	}
	testpoll.Until(t, 5*time.Second, "lbclient sees one echo loader", func() bool { return s.LB.Live("echo") == 1 })
	c.ok("svc", "enable", "echo", addr)
	testpoll.Until(t, 5*time.Second, "lbclient sees two echo loaders", func() bool { return s.LB.Live("echo") == 2 })
	c.fails(cli.ExitUsage, "0 to 10000", "svc", "weight", "echo", addr, "20000")
	c.fails(cli.ExitUsage, "accepts 2 arg", "svc", "enable", "echo")

	var top struct {
		Loaders []struct {
			Service string `json:"service"`
			Total   int    `json:"total"`
		} `json:"loaders"`
	}
	if err := json.Unmarshal([]byte(c.ok("top", "--count", "1", "-o", "json")), &top); err != nil || len(top.Loaders) != 2 || top.Loaders[0].Service != "echo" || top.Loaders[0].Total != 10 {
		t.Fatalf("top: %+v %v", top, err)
	}
	if out := c.ok("top", "echo", "--count", "2", "--interval", "10ms"); strings.Count(out, "BUSY") != 2 {
		t.Fatalf("two refreshes:\n%s", out)
	}
}

func TestConfigFiles(t *testing.T) {
	s := suitetest.Start(t, suitetest.Options{Loaders: 1})
	c := newCtl(t)
	c.login(s)
	dir := t.TempDir()
	f1, f2 := filepath.Join(dir, "a1.toml"), filepath.Join(dir, "a2.toml")
	_ = os.WriteFile(f1, []byte("workers = 4\n"), 0o644)
	_ = os.WriteFile(f2, []byte("workers = 8\n"), 0o644)
	const key = "demo/v1/app.toml"
	if out := c.ok("cfg", "push", key, f1, "--comment", "first"); !strings.Contains(out, "revision 1") {
		t.Fatalf("push: %s", out)
	}
	c.ok("cfg", "push", key, f2)
	if r := c.runIn(t.Context(), "workers = 16\n", "cfg", "push", "asf/default/"+key, "-"); r.code != 0 || !strings.Contains(r.out, "revision 3") {
		t.Fatalf("push from stdin: %+v", r)
	}
	if out := c.ok("cfg", "get", key); out != "workers = 16\n" {
		t.Fatalf("get: %q", out)
	}
	if out := c.ok("cfg", "get", key, "--revision", "1"); out != "workers = 4\n" {
		t.Fatalf("get revision 1: %q", out)
	}
	if out := c.ok("cfg", "diff", key); !strings.Contains(out, "-workers = 8") || !strings.Contains(out, "+workers = 16") {
		t.Fatalf("diff:\n%s", out)
	}
	if out := c.ok("cfg", "history", key); !strings.Contains(out, "first") || strings.Count(out, "\n") != 4 {
		t.Fatalf("history:\n%s", out)
	}
	if out := c.ok("cfg", "rollback", key, "1"); !strings.Contains(out, "revision 4") {
		t.Fatalf("rollback: %s", out)
	}
	if out := c.ok("cfg", "get", key); out != "workers = 4\n" {
		t.Fatalf("after rollback: %q", out)
	}
	c.ok("cfg", "gray", key, f2, "--group", "canary")
	if out := c.ok("cfg", "get", key, "--gray", "canary"); out != "workers = 8\n" {
		t.Fatalf("gray: %q", out)
	}
	if out := c.ok("cfg", "get", key); out != "workers = 4\n" {
		t.Fatalf("others keep the current revision: %q", out)
	}
	if out := c.ok("cfg", "ls", "--service", "demo"); !strings.Contains(out, "asf/default/demo/v1/app.toml") || !strings.Contains(out, "canary") {
		t.Fatalf("ls:\n%s", out)
	}
	var y map[string]any
	if out := c.ok("cfg", "get", key, "-o", "yaml"); !strings.Contains(out, "revision: 4") {
		t.Fatalf("yaml: %s %v", out, y)
	}
	c.fails(cli.ExitUsage, "--group", "cfg", "gray", key, f2)
	c.fails(cli.ExitUsage, "service/version/file", "cfg", "get", "a/b")
	c.fails(cli.ExitUsage, "revision number", "cfg", "rollback", key, "x")
	c.fails(cli.ExitError, "10404", "cfg", "get", "demo/v1/missing.toml")
	c.fails(cli.ExitError, "10404", "cfg", "diff", "demo/v1/none")
	c.ok("cfg", "push", "demo/v1/one.toml", f1)
	c.fails(cli.ExitError, "one revision only", "cfg", "diff", "demo/v1/one.toml")
}
