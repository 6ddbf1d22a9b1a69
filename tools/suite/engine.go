package suite

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Engine kinds ResolveEngine recognises.
const (
	EngineC      = "c"      // an AIGES libwrapper.so
	EnginePython = "python" // a wrapper.py on the aiges SDK
	EngineTOML   = "toml"   // an AIGES aiges.toml, started with loader -c FILE -s SERVICE
	// EngineForward is a forward spec (YAML or JSON with "upstreams" or "session"): the
	// capability is served by a third-party API through a loader of engine kind forward.
	EngineForward = "forward"
)

// EngineOptions tune ResolveEngine.
type EngineOptions struct {
	// Service overrides the service name (the capability id).
	Service string
	// LoaderArgs are extra loader flags (--engine-config k=v, --workers N, ...).
	LoaderArgs []string
	// SchemaDir receives generated or re-keyed schema files (schema_<service>.json).
	SchemaDir string
	// Python is the interpreter that imports a wrapper.py to read Wrapper().schema()
	// (default: the --python of LoaderArgs, else /usr/bin/python3, as the loader).
	Python string
	// SDK is the directory holding the aiges package (default: $ASF_AIGES_SDK, else
	// sdk/python above Root or the working directory).
	SDK string
	// Root is where the SDK search starts (the repository; default: the working directory).
	Root string
}

// UserEngine is a user's engine ready to start beside the suite: its loader, the schema
// pushed for it, and what was inferred.
type UserEngine struct {
	// Path is the engine as given, Kind one of EngineC, EnginePython, EngineTOML.
	Path, Kind string
	// Service is the loader's service name and the capability id.
	Service string
	// Loader is the loader process to start (Suite Options.Extra).
	Loader Loader
	// Schema is the schema file to push (schema_<Service>.json); SchemaFrom says where
	// its content came from.
	Schema, SchemaFrom string
	// Notes are things the user should know (a default schema, a failed schema import).
	Notes []string
	// Doc is the parsed schema document.
	Doc map[string]any
}

// wrapperBaseServiceID is the aiges SDK's WrapperBase.serviceId: a wrapper that keeps it
// has not named its service.
const wrapperBaseServiceID = "wrapper"

