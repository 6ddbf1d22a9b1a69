// Package aigestoml reads an AIGES loader configuration (aiges.toml, as started with
// `AIservice -m 0 -c aiges.toml -s svc`) and maps it onto this loader's settings. It does
// no I/O beyond reading the file, the usrCfg file it names and looking for the engine
// (libwrapper.so, wrapper.py) on disk; the caller applies the Settings to its Config and
// logs the Warnings once with its own logger.
//
//	flags, rest, err := aigestoml.SplitArgs(os.Args[1:])        // -c -s -m -p -g -u
//	res, err := aigestoml.Load(flags.Config, aigestoml.Options{Service: flags.Service, WorkDir: wd, Getenv: os.Getenv})
//	if err != nil { ... }                                          // names the file and line
//	res.Log(log)                                                   // one warning per no-effect or unknown key group
//	if s := res.Settings; s.Licence != nil { cfg.Licence = *s.Licence }
//
// Mapping (AIGES meaning → here): [fc] max → licence, ttl (ms) → session-idle-ttl,
// report (ms) → heartbeat-interval; [<svc>] host/port → grpc-listen; [aiges] asyncMode →
// async, realTimeRlt → realtime-result, pythonPluginCmd → python (its first word),
// usrCfg/[wrapper] → engine-config; [log] level → log-level; the engine kind and path come
// from AIGES_PLUGIN_MODE and where AIGES finds the engine (libwrapper.so on
// LD_LIBRARY_PATH or in the working directory; wrapper.py on PYTHONPATH). Every other
// key AIGES knows has no effect here and is reported as such; keys AIGES does not know
// are reported as unknown.
package aigestoml

import (
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/athenaserving/asf/libs/aserr"
	"github.com/rs/zerolog"
)

// Engine kinds, as the loader's `engine` key spells them.
const (
	EngineC      = "c"
	EnginePython = "python"
)

// Environment variables AIGES reads to find its engine.
const (
	EnvPluginMode = "AIGES_PLUGIN_MODE" // c (default) or python
	EnvPythonPath = "PYTHONPATH"        // where wrapper.py is imported from
	EnvLibPath    = "LD_LIBRARY_PATH"   // where libwrapper.so is dlopen'ed from
)

// File names AIGES loads the engine from.
const (
	LibWrapper = "libwrapper.so"
	WrapperPy  = "wrapper.py"
)

// Options tell Parse what AIservice would have known besides the file.
type Options struct {
	// Service is the -s flag: it names the [<service>] section (host, port, ...).
	Service string
	// WorkDir is AIservice's working directory: libwrapper.so, wrapper.py and a relative
	// usrCfg are looked up there first, then in the file's directory. Empty: the file's
	// directory only.
	WorkDir string
	// Getenv reads AIGES_PLUGIN_MODE, PYTHONPATH and LD_LIBRARY_PATH; nil reads nothing.
	Getenv func(string) string
	// ReadFile reads the usrCfg file (default os.ReadFile).
	ReadFile func(string) ([]byte, error)
}

// Settings are the loader keys an aiges.toml sets; nil (or an empty map) is "not set",
// so the loader's default or a later configuration layer stays in force.
type Settings struct {
	GRPCListen        *string           // grpc-listen ← [<svc>] host:port
	Licence           *int              // licence ← [fc] max
	SessionIdleTTL    *time.Duration    // session-idle-ttl ← [fc] ttl (ms)
	HeartbeatInterval *time.Duration    // heartbeat-interval ← [fc] report (ms)
	Engine            *string           // engine ← AIGES_PLUGIN_MODE, or what is on disk
	EnginePath        *string           // engine-path ← libwrapper.so / wrapper.py found as AIGES would
	EngineConfig      map[string]string // engine-config ← usrCfg file (flattened) or [wrapper]
	Python            *string           // python ← [aiges] pythonPluginCmd (first word)
	Async             *bool             // async ← [aiges] asyncMode (python: always true)
	RealtimeResult    *bool             // realtime-result ← [aiges] realTimeRlt
	LogLevel          *string           // log-level ← [log] level
}

// Warning is one thing about the file the operator should know: keys with no effect here,
// unknown keys, or a value that was adjusted.
type Warning struct {
	// Section is the TOML section ("" for top-level keys).
	Section string
	// Keys are the keys concerned (none for a whole-file note).
	Keys []string
	// Unknown is true for keys AIGES itself does not know (likely typos).
	Unknown bool
	// Msg says what happens.
	Msg string
}

