package suite

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readSchema(t *testing.T, file string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// TestResolvePythonWrapper reads the service id and schema from the wrapper itself.
func TestResolvePythonWrapper(t *testing.T) {
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("no /usr/bin/python3")
	}
	root := repoRoot(t)
	for _, path := range []string{
		filepath.Join(root, "examples", "engines", "python-echo"),
		filepath.Join(root, "examples", "engines", "python-echo", "wrapper.py"),
	} {
		e, err := ResolveEngine(t.Context(), path, EngineOptions{SchemaDir: t.TempDir(), Root: root})
		if err != nil {
			t.Fatal(err)
		}
		if e.Kind != EnginePython || e.Service != "python-echo" || len(e.Notes) != 0 || !strings.HasPrefix(e.SchemaFrom, "Wrapper().schema()") {
			t.Fatalf("%s: %+v", path, e)
		}
		if filepath.Base(e.Schema) != "schema_python-echo.json" || metaString(readSchema(t, e.Schema), "serviceId") != "python-echo" {
			t.Fatalf("schema file %s", e.Schema)
		}
		want := []string{"--engine", "python", "--engine-path", path}
		if !reflect.DeepEqual(e.Loader.Args, want) || e.Loader.Service != "python-echo" {
			t.Fatalf("loader %+v", e.Loader)
		}
		if in := e.Inputs(); len(in) != 1 || in[0] != (Input{Name: "text", DataType: "text", Encoding: "utf8"}) {
			t.Fatalf("inputs %+v", in)
		}
	}
}

