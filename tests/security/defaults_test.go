package security

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/athenaserving/asf/libs/cfgload"
	"github.com/athenaserving/asf/libs/obs"
	"github.com/athenaserving/asf/services/atom"
	"github.com/athenaserving/asf/services/lbclient"
	"github.com/athenaserving/asf/services/loader"
	"github.com/athenaserving/asf/services/polaris"
	"github.com/athenaserving/asf/services/webgate"
	"github.com/prometheus/client_golang/prometheus"
)

// defaults are every service's DefaultConfig, by its cfgload name.
func defaults() map[string]any {
	return map[string]any{
		"atom": atom.DefaultConfig(), "lbclient": lbclient.DefaultConfig(), "loader": loader.DefaultConfig(),
		"polaris": polaris.DefaultConfig(), "webgate": webgate.DefaultConfig(),
	}
}

// publicListeners listen on every interface by design (docs/operations.md): webgate's
// public port and polaris's console.
var publicListeners = map[string]bool{"webgate http-listen": true, "polaris console-listen": true}

// cfgField is one tagged field of a Config, nested structs included.
type cfgField struct {
	Key    string
	Secret bool
	V      reflect.Value
}

func cfgFields(v reflect.Value) []cfgField {
	var out []cfgField
	for i := 0; i < v.NumField(); i++ {
		sf := v.Type().Field(i)
		if !sf.IsExported() {
			continue
		}
		key := sf.Tag.Get("cfg")
		if key == "" && sf.Type.Kind() == reflect.Struct {
			out = append(out, cfgFields(v.Field(i))...)
			continue
		}
		if key != "" && key != "-" {
			out = append(out, cfgField{Key: key, Secret: sf.Tag.Get("secret") == "true", V: v.Field(i)})
		}
	}
	return out
}

// TestDefaultsBindLoopback: every listener but the two public ones binds to loopback by
// default, pprof is off, and the NATS listener too.
func TestDefaultsBindLoopback(t *testing.T) {
	for svc, cfg := range defaults() {
		listeners := 0
		for _, f := range cfgFields(reflect.ValueOf(cfg)) {
			switch {
			case strings.HasSuffix(f.Key, "-listen"):
				listeners++
				addr := f.V.String()
				if publicListeners[svc+" "+f.Key] {
					continue
				}
				host, _, err := net.SplitHostPort(addr)
				ip := net.ParseIP(host)
				if err != nil || (host != "localhost" && (ip == nil || !ip.IsLoopback())) {
					t.Errorf("%s %s defaults to %q, not a loopback address", svc, f.Key, addr)
				}
			case f.Key == "pprof":
				if f.V.Bool() {
					t.Errorf("%s: pprof is on by default", svc)
				}
			case f.Key == "insecure":
				if f.V.Bool() {
					t.Errorf("%s: insecure is on by default", svc)
				}
			}
		}
		if listeners < 2 {
			t.Errorf("%s: %d listeners found in its Config", svc, listeners)
		}
	}
}

// TestPprofCmdlineNeverServed: /debug/pprof/ only with pprof on, /debug/pprof/cmdline
// never (a command line can hold secrets).
func TestPprofCmdlineNeverServed(t *testing.T) {
	for _, on := range []bool{false, true} {
		a, err := obs.NewAdmin("127.0.0.1:0", prometheus.NewRegistry(), func() bool { return true }, obs.WithPprof(on))
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = a.Serve() }()
		t.Cleanup(func() { _ = a.Shutdown(t.Context()) })
		base := "http://" + a.Addr()
		for _, p := range []string{"/debug/pprof/cmdline", "/debug/pprof/cmdline?debug=1", "/debug/pprof/cmdline/"} {
			if st, _, b := httpDo(t, nil, http.MethodGet, base+p, "", nil); st != http.StatusNotFound {
				t.Errorf("pprof %v: %s answered HTTP %d %.80s", on, p, st, b)
			}
		}
		st, _, _ := httpDo(t, nil, http.MethodGet, base+"/debug/pprof/", "", nil)
		if want := map[bool]int{false: http.StatusNotFound, true: http.StatusOK}[on]; st != want {
			t.Errorf("pprof %v: /debug/pprof/ answered HTTP %d, want %d", on, st, want)
		}
	}
}

// secretLike names config keys that hold a credential by their name.
var secretLike = regexp.MustCompile(`token|secret|password|passwd|credential|demo-app`)

// pathKeys hold a file or directory name, never the secret itself.
var pathKeys = map[string]bool{"tls-key": true, "nats-nkey-seed-file": true, "nats-creds": true, "nats-users": true}

// TestSecretsNotOnlyByFlag: every Config field tagged secret:"true" is a string (so it
// has a "-file" form) and loads from a file (env ASF_<SVC>_<KEY>_FILE, flag and YAML
// <key>-file) and from the environment; every key named like a credential is tagged;
// the logged config masks them.
func TestSecretsNotOnlyByFlag(t *testing.T) {
	secrets := 0
	for svc, def := range defaults() {
		for _, f := range cfgFields(reflect.ValueOf(def)) {
			if !f.Secret {
				if secretLike.MatchString(f.Key) && !pathKeys[f.Key] {
					t.Errorf("%s %s looks like a secret but is not tagged secret:\"true\"", svc, f.Key)
				}
				continue
			}
			secrets++
			if f.V.Kind() != reflect.String {
				t.Errorf("%s %s is secret but a %s: it has no -file form", svc, f.Key, f.V.Kind())
				continue
			}
			want := "s3cr3t-" + svc + "-" + f.Key
			file := filepath.Join(t.TempDir(), "secret")
			if err := os.WriteFile(file, []byte(want+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			yaml := filepath.Join(t.TempDir(), "cfg.yaml")
			if err := os.WriteFile(yaml, []byte(f.Key+"-file: "+file+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			for name, how := range map[string]struct {
				env  map[string]string
				args []string
			}{
				"env _FILE":  {env: map[string]string{cfgload.EnvName(svc, f.Key+"-file"): file}},
				"env":        {env: map[string]string{cfgload.EnvName(svc, f.Key): want}},
				"YAML -file": {env: map[string]string{cfgload.EnvName(svc, "config"): yaml}},
				"flag -file": {args: []string{"--" + f.Key + "-file", file}},
			} {
				cfg := reflect.New(reflect.TypeOf(def))
				cfg.Elem().Set(reflect.ValueOf(def))
				if err := cfgload.Load(svc, how.args, func(k string) string { return how.env[k] }, cfg.Interface()); err != nil {
					t.Errorf("%s %s from %s: %v", svc, f.Key, name, err)
					continue
				}
				got := ""
				for _, g := range cfgFields(cfg.Elem()) {
					if g.Key == f.Key {
						got = g.V.String()
					}
				}
				if got != want {
					t.Errorf("%s %s from %s = %q, want %q", svc, f.Key, name, got, want)
				}
				for k, v := range cfgload.Redacted(cfg.Interface()) {
					if strings.Contains(v, want) {
						t.Errorf("%s: the logged config shows %s in %s", svc, f.Key, k)
					}
				}
			}
		}
	}
	if secrets < 3 {
		t.Errorf("found %d secret fields, want at least polaris admin-token and consul-token and webgate demo-app", secrets)
	}
}
