package suite

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/athenaserving/asf/tools/asfbench"
)

// repoRoot is the repository root above the test's directory.
func repoRoot(t *testing.T) string {
	root, err := RepoRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// TestSuiteProcesses builds the five binaries and runs them as separate processes, the
// way `make run` does, then sends the once request that `make run` prints.
func TestSuiteProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every service binary")
	}
	root := repoRoot(t)
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+"/",
		"./services/polaris/cmd/polaris", "./services/lbclient/cmd/lbclient", "./services/loader/cmd/loader",
		"./services/atom/cmd/atom", "./services/webgate/cmd/webgate")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := Start(ctx, Options{BinDir: bin, Loaders: 2, LogDir: t.TempDir(),
		Schemas: []string{filepath.Join(root, "examples", "engines", "digits", "schema_digits.json")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(context.Background()); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	if got := len(s.LoaderAddrs()); got != 2 {
		t.Fatalf("loaders = %d", got)
	}
	body := `{"header":{"app_id":"demo","status":3},"parameter":{"echo":{}},"payload":{"input":{"encoding":"utf8","status":3,"text":"aGVsbG8gYXRoZW5h"}}}`
	app := s.App()
	url, err := asfbench.SignURL(s.WebgateURL()+"/v1/private/echo", http.MethodPost, asfbench.Credentials{APIKey: app.APIKey, APISecret: app.APISecret}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	body = strings.Replace(body, `"app_id":"demo"`, `"app_id":"`+app.AppID+`"`, 1)
	resp, err := http.Post(url, "application/json", bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var r struct {
		Header struct {
			Code int    `json:"code"`
			SID  string `json:"sid"`
		} `json:"header"`
		Payload map[string]map[string]any `json:"payload"`
	}
	if err := json.Unmarshal(b, &r); err != nil || resp.StatusCode != 200 || r.Header.Code != 0 || r.Header.SID == "" {
		t.Fatalf("once: %d %s (%v)", resp.StatusCode, b, err)
	}
	if r.Payload["input"]["text"] != "aGVsbG8gYXRoZW5h" {
		t.Fatalf("echo payload: %s", b)
	}

	// Stop is ordered and clean: every process exits on SIGTERM.
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	for _, p := range s.Procs() {
		t.Errorf("%s still listed after Stop", p.Name)
	}
}
