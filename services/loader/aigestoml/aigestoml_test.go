package aigestoml

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/rs/zerolog"
)

func ptr[T any](v T) *T { return &v }

// engineDir returns a fresh directory holding the named (empty) files.
func engineDir(t *testing.T, files ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range files {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

// warned returns "section:key" for every key the warnings name, split by kind.
func warned(ws []Warning) (noEffect, unknown []string) {
	for _, w := range ws {
		for _, k := range w.Keys {
			s := w.Section + ":" + k
			if w.Unknown {
				unknown = append(unknown, s)
			} else {
				noEffect = append(noEffect, s)
			}
		}
	}
	return noEffect, unknown
}

var sampleWrapper = map[string]string{
	"common.lic": "10",
	"resource./msp/resource/sms/acmod_16KPowerFlt_sms_RNN.bin": "HMM_16K",
	"resource./msp/resource/sms/wfst.bin":                      "WFST",
}

func TestSamples(t *testing.T) {
	cDir := engineDir(t, LibWrapper)
	pyDir := engineDir(t, "wrapper/"+WrapperPy)
	withLevel := func(m map[string]string, lvl string) map[string]string {
		out := map[string]string{"log.level": lvl}
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	cases := []struct {
		name, file, svc, workDir string
		getenv                   func(string) string
		want                     Settings
		noEffect                 []string // a selection of the keys that must be warned as no effect
		unknown                  []string
	}{
		{
			name: "xfyun-aiges-c", file: "aiges.toml", svc: "svcName", workDir: cDir, getenv: env(),
			want: Settings{
				GRPCListen: ptr("0.0.0.0:5090"), Licence: ptr(1000), SessionIdleTTL: ptr(10 * time.Second),
				Engine: ptr(EngineC), EnginePath: ptr(filepath.Join(cDir, LibWrapper)),
				EngineConfig: withLevel(sampleWrapper, "debug"), Async: ptr(true), RealtimeResult: ptr(true), LogLevel: ptr("error"),
			},
			noEffect: []string{"svcName:finder", "svcName:http_listen", "aiges:gesMock", "aiges:sessMode", "aiges:numaNode",
				"aiges:sub", "aiges:pythonPluginCmd", "fc:able", "fc:best", "fc:roll", "fc:strategy", "fc:router", "fc:tasksize",
				"log:file", "log:size", "elog:elogRemote", "lbv2:lbname", "trace:host", "sonar:able", "ws:readTimeout", "auth:meterCtrl"},
		},
		{
			name: "xfyun-aiges-python", file: "aiges.toml", svc: "svcName", workDir: pyDir, getenv: env(EnvPluginMode, "python"),
			want: Settings{
				GRPCListen: ptr("0.0.0.0:5090"), Licence: ptr(1000), SessionIdleTTL: ptr(10 * time.Second),
				Engine: ptr(EnginePython), EnginePath: ptr(filepath.Join(pyDir, "wrapper", WrapperPy)),
				Python:       ptr("/opt/conda/envs/aiges-python/bin/python"),
				EngineConfig: withLevel(sampleWrapper, "debug"), Async: ptr(true), RealtimeResult: ptr(true), LogLevel: ptr("error"),
			},
			noEffect: []string{"aiges:gesMock", "fc:best"},
		},
		{
			name: "iflytek-aiges_python", file: "aiges_python.toml", svc: "svcName", workDir: pyDir, getenv: env(),
			want: Settings{
				GRPCListen: ptr("127.0.0.1:5090"), Licence: ptr(10), SessionIdleTTL: ptr(10 * time.Second),
				Engine: ptr(EnginePython), EnginePath: ptr(filepath.Join(pyDir, "wrapper", WrapperPy)),
				EngineConfig: withLevel(sampleWrapper, "info"), Async: ptr(true), RealtimeResult: ptr(false), LogLevel: ptr("info"),
			},
			noEffect: []string{"aiges:headerPass", "aiges:sessMode", "log:async", "fc:best"},
		},
		{
			name: "atheloader", file: "atheloader.toml", svc: "svcname", workDir: cDir, getenv: env(),
			want: Settings{
				GRPCListen: ptr(":0"), Licence: ptr(10), SessionIdleTTL: ptr(10 * time.Second), HeartbeatInterval: ptr(500 * time.Millisecond),
				Engine: ptr(EngineC), EnginePath: ptr(filepath.Join(cDir, LibWrapper)),
				EngineConfig:   map[string]string{"common.lic": "10", "resource.hmm": "HMM_16K", "resource.wfst": "WFST"},
				RealtimeResult: ptr(false), LogLevel: ptr("warn"),
			},
			noEffect: []string{"aiges:libCodec", "aiges:gesMock", "svcname:finder"},
		},
		{
			name: "usrcfg", file: "usrcfg/aiges.toml", svc: "asr", workDir: cDir, getenv: env(),
			want: Settings{
				GRPCListen: ptr(":6000"), Licence: ptr(4),
				Engine: ptr(EngineC), EnginePath: ptr(filepath.Join(cDir, LibWrapper)),
				EngineConfig: map[string]string{"common.lic": "10", "common.debug": "true", "common.ratio": "0.5",
					"resource.hmm": "HMM_16K", "resource.wfst.bin": "WFST"},
			},
			noEffect: []string{"wrapper:ignored"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := Load(filepath.Join("testdata", c.file), Options{Service: c.svc, WorkDir: c.workDir, Getenv: c.getenv})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(res.Settings, c.want) {
				g, _ := json.Marshal(res.Settings)
				w, _ := json.Marshal(c.want)
				t.Fatalf("settings\n got %s\nwant %s", g, w)
			}
			none, unknown := warned(res.Warnings)
			for _, k := range c.noEffect {
				if !slices.Contains(none, k) {
					t.Errorf("%s not warned as no effect (warned: %v)", k, none)
				}
			}
			if !slices.Equal(unknown, c.unknown) {
				t.Errorf("unknown = %v, want %v", unknown, c.unknown)
			}
		})
	}
}

// TestMappings checks each mapping on its own, from a minimal file.
func TestMappings(t *testing.T) {
	dir := engineDir(t, LibWrapper)
	cases := []struct {
		name, toml string
		check      func(Settings) bool
	}{
		{"fc.max → licence", "[fc]\nmax = 7", func(s Settings) bool { return *s.Licence == 7 }},
		{"fc.max as string", "[fc]\nmax = \"7\"", func(s Settings) bool { return *s.Licence == 7 }},
		{"fc.ttl ms → session-idle-ttl", "[fc]\nttl = 2500", func(s Settings) bool { return *s.SessionIdleTTL == 2500*time.Millisecond }},
		{"fc.report ms → heartbeat-interval", "[fc]\nreport = 1000", func(s Settings) bool { return *s.HeartbeatInterval == time.Second }},
		{"[svc] host+port → grpc-listen", "[svc]\nhost = \"10.0.0.1\"\nport = 5090", func(s Settings) bool { return *s.GRPCListen == "10.0.0.1:5090" }},
		{"[svc] port as string", "[svc]\nport = \"5091\"", func(s Settings) bool { return *s.GRPCListen == ":5091" }},
		{"[svc] no port: random", "[svc]\nhost = \"127.0.0.1\"", func(s Settings) bool { return *s.GRPCListen == "127.0.0.1:0" }},
		{"no [svc]: listen unchanged", "[fc]\nmax = 1", func(s Settings) bool { return s.GRPCListen == nil }},
		{"section matched without case", "[SVC]\nport = 1", func(s Settings) bool { return *s.GRPCListen == ":1" }},
		{"asyncMode → async", "[aiges]\nasyncMode = true", func(s Settings) bool { return *s.Async }},
		{"asyncMode 0", "[aiges]\nasyncMode = 0", func(s Settings) bool { return !*s.Async }},
		{"asyncMode absent: unset", "[aiges]\nsub = \"x\"", func(s Settings) bool { return s.Async == nil }},
		{"realTimeRlt → realtime-result", "[aiges]\nrealTimeRlt = false", func(s Settings) bool { return !*s.RealtimeResult }},
		{"realTimeRlt \"1\"", "[aiges]\nrealTimeRlt = \"1\"", func(s Settings) bool { return *s.RealtimeResult }},
		{"[log] level", "[log]\nlevel = \"DEBUG\"", func(s Settings) bool { return *s.LogLevel == "debug" }},
		{"[log] level fatal", "[log]\nlevel = \"fatal\"", func(s Settings) bool { return *s.LogLevel == "error" }},
		{"[wrapper] values as strings", "[wrapper]\nn = 3\nf = 1.25\nb = false\ns = \"x\"", func(s Settings) bool {
			return reflect.DeepEqual(s.EngineConfig, map[string]string{"n": "3", "f": "1.25", "b": "false", "s": "x"})
		}},
		{"[wrapper] dotted keys flattened", "[wrapper]\ncommon.lic = 10", func(s Settings) bool { return s.EngineConfig["common.lic"] == "10" }},
		{"empty [wrapper]: unset", "[wrapper]\n", func(s Settings) bool { return s.EngineConfig == nil }},
		{"c engine found", "", func(s Settings) bool {
			return *s.Engine == EngineC && *s.EnginePath == filepath.Join(dir, LibWrapper) && s.Python == nil
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := Parse("aiges.toml", []byte(c.toml), Options{Service: "svc", WorkDir: dir})
			if err != nil {
				t.Fatal(err)
			}
			if !c.check(res.Settings) {
				g, _ := json.Marshal(res.Settings)
				t.Fatalf("settings %s", g)
			}
		})
	}
}

func TestEngineDiscovery(t *testing.T) {
	cOnly := engineDir(t, LibWrapper)
	pyOnly := engineDir(t, WrapperPy)
	both := engineDir(t, LibWrapper, "wrapper/"+WrapperPy)
	libDir := engineDir(t, "lib/"+LibWrapper)
	pyPath := engineDir(t, "src/"+WrapperPy)
	empty := t.TempDir()
	cases := []struct {
		name, workDir, toml string
		getenv              func(string) string
		engine, path        string
		async               *bool
		python              *string
		warn                string // a warning message must contain this
	}{
		{name: "libwrapper.so in the working dir", workDir: cOnly, getenv: env(), engine: EngineC, path: filepath.Join(cOnly, LibWrapper)},
		{name: "wrapper.py only: python", workDir: pyOnly, getenv: env(), engine: EnginePython, path: filepath.Join(pyOnly, WrapperPy), async: ptr(true)},
		{name: "both: c by default", workDir: both, getenv: env(), engine: EngineC, path: filepath.Join(both, LibWrapper)},
		{name: "both: AIGES_PLUGIN_MODE=python", workDir: both, getenv: env(EnvPluginMode, "python"), engine: EnginePython,
			path: filepath.Join(both, "wrapper", WrapperPy), async: ptr(true)},
		{name: "LD_LIBRARY_PATH, relative entry", workDir: libDir, getenv: env(EnvLibPath, "lib"), engine: EngineC, path: filepath.Join(libDir, "lib", LibWrapper)},
		{name: "PYTHONPATH", workDir: empty, getenv: env(EnvPluginMode, "python", EnvPythonPath, filepath.Join(pyPath, "src")),
			engine: EnginePython, path: filepath.Join(pyPath, "src", WrapperPy), async: ptr(true)},
		{name: "nothing found: c in the working dir", workDir: empty, getenv: env(), engine: EngineC, path: filepath.Join(empty, LibWrapper), warn: "no libwrapper.so found"},
		{name: "python forces async", workDir: pyOnly, toml: "[aiges]\nasyncMode = false", getenv: env(), engine: EnginePython,
			path: filepath.Join(pyOnly, WrapperPy), async: ptr(true), warn: "AIGES runs python engines in async mode"},
		{name: "pythonPluginCmd: interpreter", workDir: pyOnly, toml: "[aiges]\npythonPluginCmd = \"/venv/bin/python3 -m aiges.serve\"", getenv: env(),
			engine: EnginePython, path: filepath.Join(pyOnly, WrapperPy), async: ptr(true), python: ptr("/venv/bin/python3"), warn: "only the interpreter"},
		{name: "pythonPluginCmd without python: no effect", workDir: cOnly, toml: "[aiges]\npythonPluginCmd = \"python3\"", getenv: env(),
			engine: EngineC, path: filepath.Join(cOnly, LibWrapper), warn: "no effect for a c engine"},
		{name: "c keeps asyncMode", workDir: cOnly, toml: "[aiges]\nasyncMode = false", getenv: env(), engine: EngineC, path: filepath.Join(cOnly, LibWrapper), async: ptr(false)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := Parse(filepath.Join(t.TempDir(), "aiges.toml"), []byte(c.toml), Options{WorkDir: c.workDir, Getenv: c.getenv})
			if err != nil {
				t.Fatal(err)
			}
			s := res.Settings
			if *s.Engine != c.engine || *s.EnginePath != c.path || !reflect.DeepEqual(s.Async, c.async) || !reflect.DeepEqual(s.Python, c.python) {
				g, _ := json.Marshal(s)
				t.Fatalf("settings %s", g)
			}
			if c.warn != "" && !slices.ContainsFunc(res.Warnings, func(w Warning) bool { return strings.Contains(w.Msg, c.warn) }) {
				t.Fatalf("no warning containing %q in %+v", c.warn, res.Warnings)
			}
		})
	}
	if _, err := Parse("aiges.toml", nil, Options{WorkDir: cOnly, Getenv: env(EnvPluginMode, "go")}); !errors.Is(err, ErrFile) || !strings.Contains(err.Error(), EnvPluginMode) {
		t.Fatalf("AIGES_PLUGIN_MODE=go: %v", err)
	}
}

func TestWarningsLoggedOnce(t *testing.T) {
	var buf bytes.Buffer
	res, err := Load("testdata/aiges_python.toml", Options{Service: "svcName", WorkDir: engineDir(t, WrapperPy)})
	if err != nil {
		t.Fatal(err)
	}
	res.Log(zerolog.New(&buf))
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		lines = append(lines, m)
	}
	count := map[string]int{}
	for _, m := range lines {
		if m["level"] != "warn" || m["file"] != "testdata/aiges_python.toml" {
			t.Fatalf("line %v", m)
		}
		keys, _ := m["keys"].([]any)
		for _, k := range keys {
			count[m["section"].(string)+":"+k.(string)]++
		}
	}
	for _, k := range []string{"aiges:headerPass", "aiges:gesMock", "fc:best", "fc:able", "elog:elogHost", "lbv2:taddrs", "log:file", "svcName:finder"} {
		if count[k] != 1 {
			t.Errorf("%s logged %d times, want once", k, count[k])
		}
	}
	for _, k := range []string{"fc:max", "fc:ttl", "aiges:realTimeRlt", "log:level", "svcName:port"} {
		if count[k] != 0 {
			t.Errorf("%s has an effect but was warned", k)
		}
	}

	buf.Reset()
	res, err = Parse("x.toml", []byte("top = 1\n[aiges]\nrealTimeRIt = false\n[fcc]\nmax = 1\n"), Options{WorkDir: engineDir(t, LibWrapper)})
	if err != nil {
		t.Fatal(err)
	}
	res.Log(zerolog.New(&buf))
	for _, want := range []string{`"keys":["realTimeRIt"],"unknown":true`, `"section":"fcc","keys":["max"],"unknown":true`, `"keys":["top"],"unknown":true`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, buf.String())
		}
	}
}

