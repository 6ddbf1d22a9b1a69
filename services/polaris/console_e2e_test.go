package polaris_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/polarisclient"
	polarispb "github.com/athenaserving/asf/libs/proto/polaris/v1"
	"github.com/athenaserving/asf/libs/testpoll"
	"github.com/rs/zerolog"
)

// chromiumBinary finds headless Chromium (Debian's chromium package; scripts/chromium.sh
// installs it).
func chromiumBinary() string {
	for _, b := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(b); err == nil {
			return p
		}
	}
	return ""
}

// chromium runs headless Chromium with args plus url in a fresh profile and returns stdout.
func chromium(t *testing.T, bin, url string, args ...string) string {
	t.Helper()
	profile, err := os.MkdirTemp("", "polaris-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(profile)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
		"--hide-scrollbars", "--user-data-dir=" + profile, "--window-size=1280,900"}
	cmd := exec.CommandContext(ctx, bin, append(append(base, args...), url)...)
	cmd.Env = append(os.Environ(), "HOME="+profile)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v", args, err)
	}
	return string(out)
}

// artifactDir is where the test leaves its screenshots: $ASF_ARTIFACTS when set.
func artifactDir(t *testing.T) string {
	if d := os.Getenv("ASF_ARTIFACTS"); d != "" {
		d = filepath.Join(d, "polaris-console")
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

func TestConsoleInChromium(t *testing.T) {
	bin := chromiumBinary()
	if bin == "" {
		t.Skip("no chromium binary on PATH: run scripts/chromium.sh (Debian package chromium) to drive the console in a browser")
	}
	srv, logs := startWithLog(t, t.TempDir())
	base := "http://" + srv.ConsoleAddr()
	admin := apiClient{t, base, bootstrapToken(t, logs.String())}

	// An instance registered through the SDK, and a config file pushed twice that the
	// instance applies and reports.
	c, err := polarisclient.DialWith(srv.GRPCAddr(), polarisclient.Options{Caller: &polarispb.Caller{Addr: "127.0.0.1:7001"}, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	reg := c.NewRegistrar(&polarispb.Instance{Service: "echo", Addr: "127.0.0.1:7001", Version: "1.0", Kind: "provider"}, 200*time.Millisecond,
		func() *polarispb.Load { return &polarispb.Load{Total: 8, Best: 8, Idle: 6, Live: 1} }, zerolog.Nop())
	run := func(fn func(ctx context.Context) error) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = fn(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	run(reg.Run)
	<-reg.Registered()
	admin.do("PUT", fileURL, map[string]string{"content": "workers = 4\nlog = \"info\"\ntimeout = \"3s\"\n", "comment": "first"}, nil)
	admin.do("PUT", fileURL, map[string]string{"content": "workers = 8\nlog = \"info\"\ntimeout = \"3s\"\nretry = 2\n", "comment": "more workers"}, nil)
	key := &polarispb.ConfigKey{Project: "asf", Group: "default", Service: "echo", Version: "1", File: "echo.toml"}
	run(func(ctx context.Context) error {
		return c.WatchConfig(ctx, key, false, func(*polarispb.ConfigFile) error { return nil })
	})
	testpoll.Until(t, 5*time.Second, "the condition", func() bool {
		a := srv.ConfigCenter().Applied(configKeyOf("asf", "default", "echo", "1", "echo.toml"))
		return len(a) == 1 && a[0].Revision == 2
	})

	link := func(next string) string {
		var l struct{ URL string }
		admin.do("POST", "/api/v1/login-links", nil, &l)
		return base + l.URL + "&next=" + next
	}
	fileQ := "/ui/config/file%3Fproject%3Dasf%26group%3Ddefault%26service%3Decho%26version%3D1%26file%3Decho.toml"

	dom := chromium(t, bin, link("/ui/services/echo"), "--dump-dom")
	for _, want := range []string{"127.0.0.1:7001", "enabled", ">8<", ">6<", "Disable"} {
		if !strings.Contains(dom, want) {
			t.Errorf("service page lacks %q", want)
		}
	}
	dom = chromium(t, bin, link(fileQ), "--dump-dom")
	for _, want := range []string{"r1", "r2", "more workers", "diff r1→r2", "Roll back to r1", "127.0.0.1:7001", "applied"} {
		if !strings.Contains(dom, want) {
			t.Errorf("file page lacks %q", want)
		}
	}
	diffQ := strings.Replace(fileQ, "/ui/config/file", "/ui/config/diff", 1) + "%26from%3D1%26to%3D2"
	dom = chromium(t, bin, link(diffQ), "--dump-dom")
	for _, want := range []string{"- workers = 4", "+ workers = 8", "+ retry = 2", "+2", "-1"} {
		if !strings.Contains(dom, want) {
			t.Errorf("diff page lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("last DOM:\n%s", dom)
		return
	}

	out := artifactDir(t)
	for name, next := range map[string]string{"console-file.png": fileQ, "console-diff.png": diffQ} {
		shot := filepath.Join(out, name)
		chromium(t, bin, link(next), "--screenshot="+shot)
		if fi, err := os.Stat(shot); err != nil || fi.Size() < 5000 {
			t.Fatalf("screenshot %s: %v", shot, err)
		}
		t.Logf("screenshot: %s", shot)
	}
}