// ResolveEngine inspects path — a C engine .so, a directory holding wrapper.py, a
// wrapper.py, or an aiges.toml — and returns the loader to start for it and the schema
// to publish: a schema_*.json beside the engine, else (Python) Wrapper().schema(), else a
// permissive default schema without inputs or validation. The service name comes from
// o.Service, else the aiges.toml service section, the schema's serviceId, the wrapper's
// serviceId, else the file or directory name.
func ResolveEngine(ctx context.Context, path string, o EngineOptions) (*UserEngine, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("engine %s: %w", path, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("engine %s: %w", path, err)
	}
	e := &UserEngine{Path: path}
	dir := filepath.Dir(abs)
	var nameHint string
	switch {
	case st.IsDir():
		if _, err := os.Stat(filepath.Join(abs, "wrapper.py")); err != nil {
			return nil, fmt.Errorf("engine %s: a directory without wrapper.py (want a .so, a wrapper.py or its directory, or an aiges.toml)", path)
		}
		e.Kind, dir, nameHint = EnginePython, abs, filepath.Base(abs)
	case strings.HasSuffix(abs, ".so") || strings.Contains(filepath.Base(abs), ".so."):
		e.Kind = EngineC
		nameHint = strings.TrimPrefix(strings.SplitN(filepath.Base(abs), ".so", 2)[0], "lib")
		if nameHint == "wrapper" {
			nameHint = filepath.Base(dir)
		}
	case strings.HasSuffix(abs, ".py"):
		e.Kind = EnginePython
		nameHint = strings.TrimSuffix(filepath.Base(abs), ".py")
		if nameHint == "wrapper" {
			nameHint = filepath.Base(dir)
		}
	case strings.HasSuffix(abs, ".toml"):
		e.Kind = EngineTOML
		nameHint = filepath.Base(dir)
	case isForwardSpec(abs):
		e.Kind = EngineForward
		nameHint = strings.TrimSuffix(filepath.Base(abs), filepath.Ext(abs))
	default:
		return nil, fmt.Errorf("engine %s: not a .so, a wrapper.py or its directory, an aiges.toml, or a forward spec", path)
	}

	svc := o.Service
	if svc == "" && e.Kind == EngineTOML {
		if svc, err = tomlService(abs); err != nil {
			return nil, fmt.Errorf("engine %s: %w", path, err)
		}
	}
	// The schema: a file beside the engine, else the wrapper's own, else a default.
	src, doc, err := schemaBeside(dir, svc)
	if err != nil {
		return nil, fmt.Errorf("engine %s: %w", path, err)
	}
	if doc != nil {
		e.SchemaFrom = src
	} else if pyWrapper := pythonWrapper(e.Kind, abs, dir); pyWrapper != "" {
		doc, err = wrapperSchema(ctx, pyWrapper, o)
		switch {
		case err != nil:
			e.Notes = append(e.Notes, fmt.Sprintf("Wrapper().schema() of %s failed, pushed a permissive default schema: %v", pyWrapper, err))
		case metaString(doc, "serviceId") == wrapperBaseServiceID:
			// The SDK's default id: the wrapper did not name its service.
			e.SchemaFrom = "Wrapper().schema() of " + pyWrapper
		default:
			e.SchemaFrom = "Wrapper().schema() of " + pyWrapper
			if svc == "" {
				svc = metaString(doc, "serviceId")
			}
		}
	}
	if svc == "" && doc != nil && e.SchemaFrom == src {
		svc = metaString(doc, "serviceId")
	}
	if svc == "" {
		svc = serviceName(nameHint)
	}
	if svc == "" {
		return nil, fmt.Errorf("engine %s: no service name: give one with --engine-service", path)
	}
	if doc == nil {
		doc = defaultSchema(svc)
		e.SchemaFrom = "default"
		e.Notes = append(e.Notes, fmt.Sprintf("no schema_*.json beside %s: pushed a permissive default schema (no declared inputs, no request validation); put a schema_%s.json there to declare them", path, svc))
	}
	rekey(doc, svc)
	e.Service, e.Doc = svc, doc

	if o.SchemaDir == "" {
		return nil, errors.New("engine: no schema directory")
	}
	if err := os.MkdirAll(o.SchemaDir, 0o755); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	e.Schema = filepath.Join(o.SchemaDir, "schema_"+svc+".json")
	if err := os.WriteFile(e.Schema, append(b, '\n'), 0o644); err != nil {
		return nil, err
	}

	e.Loader = Loader{Name: "loader-" + svc, Service: svc}
	switch e.Kind {
	case EngineC:
		e.Loader.Args = []string{"--engine", "c", "--engine-path", abs}
	case EnginePython:
		e.Loader.Args = []string{"--engine", "python", "--engine-path", abs}
	case EngineTOML:
		e.Loader.Args = []string{"-c", abs, "-s", svc}
		e.Loader.Dir = dir
	case EngineForward:
		e.Loader.Args = []string{"--engine", "forward", "--engine-path", abs}
	}
	e.Loader.Args = append(e.Loader.Args, o.LoaderArgs...)
	return e, nil
}