// Result is a parsed aiges.toml.
type Result struct {
	// Path is the file read.
	Path string
	// Settings are the mapped loader keys.
	Settings Settings
	// Warnings are in file order: log them once with Log.
	Warnings []Warning
}

// Log writes each warning once at warn level.
func (r *Result) Log(log zerolog.Logger) { LogWarnings(log, r.Path, r.Warnings) }

// LogWarnings writes each warning once at warn level; file (when not empty) names the
// file they are about.
func LogWarnings(log zerolog.Logger, file string, ws []Warning) {
	for _, w := range ws {
		ev := log.Warn()
		if file != "" {
			ev = ev.Str("file", file)
		}
		if w.Section != "" {
			ev = ev.Str("section", w.Section)
		}
		if len(w.Keys) > 0 {
			ev = ev.Strs("keys", w.Keys)
		}
		if w.Unknown {
			ev = ev.Bool("unknown", true)
		}
		ev.Msg("aiges: " + w.Msg)
	}
}

// ErrFile is wrapped by every error about the content of an aiges.toml or usrCfg file; it
// carries the invalid-parameter code (10107).
var ErrFile = aserr.ErrInvalidParam

// Load reads and parses the aiges.toml at path.
func Load(path string, opts Options) (*Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("aiges.toml: %w", err)
	}
	return Parse(path, b, opts)
}

// Parse maps the aiges.toml text data (read from path, which names it in errors and
// anchors a relative usrCfg) onto Settings. A syntax error or a value of the wrong type
// is an error naming the file and line.
func Parse(path string, data []byte, opts Options) (*Result, error) {
	if opts.Getenv == nil {
		opts.Getenv = func(string) string { return "" }
	}
	if opts.ReadFile == nil {
		opts.ReadFile = os.ReadFile
	}
	var root map[string]any
	md, err := toml.Decode(string(data), &root)
	if err != nil {
		return nil, syntaxError(path, err)
	}
	p := &parser{path: path, src: data, opts: opts, res: &Result{Path: path}}
	if err := p.run(root, md); err != nil {
		return nil, err
	}
	return p.res, nil
}

func syntaxError(path string, err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s:%d: %s: %w", path, pe.Position.Line, pe.Message, ErrFile)
	}
	return fmt.Errorf("%s: %v: %w", path, err, ErrFile)
}

type parser struct {
	path string
	src  []byte
	opts Options
	res  *Result

	svcSection string
	pluginCmd  string
	asyncSet   *bool
}

// fieldError is a value of the wrong type or range, located by a scan of the source.
func (p *parser) fieldError(section, key, format string, args ...any) error {
	loc := p.path
	if line := lineOf(p.src, section, key); line > 0 {
		loc = fmt.Sprintf("%s:%d", p.path, line)
	}
	return fmt.Errorf("%s: [%s] %s: %s: %w", loc, section, key, fmt.Sprintf(format, args...), ErrFile)
}

func (p *parser) warn(w Warning) { p.res.Warnings = append(p.res.Warnings, w) }

// noEffect lists, per section AIGES knows, the keys that have no effect in this loader.
// A section listed with a nil set has no effect as a whole (every key is AIGES's).
var noEffect = map[string]map[string]bool{
	"aiges": set("sub", "sessMode", "gesMock", "numaNode", "sessDelGt", "httpRetry", "gray", "wrapperTrace",
		"headerPass", "wrapperDelayDetectPeriod", "storageData", "asyncRelease", "libCodec", "catchOn", "catchDump"),
	"fc":  set("able", "router", "strategy", "best", "wave", "roll", "tasksize", "taskchsize", "filterwin"),
	"log": set("file", "size", "count", "die", "async", "cache", "batch", "caller", "wash"),
	"svc": set("finder", "netcard", "reuseport", "grpctimeout", "maxreceive", "maxsend", "conn-rbuf", "conn-wbuf",
		"rate", "burst", "keepalive", "keepalive-timeout", "http_listen"),
	// Whole sections of xsf, AIGES's RPC framework, and of AIGES features this loader
	// does differently (polaris registration and load reports, Prometheus metrics).
	"ws": nil, "auth": nil, "resource": nil, "elog": nil, "lbv2": nil, "lb": nil, "trace": nil, "sonar": nil,
	"pprof": nil, "downAsync": nil, "dataProcess": nil, "metrics": nil, "cpu": nil,
}