func TestMalformed(t *testing.T) {
	dir := engineDir(t, LibWrapper)
	if err := os.WriteFile(filepath.Join(dir, "bad-usr.toml"), []byte("[a]\nk = 1\nk = 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, toml, want string }{
		{"syntax", "[fc]\nmax = 10\nttl = \n", "aiges.toml:3:"},
		{"bad section name", "[aiges]\nsub = \"x\"\n[fc x]\nmax = 1\n", "aiges.toml:3:"},
		{"duplicate key", "[fc]\nmax = 1\nmax = 2\n", "aiges.toml:3:"},
		{"max not a number", "[svc]\nport = 1\n\n[fc]\nmax = \"ten\"\n", "aiges.toml:5: [fc] max"},
		{"max zero", "[fc]\nmax = 0\n", "aiges.toml:2: [fc] max"},
		{"ttl negative", "[fc]\n\nttl = -5\n", "aiges.toml:3: [fc] ttl"},
		{"port out of range", "[svc]\nhost = \"h\"\nport = 70000\n", "aiges.toml:3: [svc] port"},
		{"host not a string", "[svc]\nhost = 1\n", "aiges.toml:2: [svc] host"},
		{"asyncMode not a bool", "[aiges]\nasyncMode = \"maybe\"\n", "aiges.toml:2: [aiges] asyncMode"},
		{"unknown log level", "[log]\nlevel = \"loud\"\n", "aiges.toml:2: [log] level"},
		{"wrapper array", "[wrapper]\na = 1\nlist = [1, 2]\n", "aiges.toml:3: [wrapper] list"},
		{"usrCfg missing", "[aiges]\nusrCfg = \"nope.toml\"\n", "aiges.toml:2: [aiges] usrCfg"},
		{"usrCfg malformed", "[aiges]\nusrCfg = \"bad-usr.toml\"\n", "bad-usr.toml:3:"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(filepath.Join(dir, "aiges.toml"), []byte(c.toml), Options{Service: "svc", WorkDir: dir})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to contain %q", err, c.want)
			}
			if aserr.CodeOf(err) != 10107 {
				t.Fatalf("code %d, want 10107", aserr.CodeOf(err))
			}
		})
	}
	if _, err := Load(filepath.Join(dir, "missing.toml"), Options{}); err == nil || !strings.Contains(err.Error(), "missing.toml") {
		t.Fatalf("missing file: %v", err)
	}
}