// isForwardSpec reports whether path is a forward engine's spec: a .yaml, .yml or .json
// file whose top level has "upstreams" or "session" (docs/protocol.md, "Forwarding to a
// third-party API").
func isForwardSpec(path string) bool {
	switch filepath.Ext(path) {
	case ".yaml", ".yml", ".json":
	default:
		return false
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	var top map[string]any
	if yaml.Unmarshal(b, &top) != nil { // YAML 1.2 reads JSON too
		return false
	}
	_, up := top["upstreams"]
	_, sess := top["session"]
	return up || sess
}

// pythonWrapper returns the wrapper.py of a Python engine or of an aiges.toml directory
// holding one, else "".
func pythonWrapper(kind, abs, dir string) string {
	switch kind {
	case EnginePython:
		if strings.HasSuffix(abs, ".py") {
			return abs
		}
		return filepath.Join(dir, "wrapper.py")
	case EngineTOML:
		// As the loader decides for an aiges.toml: AIGES_PLUGIN_MODE, else c unless the
		// directory holds a wrapper.py and no libwrapper.so.
		_, errPy := os.Stat(filepath.Join(dir, "wrapper.py"))
		_, errLib := os.Stat(filepath.Join(dir, "libwrapper.so"))
		mode := strings.TrimSpace(os.Getenv("AIGES_PLUGIN_MODE"))
		if errPy == nil && (mode == EnginePython || (mode == "" && errLib != nil)) {
			return filepath.Join(dir, "wrapper.py")
		}
	}
	return ""
}

// schemaBeside reads the schema_*.json in dir: schema_<svc>.json when svc is known, else
// the only one. None gives a nil document; several without a match are an error.
func schemaBeside(dir, svc string) (string, map[string]any, error) {
	files, _ := filepath.Glob(filepath.Join(dir, "schema_*.json"))
	var pick string
	switch {
	case svc != "" && contains(files, filepath.Join(dir, "schema_"+svc+".json")):
		pick = filepath.Join(dir, "schema_"+svc+".json")
	case len(files) == 1:
		pick = files[0]
	case len(files) > 1:
		return "", nil, fmt.Errorf("%d schema files in %s: name the service with --engine-service", len(files), dir)
	default:
		return "", nil, nil
	}
	b, err := os.ReadFile(pick)
	if err != nil {
		return "", nil, err
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		return "", nil, fmt.Errorf("schema %s: %w", pick, err)
	}
	if _, ok := doc["meta"].(map[string]any); !ok {
		return "", nil, fmt.Errorf("schema %s: no meta object", pick)
	}
	return pick, doc, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

const schemaMarker = "ASFRUN-SCHEMA:"

// wrapperSchema imports wrapper.py the way the loader's Python workers do (the SDK's
// load_wrapper, its directory as the working directory, the aiges SDK on PYTHONPATH) and
// returns Wrapper().schema().
func wrapperSchema(ctx context.Context, wrapper string, o EngineOptions) (map[string]any, error) {
	sdk, err := findSDK(o.SDK, o.Root)
	if err != nil {
		return nil, err
	}
	py := o.Python
	for i, a := range o.LoaderArgs {
		if v, ok := strings.CutPrefix(a, "--python="); ok && py == "" {
			py = v
		} else if a == "--python" && i+1 < len(o.LoaderArgs) && py == "" {
			py = o.LoaderArgs[i+1]
		}
	}
	if py == "" {
		py = "/usr/bin/python3"
	}
	const script = `import json, sys
from aiges.runtime.worker import load_wrapper
doc = load_wrapper(sys.argv[1]).schema(show=False)
sys.stdout.write("\n" + sys.argv[2] + json.dumps(doc) + "\n")
`
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "-c", script, wrapper, schemaMarker)
	cmd.Dir = filepath.Dir(wrapper)
	pythonPath := sdk
	if old := os.Getenv("PYTHONPATH"); old != "" {
		pythonPath += string(os.PathListSeparator) + old
	}
	cmd.Env = append(os.Environ(), "PYTHONPATH="+pythonPath, "PYTHONDONTWRITEBYTECODE=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s: %w: %s", py, err, lastLines(stderr.String(), 3))
	}
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(make([]byte, 64*1024), 4<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), schemaMarker); ok {
			var doc map[string]any
			if err := json.Unmarshal([]byte(rest), &doc); err != nil {
				return nil, fmt.Errorf("schema json: %w", err)
			}
			if _, ok := doc["meta"].(map[string]any); !ok {
				return nil, errors.New("schema without a meta object")
			}
			return doc, nil
		}
	}
	return nil, errors.New("no schema printed")
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// findSDK finds the aiges SDK as the loader does: explicit, $ASF_AIGES_SDK, else
// sdk/python in root, the working directory or one of their parents.
func findSDK(explicit, root string) (string, error) {
	isSDK := func(d string) bool {
		_, err := os.Stat(filepath.Join(d, "aiges", "runtime", "__main__.py"))
		return err == nil
	}
	for _, c := range []string{explicit, os.Getenv("ASF_AIGES_SDK")} {
		if c != "" {
			if isSDK(c) {
				return filepath.Abs(c)
			}
			return "", fmt.Errorf("aiges SDK %s: no aiges package there", c)
		}
	}
	var starts []string
	if root != "" {
		starts = append(starts, root)
	}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	for _, s := range starts {
		s, _ = filepath.Abs(s)
		for d := s; ; d = filepath.Dir(d) {
			if c := filepath.Join(d, "sdk", "python"); isSDK(c) {
				return c, nil
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	return "", errors.New("aiges SDK not found (set ASF_AIGES_SDK)")
}

// knownTOMLSections are the sections of an aiges.toml that belong to AIGES itself, not
// to the service (as services/loader/aigestoml reserves them).
var knownTOMLSections = map[string]bool{
	"aiges": true, "fc": true, "log": true, "wrapper": true, "ws": true, "auth": true, "resource": true,
	"elog": true, "lbv2": true, "lb": true, "trace": true, "sonar": true, "pprof": true, "downAsync": true,
	"dataProcess": true, "metrics": true, "cpu": true,
}

// tomlService returns the service section of an aiges.toml (`[svcName]`, the one holding
// finder, host or port outside the AIGES sections), "" when there is none.
func tomlService(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	var found []string
	section := ""
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if i := strings.IndexByte(line, '#'); i >= 0 && !strings.ContainsAny(line[:i], `"'`) {
			line = strings.TrimSpace(line[:i])
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") && !strings.HasPrefix(line, "[[") {
			section = strings.Trim(strings.TrimSpace(line[1:len(line)-1]), `"`)
			continue
		}
		key, _, ok := strings.Cut(line, "=")
		if !ok || section == "" || knownTOMLSections[section] || contains(found, section) {
			continue
		}
		switch strings.TrimSpace(key) {
		case "finder", "host", "port":
			found = append(found, section)
		}
	}
	switch len(found) {
	case 0:
		return "", nil
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("%s has service sections %s: name one with --engine-service", file, strings.Join(found, ", "))
}

// serviceName turns a file or directory name into a capability id: lower case letters,
// digits, '-' and '_'.
func serviceName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	return strings.Trim(b.String(), "-")
}

// defaultSchema is a schema that declares the capability and nothing else: webgate passes
// every request on without validation and takes the data types from the request.
func defaultSchema(svc string) map[string]any {
	return map[string]any{"meta": map[string]any{
		"serviceId": svc, "version": "v1.0", "route": "/v1/private/" + svc, "service": []any{svc},
	}}
}

func metaString(doc map[string]any, key string) string {
	m, _ := doc["meta"].(map[string]any)
	s, _ := m[key].(string)
	return s
}

// rekey makes doc the schema of capability svc served by loaders of service svc: it
// renames meta.serviceId, the default route, meta.service, the per-service section and the
// parameter object of schemainput from the old id to svc, and points meta.engine at svc.
func rekey(doc map[string]any, svc string) {
	meta := doc["meta"].(map[string]any)
	old := metaString(doc, "serviceId")
	if e, ok := meta["engine"].(string); ok && e != svc {
		meta["engine"] = svc
	}
	if old == svc {
		return
	}
	meta["serviceId"] = svc
	if r, _ := meta["route"].(string); r == "" || r == "/v1/private/"+old {
		meta["route"] = "/v1/private/" + svc
	}
	if list, ok := meta["service"].([]any); ok {
		for i, v := range list {
			if v == old {
				list[i] = svc
			}
		}
	} else {
		meta["service"] = []any{svc}
	}
	if old == "" {
		return
	}
	if sec, ok := meta[old]; ok {
		delete(meta, old)
		meta[svc] = sec
	}
	if p := objectAt(doc, "schemainput", "properties", "parameter", "properties"); p != nil {
		if sec, ok := p[old]; ok {
			delete(p, old)
			p[svc] = sec
		}
	}
}

func objectAt(doc map[string]any, path ...string) map[string]any {
	cur := doc
	for _, k := range path {
		next, ok := cur[k].(map[string]any)
		if !ok {
			return nil
		}
		cur = next
	}
	return cur
}

// Route is the capability's URL path (meta.route).
func (e *UserEngine) Route() string {
	if r := metaString(e.Doc, "route"); r != "" {
		return r
	}
	return "/v1/private/" + e.Service
}

// Input is one payload item of a request built from a schema.
type Input struct {
	Name, DataType, Encoding string
}

// Inputs returns the payload items the schema declares (meta.<svc>.input), sorted by
// name, with an encoding its schemainput accepts; a schema without inputs gives one text
// item named "input", as the echo engines expect.
func (e *UserEngine) Inputs() []Input {
	meta, _ := e.Doc["meta"].(map[string]any)
	var out []Input
	for _, where := range []map[string]any{objectAt(meta, e.Service, "input"), objectAt(meta, "input")} {
		for name, v := range where {
			dt := "text"
			if m, ok := v.(map[string]any); ok {
				if s, ok := m["dataType"].(string); ok && s != "" {
					dt = s
				}
			}
			out = append(out, Input{Name: name, DataType: dt, Encoding: e.encoding(name, dt)})
		}
		if len(out) > 0 {
			break
		}
	}
	if len(out) == 0 {
		return []Input{{Name: "input", DataType: "text", Encoding: "utf8"}}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (e *UserEngine) encoding(name, dataType string) string {
	enc := objectAt(e.Doc, "schemainput", "properties", "payload", "properties", name, "properties", "encoding")
	if list, ok := enc["enum"].([]any); ok && len(list) > 0 {
		if s, ok := list[0].(string); ok {
			return s
		}
	}
	switch dataType {
	case "text":
		return "utf8"
	case "audio":
		return "raw"
	}
	return "raw"
}

// Params returns the parameters a request must carry (schemainput's required
// parameter.<svc> keys) with a value the schema accepts.
func (e *UserEngine) Params() map[string]any {
	svc := objectAt(e.Doc, "schemainput", "properties", "parameter", "properties", e.Service)
	props, _ := svc["properties"].(map[string]any)
	req, _ := svc["required"].([]any)
	out := map[string]any{}
	for _, r := range req {
		name, _ := r.(string)
		p, _ := props[name].(map[string]any)
		out[name] = sampleValue(p)
	}
	return out
}

func sampleValue(p map[string]any) any {
	if list, ok := p["enum"].([]any); ok && len(list) > 0 {
		return list[0]
	}
	if v, ok := p["default"]; ok {
		return v
	}
	switch p["type"] {
	case "integer", "number":
		if v, ok := p["minimum"]; ok {
			return v
		}
		return 0
	case "boolean":
		return false
	}
	return ""
}

// Request returns an ASE request for the engine: header with appID and status, the
// required parameters (first frames only), and every declared input carrying text.
func (e *UserEngine) Request(appID string, status int, text string, first bool) []byte {
	payload := map[string]any{}
	for _, in := range e.Inputs() {
		payload[in.Name] = map[string]any{"encoding": in.Encoding, "status": status,
			in.DataType: base64.StdEncoding.EncodeToString([]byte(text))}
	}
	m := map[string]any{"header": map[string]any{"app_id": appID, "status": status}, "payload": payload}
	if first {
		m["parameter"] = map[string]any{e.Service: e.Params()}
	}
	b, _ := json.Marshal(m)
	return b
}