func set(keys ...string) map[string]bool {
	m := make(map[string]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}

func (p *parser) run(root map[string]any, md toml.MetaData) error {
	// Sections in file order, so warnings read like the file.
	var order []string
	seen := map[string]bool{}
	for _, k := range md.Keys() {
		if len(k) == 0 || seen[k[0]] {
			continue
		}
		seen[k[0]] = true
		order = append(order, k[0])
	}
	p.svcSection = p.findService(root)
	var topLevel []string
	for _, name := range order {
		v := root[name]
		kv, ok := v.(map[string]any)
		if !ok {
			topLevel = append(topLevel, name)
			continue
		}
		var err error
		switch {
		case name == p.svcSection:
			err = p.service(name, kv)
		case name == "aiges":
			err = p.aiges(kv)
		case name == "fc":
			err = p.fc(kv)
		case name == "log":
			err = p.log(kv)
		case name == "wrapper":
			// Handled after [aiges]: usrCfg decides whether [wrapper] is used.
		default:
			keys, known := noEffect[name]
			if known && keys == nil {
				p.warn(Warning{Section: name, Keys: sortedKeys(kv), Msg: "section has no effect in this loader"})
			} else {
				p.warn(Warning{Section: name, Keys: sortedKeys(kv), Unknown: true, Msg: "unknown section, ignored"})
			}
		}
		if err != nil {
			return err
		}
	}
	if len(topLevel) > 0 {
		p.warn(Warning{Keys: topLevel, Unknown: true, Msg: "keys outside any section, ignored"})
	}
	if p.opts.Service != "" && p.svcSection == "" {
		p.warn(Warning{Section: p.opts.Service, Msg: "no section for the service (-s): host and port keep their loader values"})
	}
	if err := p.wrapperConfig(root); err != nil {
		return err
	}
	return p.engine()
}

// findService returns the section named by -s: exact, else a unique case-insensitive match.
func (p *parser) findService(root map[string]any) string {
	want := p.opts.Service
	if want == "" || reserved(want) {
		return ""
	}
	if _, ok := root[want].(map[string]any); ok {
		return want
	}
	found := ""
	for k, v := range root {
		if _, ok := v.(map[string]any); ok && strings.EqualFold(k, want) && !reserved(k) {
			if found != "" {
				return ""
			}
			found = k
		}
	}
	return found
}

// reserved reports whether a section name belongs to AIGES itself, so it cannot be the
// service's section.
func reserved(name string) bool {
	switch name {
	case "aiges", "fc", "log", "wrapper":
		return true
	}
	keys, known := noEffect[name]
	return known && keys == nil
}

// split separates the keys a handler understands from those with no effect or unknown,
// and reports the latter two.
func (p *parser) split(sec, table string, kv map[string]any, handled ...string) {
	h := set(handled...)
	var none, unknown []string
	for _, k := range sortedKeys(kv) {
		switch {
		case h[k]:
		case noEffect[table][k]:
			none = append(none, k)
		default:
			unknown = append(unknown, k)
		}
	}
	if len(none) > 0 {
		p.warn(Warning{Section: sec, Keys: none, Msg: "keys have no effect in this loader"})
	}
	if len(unknown) > 0 {
		p.warn(Warning{Section: sec, Keys: unknown, Unknown: true, Msg: "unknown keys, ignored"})
	}
}

func (p *parser) service(sec string, kv map[string]any) error {
	p.split(sec, "svc", kv, "host", "port")
	host := ""
	if v, ok := kv["host"]; ok {
		s, ok := v.(string)
		if !ok {
			return p.fieldError(sec, "host", "want a string, got %s", typeName(v))
		}
		host = strings.TrimSpace(s)
	}
	port := 0 // AIGES: no port is a random port
	if v, ok := kv["port"]; ok {
		n, err := asInt(v)
		if err != nil || n < 0 || n > 65535 {
			return p.fieldError(sec, "port", "want a port number 0-65535, got %v", v)
		}
		port = n
	}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	p.res.Settings.GRPCListen = &addr
	return nil
}

func (p *parser) aiges(kv map[string]any) error {
	p.split("aiges", "aiges", kv, "asyncMode", "realTimeRlt", "usrCfg", "pythonPluginCmd")
	s := &p.res.Settings
	if v, ok := kv["asyncMode"]; ok {
		b, err := asBool(v)
		if err != nil {
			return p.fieldError("aiges", "asyncMode", "%v", err)
		}
		p.asyncSet = &b
	}
	if v, ok := kv["realTimeRlt"]; ok {
		b, err := asBool(v)
		if err != nil {
			return p.fieldError("aiges", "realTimeRlt", "%v", err)
		}
		s.RealtimeResult = &b
	}
	if v, ok := kv["pythonPluginCmd"]; ok {
		str, ok := v.(string)
		if !ok {
			return p.fieldError("aiges", "pythonPluginCmd", "want a string, got %s", typeName(v))
		}
		p.pluginCmd = strings.TrimSpace(str)
	}
	return nil
}

func (p *parser) fc(kv map[string]any) error {
	p.split("fc", "fc", kv, "max", "ttl", "report")
	s := &p.res.Settings
	if v, ok := kv["max"]; ok {
		n, err := asInt(v)
		if err != nil || n < 1 {
			return p.fieldError("fc", "max", "want a licence of at least 1, got %v", v)
		}
		s.Licence = &n
	}
	for _, k := range []string{"ttl", "report"} {
		v, ok := kv[k]
		if !ok {
			continue
		}
		n, err := asInt(v)
		if err != nil || n < 1 {
			return p.fieldError("fc", k, "want a positive number of milliseconds, got %v", v)
		}
		d := time.Duration(n) * time.Millisecond
		if k == "ttl" {
			s.SessionIdleTTL = &d
		} else {
			s.HeartbeatInterval = &d
		}
	}
	return nil
}

// logLevels maps xsf's log level names onto the loader's.
var logLevels = map[string]string{
	"trace": "trace", "debug": "debug", "info": "info", "warn": "warn", "warning": "warn",
	"error": "error", "err": "error", "fatal": "error", "panic": "error", "dpanic": "error",
}

func (p *parser) log(kv map[string]any) error {
	p.split("log", "log", kv, "level")
	v, ok := kv["level"]
	if !ok {
		return nil
	}
	str, _ := v.(string)
	lvl, known := logLevels[strings.ToLower(strings.TrimSpace(str))]
	if !known {
		return p.fieldError("log", "level", "want debug, info, warn or error, got %v", v)
	}
	p.res.Settings.LogLevel = &lvl
	return nil
}

// wrapperConfig builds the wrapperInit configuration as AIGES does: with [aiges] usrCfg
// set, every section of that file flattened to "section.key"; otherwise the [wrapper]
// section's keys as they are. Values become strings.
func (p *parser) wrapperConfig(root map[string]any) error {
	usrCfg := ""
	if a, ok := root["aiges"].(map[string]any); ok {
		if v, ok := a["usrCfg"]; ok {
			s, ok := v.(string)
			if !ok {
				return p.fieldError("aiges", "usrCfg", "want a file name, got %s", typeName(v))
			}
			usrCfg = strings.TrimSpace(s)
		}
	}
	wrapper, hasWrapper := root["wrapper"].(map[string]any)
	if _, isScalar := root["wrapper"]; isScalar && !hasWrapper {
		return p.fieldError("", "wrapper", "want a [wrapper] section")
	}
	cfg := map[string]string{}
	if usrCfg == "" {
		if err := flatten(cfg, "", wrapper); err != nil {
			return p.fieldError("wrapper", err.key, "%v", err.err)
		}
	} else {
		if len(wrapper) > 0 {
			p.warn(Warning{Section: "wrapper", Keys: sortedKeys(wrapper), Msg: "ignored: [aiges] usrCfg is set, so the engine configuration comes from " + usrCfg})
		}
		if err := p.usrCfg(usrCfg, cfg); err != nil {
			return err
		}
	}
	if len(cfg) > 0 {
		p.res.Settings.EngineConfig = cfg
	}
	return nil
}

func (p *parser) usrCfg(name string, cfg map[string]string) error {
	path := p.locate(name)
	b, err := p.opts.ReadFile(path)
	if err != nil {
		return p.fieldError("aiges", "usrCfg", "%v", err)
	}
	var root map[string]any
	md, err := toml.Decode(string(b), &root)
	if err != nil {
		return syntaxError(path, err)
	}
	var outside []string
	seen := map[string]bool{}
	for _, k := range md.Keys() {
		if len(k) == 0 || seen[k[0]] {
			continue
		}
		seen[k[0]] = true
		sec := k[0]
		kv, ok := root[sec].(map[string]any)
		if !ok {
			outside = append(outside, sec)
			continue
		}
		if ferr := flatten(cfg, sec, kv); ferr != nil {
			u := &parser{path: path, src: b}
			return u.fieldError(sec, ferr.key, "%v", ferr.err)
		}
	}
	if len(outside) > 0 {
		p.warn(Warning{Section: "aiges", Keys: outside, Msg: "usrCfg " + name + ": keys outside any section are not passed to wrapperInit (as in AIGES)"})
	}
	return nil
}

// locate resolves a file name AIGES would open relative to its working directory: an
// absolute path as is, else the first of WorkDir/name and fileDir/name that exists.
func (p *parser) locate(name string) string {
	if filepath.IsAbs(name) {
		return name
	}
	for _, d := range p.dirs() {
		c := filepath.Join(d, name)
		if _, err := os.Stat(c); err == nil {
			return c
		}
	}
	return filepath.Join(p.dirs()[0], name)
}

// dirs are AIservice's working directory (when known) and the file's directory.
func (p *parser) dirs() []string {
	var out []string
	if p.opts.WorkDir != "" {
		out = append(out, abs(p.opts.WorkDir))
	}
	if fd := abs(filepath.Dir(p.path)); len(out) == 0 || out[0] != fd {
		out = append(out, fd)
	}
	return out
}

func abs(dir string) string {
	if a, err := filepath.Abs(dir); err == nil {
		return a
	}
	return filepath.Clean(dir)
}

type flattenError struct {
	key string
	err error
}

// flatten adds kv's scalars to cfg under prefix.key, nested tables joined with dots.
func flatten(cfg map[string]string, prefix string, kv map[string]any) *flattenError {
	for _, k := range sortedKeys(kv) {
		full := k
		if prefix != "" {
			full = prefix + "." + k
		}
		switch v := kv[k].(type) {
		case map[string]any:
			if err := flatten(cfg, full, v); err != nil {
				return err
			}
		default:
			s, err := scalarString(v)
			if err != nil {
				return &flattenError{key: k, err: err}
			}
			cfg[full] = s
		}
	}
	return nil
}

// scalarString formats a value the way AIGES hands it to wrapperInit.
func scalarString(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case bool:
		return strconv.FormatBool(x), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case time.Time:
		return x.Format(time.RFC3339Nano), nil
	}
	return "", fmt.Errorf("want a string, number or boolean, got %s", typeName(v))
}