func TestSplitArgs(t *testing.T) {
	cases := []struct {
		args []string
		want Flags
		rest []string
	}{
		{[]string{"-m", "0", "-c", "aiges.toml", "-s", "svcName"}, Flags{Mode: "0", Config: "aiges.toml", Service: "svcName"}, []string{}},
		{[]string{"-m=1", "--c=a.toml", "--s", "x", "-p", "proj", "-g=grp", "-u", "http://c"}, Flags{Mode: "1", Config: "a.toml", Service: "x", Project: "proj", Group: "grp", URL: "http://c"}, []string{}},
		{[]string{"--licence", "4", "-c", "a.toml", "--async", "-config=l.yaml"}, Flags{Config: "a.toml"}, []string{"--licence", "4", "--async", "-config=l.yaml"}},
		{[]string{"-c", "a.toml", "--", "-s", "x"}, Flags{Config: "a.toml"}, []string{"--", "-s", "x"}},
		{[]string{"-", "--help"}, Flags{}, []string{"-", "--help"}},
	}
	for _, c := range cases {
		f, rest, err := SplitArgs(c.args)
		if err != nil || f != c.want || !slices.Equal(rest, c.rest) {
			t.Errorf("SplitArgs(%q) = %+v, %q, %v; want %+v, %q", c.args, f, rest, err, c.want, c.rest)
		}
	}
	if _, _, err := SplitArgs([]string{"--licence", "1", "-c"}); err == nil || !strings.Contains(err.Error(), "-c") {
		t.Fatalf("missing value: %v", err)
	}
	ws := Flags{Mode: "1", Project: "p", URL: "u"}.Warnings()
	if len(ws) != 2 || ws[0].Keys[0] != "-m" || !slices.Equal(ws[1].Keys, []string{"-p", "-u"}) {
		t.Fatalf("warnings %+v", ws)
	}
	if ws := (Flags{Mode: "0", Config: "a", Service: "s"}).Warnings(); len(ws) != 0 {
		t.Fatalf("native mode warned: %+v", ws)
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"aiges.toml", "aiges_python.toml", "atheloader.toml", "usrcfg/aiges.toml"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("[fc]\nmax = \"1\"\n[svc]\nport = 1\n[wrapper]\na.b.c = 1.5\n"))
	f.Add([]byte("[aiges]\nusrCfg = \"x\"\n"))
	dir := f.TempDir()
	noFile := func(string) ([]byte, error) { return nil, os.ErrNotExist }
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := Parse(filepath.Join(dir, "aiges.toml"), data, Options{Service: "svc", WorkDir: dir, ReadFile: noFile})
		if err != nil {
			if aserr.CodeOf(err) != 10107 && !strings.Contains(err.Error(), "aiges.toml") {
				t.Fatalf("error without code or file: %v", err)
			}
			return
		}
		s := res.Settings
		if s.Engine == nil || s.EnginePath == nil {
			t.Fatal("no engine decided")
		}
		if s.Licence != nil && *s.Licence < 1 {
			t.Fatalf("licence %d", *s.Licence)
		}
		if s.SessionIdleTTL != nil && *s.SessionIdleTTL <= 0 {
			t.Fatalf("ttl %v", *s.SessionIdleTTL)
		}
		res.Log(zerolog.Nop())
	})
}

func FuzzSplitArgs(f *testing.F) {
	f.Add("-m 0 -c aiges.toml -s svcName --licence 3")
	f.Add("--c=x -- -s y")
	f.Fuzz(func(t *testing.T, line string) {
		args := strings.Fields(line)
		fl, rest, err := SplitArgs(args)
		if err != nil {
			return
		}
		if len(rest) > len(args) {
			t.Fatalf("rest %q longer than args %q", rest, args)
		}
		_ = fl.Warnings()
	})
}
