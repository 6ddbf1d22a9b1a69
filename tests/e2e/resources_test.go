package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/athenaserving/asf/services/loader"
	"github.com/athenaserving/asf/services/loader/engine/cabi/cabitest"
	"github.com/athenaserving/asf/services/polaris/resource"
	"github.com/athenaserving/asf/tests/asetest"
	"github.com/athenaserving/asf/tests/suitetest"
)

// resCall sends a once request to capability svc naming resource resID (none when empty).
func resCall(t *testing.T, c *asetest.Client, svc, resID, text string) *asetest.Response {
	t.Helper()
	h := map[string]any{"uid": "u1"}
	if resID != "" {
		h["res_id"] = resID
	}
	r, err := c.Once(t.Context(), svc, asetest.Frame{Status: 3, Header: h, Payload: map[string]asetest.Data{"input": asetest.Text(text)}})
	if err != nil {
		t.Fatalf("once: %v", err)
	}
	return r
}

// resourceLifecycle drives the personalisation scenario through the whole suite:
// used reports what the engine answered for a request naming the uploaded resource.
func resourceLifecycle(t *testing.T, s *suitetest.Suite, svc string, used func(r *asetest.Response) string) {
	c := s.Client()
	key := resource.Key{Service: svc, AppID: suitetest.DemoApp.AppID, ID: "hotwords"}
	mustOK(t, resCall(t, c, svc, "", "plain"), "once without a resource")

	// Unknown resource: an explicit 10166, never a silent miss.
	if r := resCall(t, c, svc, "hotwords", "x"); r.Header.Code != 10166 {
		t.Fatalf("unknown res_id: %s", r.Raw)
	}

	// Upload (the admin API's domain call), then the engine sees it under the psr id.
	if _, err := s.Polaris.Resources().Put(t.Context(), key, []byte("hot words v1")); err != nil {
		t.Fatal(err)
	}
	r := resCall(t, c, svc, "hotwords", "x")
	mustOK(t, r, "once with res_id")
	if got := used(r); got != "hot words v1" {
		t.Fatalf("engine used %q, want the resource: %s", got, r.Raw)
	}
	// Another app's resource with the same id is not visible to this app.
	if _, err := s.Polaris.Resources().Put(t.Context(), resource.Key{Service: svc, AppID: "other-app", ID: "secret"}, []byte("no")); err != nil {
		t.Fatal(err)
	}
	if r := resCall(t, c, svc, "secret", "x"); r.Header.Code != 10166 {
		t.Fatalf("another app's resource: %s", r.Raw)
	}

	// Re-upload: the loader reloads the new revision.
	if _, err := s.Polaris.Resources().Put(t.Context(), key, []byte("hot words v2")); err != nil {
		t.Fatal(err)
	}
	suitetest.WaitFor(t, 10*time.Second, func() bool {
		r := resCall(t, c, svc, "hotwords", "x")
		return r.Header.Code == 0 && used(r) == "hot words v2"
	})

	// Delete: the loader unloads it and the next calls fail with 10166.
	if err := s.Polaris.Resources().Delete(t.Context(), key); err != nil {
		t.Fatal(err)
	}
	suitetest.WaitFor(t, 10*time.Second, func() bool { return resCall(t, c, svc, "hotwords", "x").Header.Code == 10166 })
	if r := resCall(t, c, svc, "hotwords", "x"); r.HTTPStatus == http.StatusOK && r.Header.Code != 10166 {
		t.Fatalf("after delete: %s", r.Raw)
	}
	mustOK(t, resCall(t, c, svc, "", "plain"), "once without a resource after delete")
}

func TestPersonalisationResourcesCEngine(t *testing.T) {
	so := cabitest.BuildEcho(t)
	s := suitetest.Start(t, suitetest.Options{Loaders: 1, Service: "cres", Engine: loader.EngineC,
		Loader: func(_ int, cfg *loader.Config) { cfg.EnginePath = so }})
	resourceLifecycle(t, s, "cres", func(r *asetest.Response) string {
		var v string
		if raw, ok := r.Payload["input"]["res"]; ok {
			v = string(raw)
			if len(v) >= 2 && v[0] == '"' {
				v = v[1 : len(v)-1]
			}
		}
		return v
	})
}

func TestPersonalisationResourcesPythonEngine(t *testing.T) {
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("/usr/bin/python3 not installed")
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("ASF_AIGES_SDK", filepath.Join(wd, "..", "..", "sdk", "python"))
	wrapper := filepath.Join(wd, "testdata", "resecho", "wrapper.py")
	s := suitetest.Start(t, suitetest.Options{Loaders: 1, Service: "pyres", Engine: loader.EnginePython,
		Loader: func(_ int, cfg *loader.Config) { cfg.EnginePath, cfg.Workers = wrapper, 2 }})
	resourceLifecycle(t, s, "pyres", func(r *asetest.Response) string {
		b, err := r.Bytes("input")
		if err != nil {
			return ""
		}
		return string(b)
	})
}