// engine decides the engine kind and path the way AIservice finds its plugin.
func (p *parser) engine() error {
	s := &p.res.Settings
	mode := strings.TrimSpace(p.opts.Getenv(EnvPluginMode))
	lib, libFound := p.findLib()
	py, pyFound := p.findWrapperPy()
	switch mode {
	case EngineC, EnginePython:
	case "":
		// AIGES defaults to c; a directory holding only a wrapper.py is a python engine.
		mode = EngineC
		if !libFound && pyFound {
			mode = EnginePython
		}
	default:
		return fmt.Errorf("%s=%q: want c or python: %w", EnvPluginMode, mode, ErrFile)
	}
	s.Engine = &mode
	if mode == EngineC {
		s.EnginePath = &lib
		if !libFound {
			p.warn(Warning{Msg: "no " + LibWrapper + " found on " + EnvLibPath + " or in " + strings.Join(p.dirs(), ", ") + ": engine-path set to " + lib})
		}
		if p.asyncSet != nil {
			s.Async = p.asyncSet
		}
		if p.pluginCmd != "" {
			p.warn(Warning{Section: "aiges", Keys: []string{"pythonPluginCmd"}, Msg: "no effect for a c engine"})
		}
		return nil
	}
	s.EnginePath = &py
	if !pyFound {
		p.warn(Warning{Msg: "no " + WrapperPy + " found on " + EnvPythonPath + " or in " + strings.Join(p.dirs(), ", ") + ": engine-path set to " + py})
	}
	// AIGES runs python engines in async mode whatever asyncMode says.
	t := true
	s.Async = &t
	if p.asyncSet != nil && !*p.asyncSet {
		p.warn(Warning{Section: "aiges", Keys: []string{"asyncMode"}, Msg: "asyncMode=false has no effect for a python engine: AIGES runs python engines in async mode"})
	}
	if p.pluginCmd != "" {
		f := strings.Fields(p.pluginCmd)
		s.Python = &f[0]
		if len(f) > 1 {
			p.warn(Warning{Section: "aiges", Keys: []string{"pythonPluginCmd"}, Msg: "only the interpreter " + f[0] + " is used; the loader starts its own python runtime instead of " + strings.Join(f[1:], " ")})
		}
	}
	return nil
}