// TestResolveBrokenWrapper falls back to the default schema and says why.
func TestResolveBrokenWrapper(t *testing.T) {
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("no /usr/bin/python3")
	}
	dir := filepath.Join(t.TempDir(), "my_engine")
	writeFile(t, filepath.Join(dir, "wrapper.py"), "import no_such_module_here\n")
	e, err := ResolveEngine(t.Context(), dir, EngineOptions{SchemaDir: t.TempDir(), Root: repoRoot(t)})
	if err != nil {
		t.Fatal(err)
	}
	if e.Service != "my_engine" || e.SchemaFrom != "default" || len(e.Notes) != 2 || !strings.Contains(e.Notes[0], "no_such_module_here") {
		t.Fatalf("%+v", e)
	}
	// The loader's --python (a virtualenv's interpreter) also imports the wrapper for its schema.
	e, err = ResolveEngine(t.Context(), dir, EngineOptions{SchemaDir: t.TempDir(), Root: repoRoot(t),
		LoaderArgs: []string{"--workers", "1", "--python", "/nonexistent/venv/bin/python"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Notes) != 2 || !strings.Contains(e.Notes[0], "/nonexistent/venv/bin/python") {
		t.Fatalf("%+v", e)
	}
}

// TestResolveCEngine names a C engine after its file (or directory for libwrapper.so) and
// pushes a permissive schema when none is beside it.
func TestResolveCEngine(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "My Engine")
	for file, svc := range map[string]string{"libtts.so": "tts", "libwrapper.so": "my-engine", "libasr.so.1": "asr"} {
		writeFile(t, filepath.Join(dir, file), "")
		e, err := ResolveEngine(t.Context(), filepath.Join(dir, file), EngineOptions{SchemaDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		if e.Kind != EngineC || e.Service != svc || e.SchemaFrom != "default" || len(e.Notes) != 1 {
			t.Fatalf("%s: %+v", file, e)
		}
		if got := readSchema(t, e.Schema); metaString(got, "route") != "/v1/private/"+svc {
			t.Fatalf("%s: schema %v", file, got)
		}
		if e.Route() != "/v1/private/"+svc || e.Inputs()[0].Name != "input" {
			t.Fatalf("%s: route %s inputs %v", file, e.Route(), e.Inputs())
		}
	}
}

// TestResolveSchemaBeside takes the schema next to the engine, and --engine-service
// re-keys it so that webgate, atom and the loader agree on the new name.
func TestResolveSchemaBeside(t *testing.T) {
	root := repoRoot(t)
	src, err := os.ReadFile(filepath.Join(root, "examples", "engines", "digits", "schema_digits.json"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "schema_digits.json"), string(src))
	writeFile(t, filepath.Join(dir, "libwrapper.so"), "")
	e, err := ResolveEngine(t.Context(), filepath.Join(dir, "libwrapper.so"), EngineOptions{SchemaDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if e.Service != "digits" || e.SchemaFrom != filepath.Join(dir, "schema_digits.json") || len(e.Notes) != 0 {
		t.Fatalf("%+v", e)
	}
	if in := e.Inputs(); len(in) != 1 || in[0] != (Input{Name: "image", DataType: "image", Encoding: "png"}) {
		t.Fatalf("inputs %+v", in)
	}

	e, err = ResolveEngine(t.Context(), filepath.Join(dir, "libwrapper.so"), EngineOptions{Service: "mnist", SchemaDir: t.TempDir(),
		LoaderArgs: []string{"--workers", "1"}})
	if err != nil {
		t.Fatal(err)
	}
	doc := readSchema(t, e.Schema)
	meta := doc["meta"].(map[string]any)
	if e.Service != "mnist" || filepath.Base(e.Schema) != "schema_mnist.json" || meta["serviceId"] != "mnist" ||
		meta["route"] != "/v1/private/mnist" || meta["engine"] != "mnist" || !reflect.DeepEqual(meta["service"], []any{"mnist"}) ||
		meta["mnist"] == nil || meta["digits"] != nil || objectAt(doc, "schemainput", "properties", "parameter", "properties", "mnist") == nil {
		t.Fatalf("re-keyed schema %v", doc)
	}
	if got := e.Loader.Args[len(e.Loader.Args)-2:]; !reflect.DeepEqual(got, []string{"--workers", "1"}) {
		t.Fatalf("loader args %v", e.Loader.Args)
	}
	var req map[string]map[string]any
	if err := json.Unmarshal(e.Request("demo", 3, "x", true), &req); err != nil || req["parameter"]["mnist"] == nil || req["payload"]["image"] == nil {
		t.Fatalf("request %v (%v)", req, err)
	}
}

// TestResolveTOML names the service after the aiges.toml's service section and starts the
// loader with -c and -s in the file's directory.
func TestResolveTOML(t *testing.T) {
	dir := t.TempDir()
	toml := filepath.Join(dir, "aiges.toml")
	writeFile(t, toml, "[ocr] # the service section\nfinder = 0\nport = 5090\n\n[aiges]\nrealTimeRlt = false\n\n[trace]\nhost = \"127.0.0.1\"\nport = 4545\n")
	writeFile(t, filepath.Join(dir, "libwrapper.so"), "")
	e, err := ResolveEngine(t.Context(), toml, EngineOptions{SchemaDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if e.Kind != EngineTOML || e.Service != "ocr" || e.Loader.Dir != dir || !reflect.DeepEqual(e.Loader.Args, []string{"-c", toml, "-s", "ocr"}) {
		t.Fatalf("%+v", e)
	}
	writeFile(t, toml, "[ocr]\nport = 1\n[asr]\nport = 2\n")
	if _, err := ResolveEngine(t.Context(), toml, EngineOptions{SchemaDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "--engine-service") {
		t.Fatalf("two service sections: %v", err)
	}
	if e, err := ResolveEngine(t.Context(), toml, EngineOptions{Service: "asr", SchemaDir: t.TempDir()}); err != nil || e.Service != "asr" {
		t.Fatalf("-s asr: %v %+v", err, e)
	}
}

func TestResolveErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "model.bin"), "")
	for _, path := range []string{filepath.Join(dir, "missing.so"), dir, filepath.Join(dir, "model.bin")} {
		if _, err := ResolveEngine(t.Context(), path, EngineOptions{SchemaDir: t.TempDir()}); err == nil {
			t.Errorf("%s: no error", path)
		}
	}
}

// TestResolveForward: a forward spec (YAML or JSON with upstreams) starts a loader of
// engine kind forward with the schema beside it; other YAML is not an engine.
func TestResolveForward(t *testing.T) {
	spec, err := filepath.Abs("../../examples/forward/upper.yaml")
	if err != nil {
		t.Fatal(err)
	}
	e, err := ResolveEngine(t.Context(), spec, EngineOptions{SchemaDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if e.Kind != EngineForward || e.Service != "upper" || !strings.HasSuffix(e.SchemaFrom, "schema_upper.json") ||
		!reflect.DeepEqual(e.Loader.Args, []string{"--engine", "forward", "--engine-path", spec}) {
		t.Fatalf("%+v", e)
	}
	dir := t.TempDir()
	j := filepath.Join(dir, "relay.json")
	writeFile(t, j, `{"session": {"upstreams": ["ws://127.0.0.1:1/v1/x"]}}`)
	if e, err := ResolveEngine(t.Context(), j, EngineOptions{SchemaDir: t.TempDir()}); err != nil || e.Kind != EngineForward || e.Service != "relay" {
		t.Fatalf("JSON spec: %v %+v", err, e)
	}
	other := filepath.Join(dir, "values.yaml")
	writeFile(t, other, "replicas: 2\n")
	if _, err := ResolveEngine(t.Context(), other, EngineOptions{SchemaDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "forward spec") {
		t.Fatalf("plain YAML: %v", err)
	}
}
