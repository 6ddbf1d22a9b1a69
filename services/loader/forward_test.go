package loader_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/grpcx"
	loaderpb "github.com/athenaserving/asf/libs/proto/loader/v1"
	"github.com/athenaserving/asf/services/loader"
	"github.com/athenaserving/asf/services/loader/loadertest"
	"github.com/rs/zerolog"
)

// forwardSpec writes a forward spec file and returns its path.
func forwardSpec(t *testing.T, spec string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "forward.yaml")
	if err := os.WriteFile(p, []byte(spec), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// A loader with engine forward serves Loader.Once from the upstream API, and a slow
// upstream holding its one licence slot makes the next call 10110.
func TestForwardEngineKind(t *testing.T) {
	held, release := make(chan struct{}, 1), make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("hold") == "1" {
			held <- struct{}{}
			<-release
		}
		fmt.Fprint(w, `{"answer":"forwarded"}`)
	}))
	defer up.Close()
	spec := forwardSpec(t, fmt.Sprintf(`
upstreams: [%s]
text: plain
request: {mapping: [{data_type: text, rule: [{src: $.header.hold, dst: $.query.hold}]}]}
response: {mapping: [{data_type: text, rule: [{src: $.body.answer, dst: $.payload.result.text}]}]}
`, up.URL))
	s := loadertest.Start(t, func(c *loader.Config) { c.Engine, c.EnginePath, c.Licence = loader.EngineForward, spec, 1 })
	cc, err := grpcx.Dial(s.GRPCAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	c := loaderpb.NewLoaderClient(cc)
	in := func(hold string) *loaderpb.LoaderInput {
		return &loaderpb.LoaderInput{ServiceId: "echo", Status: loaderpb.Status_STATUS_ONCE, Headers: map[string]string{"hold": hold}}
	}
	out, err := c.Once(t.Context(), in("0"))
	if err != nil || len(out.GetPl()) != 1 || string(out.GetPl()[0].GetData()) != "forwarded" {
		t.Fatalf("once: %v %v", err, out)
	}
	done := make(chan error, 1)
	go func() { _, err := c.Once(context.Background(), in("1")); done <- err }()
	<-held
	_, err = c.Once(t.Context(), in("0"))
	if aserr.CodeOf(grpcx.FromStatus(err)) != aserr.ErrLicenceFull.Code {
		t.Fatalf("with the slot held: %v, want 10110", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestForwardEngineRefusedAtStart(t *testing.T) {
	for name, tc := range map[string]struct {
		path, want string
	}{
		"no engine-path": {"", "engine forward needs engine-path"},
		"no file":        {filepath.Join(t.TempDir(), "none.yaml"), "forward spec"},
		"bad rule": {forwardSpec(t, "upstreams: [http://127.0.0.1:1/x]\nresponse: {mapping: [{data_type: text, rule: [{src: $.body.a, dst: $.payload}]}]}\n"),
			"response.mapping[0].rule[0]"},
	} {
		cfg := loadertest.Config()
		cfg.Engine, cfg.EnginePath = loader.EngineForward, tc.path
		s, err := loader.New(cfg, zerolog.Nop(), nil)
		if err == nil {
			_ = s.Shutdown(context.Background())
		}
		var e *aserr.Error
		if !errors.As(err, &e) || e.Code != aserr.ErrInvalidParam.Code || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want 10107 naming %q", name, err, tc.want)
		}
	}
}

// The dry run and the engine workers build their engine without a metrics registry.
func TestForwardEngineWithoutRegistry(t *testing.T) {
	cfg := loadertest.Config()
	cfg.Engine, cfg.EnginePath = loader.EngineForward, forwardSpec(t, "upstreams: [http://127.0.0.1:1/x]\n")
	e, err := loader.NewLocalEngine(cfg, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if e.Name() != loader.EngineForward {
		t.Fatalf("engine %q", e.Name())
	}
}