// findLib looks for libwrapper.so as dlopen would under AIservice's start script: on
// LD_LIBRARY_PATH (relative entries from the working directory), then in the working
// directory and the file's directory. Not found: the working directory's would-be path.
func (p *parser) findLib() (string, bool) {
	var dirs []string
	for _, d := range filepath.SplitList(p.opts.Getenv(EnvLibPath)) {
		if d == "" {
			continue
		}
		if !filepath.IsAbs(d) {
			d = filepath.Join(p.dirs()[0], d)
		}
		dirs = append(dirs, d)
	}
	dirs = append(dirs, p.dirs()...)
	for _, d := range dirs {
		c := filepath.Join(d, LibWrapper)
		if st, err := os.Stat(c); err == nil && !st.IsDir() {
			return c, true
		}
	}
	return filepath.Join(p.dirs()[0], LibWrapper), false
}

// findWrapperPy looks for the wrapper module as `import wrapper` would: on PYTHONPATH,
// then in the working directory and the file's directory, and their wrapper/ folders
// (the layout AIGES's python projects use). Not found: the working directory.
func (p *parser) findWrapperPy() (string, bool) {
	var dirs []string
	for _, d := range filepath.SplitList(p.opts.Getenv(EnvPythonPath)) {
		if d == "" {
			continue
		}
		if !filepath.IsAbs(d) {
			d = filepath.Join(p.dirs()[0], d)
		}
		dirs = append(dirs, d)
	}
	for _, d := range p.dirs() {
		dirs = append(dirs, d, filepath.Join(d, "wrapper"))
	}
	for _, d := range dirs {
		c := filepath.Join(d, WrapperPy)
		if st, err := os.Stat(c); err == nil && !st.IsDir() {
			return c, true
		}
	}
	return p.dirs()[0], false
}

// asInt accepts a TOML integer, an integral float or a decimal string (AIGES files
// write numbers both ways).
func asInt(v any) (int, error) {
	switch x := v.(type) {
	case int64:
		if x > math.MaxInt32 || x < math.MinInt32 {
			return 0, fmt.Errorf("%d out of range", x)
		}
		return int(x), nil
	case float64:
		if x != math.Trunc(x) || x > math.MaxInt32 || x < math.MinInt32 {
			return 0, fmt.Errorf("%v is not an integer", x)
		}
		return int(x), nil
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 32)
		if err != nil {
			return 0, fmt.Errorf("%q is not an integer", x)
		}
		return int(n), nil
	}
	return 0, fmt.Errorf("want an integer, got %s", typeName(v))
}

// asBool accepts true/false, 0/1 (older aiges.toml files write `realTimeRlt = 0`) and
// their string forms.
func asBool(v any) (bool, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case int64:
		return x != 0, nil
	case string:
		b, err := strconv.ParseBool(strings.TrimSpace(x))
		if err != nil {
			return false, fmt.Errorf("want true or false, got %q", x)
		}
		return b, nil
	}
	return false, fmt.Errorf("want true or false, got %s", typeName(v))
}

func typeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case []any, []map[string]any:
		return "an array"
	case map[string]any:
		return "a table"
	case time.Time:
		return "a date"
	}
	return fmt.Sprintf("%T", v)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// lineOf finds the 1-based line assigning key in [section] (section "" = top level), by a
// line scan good enough for error messages; 0 when not found.
func lineOf(src []byte, section, key string) int {
	cur := ""
	for i, line := range strings.Split(string(src), "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "[") && !strings.HasPrefix(t, "[[") {
			if end := strings.Index(t, "]"); end > 0 {
				cur = strings.Trim(strings.TrimSpace(t[1:end]), `"'`)
			}
			continue
		}
		if cur != section {
			continue
		}
		k, _, ok := strings.Cut(t, "=")
		if ok && strings.Trim(strings.TrimSpace(k), `"'`) == key {
			return i + 1
		}
	}
	return 0
}
