// Package cfgload fills a service's Config struct from, in increasing precedence, the
// struct's defaults, a YAML file (--config), environment variables (ASF_<SVC>_<KEY>) and
// command-line flags. One name serves all three: the field tag `cfg:"licence"` is the YAML
// key `licence`, the env var ASF_LOADER_LICENCE and the flag --licence.
//
//	type Config struct {
//	    Licence int           `cfg:"licence" help:"concurrent engine sessions"`
//	    TTL     time.Duration `cfg:"ttl" help:"idle session TTL"`
//	}
//	cfg := DefaultConfig()
//	if err := cfgload.Load("loader", os.Args[1:], os.Getenv, &cfg); err != nil { ... }
//
// Supported field types: string, bool, int, int64, uint, float64, time.Duration, []string
// (comma separated in env and flags), map[string]string (k=v,k=v). Fields tagged
// `secret:"true"` are redacted by Redacted, and each also has a "<key>-file" key (YAML,
// env ASF_<SVC>_<KEY>_FILE, flag --<key>-file) naming a file the value is read from
// (one trailing newline dropped), so secrets need not be on a command line, which other
// users of the host can read.
//
// Values are checked where they are read, so a bad one is a start error naming its key and
// value: numbers and durations must parse, a key named log-level takes trace, debug, info,
// warn, error, fatal, panic or disabled, and a key ending in -listen takes host:port with
// a port from 0 to 65535 (host may be empty), as does each entry of a field tagged
// `addrs:"true"` (a comma-separated dial list; a gRPC target with a scheme, dns:///…, is
// taken as given). --version makes Load return ErrVersion.
package cfgload

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/athenaserving/asf/libs/buildinfo"
	"gopkg.in/yaml.v3"
)

// ErrHelp is returned when -h or --help was asked for; usage has been printed.
var ErrHelp = flag.ErrHelp

// ErrVersion is returned when --version was asked for; the caller prints the build.
var ErrVersion = errors.New("version requested")

type field struct {
	name, help string
	secret     bool
	addrs      bool // tag addrs:"true": a comma-separated list of host:port (or scheme:/// targets)
	v          reflect.Value
	// fileOf is set on the "<key>-file" companion of a secret string field: setting it
	// reads the named file into that field.
	fileOf reflect.Value
}

// setField sets f from the text s (for a "-file" companion, the file s names).
func setField(f field, s string) error {
	if !f.fileOf.IsValid() {
		if err := check(f, s); err != nil {
			return err
		}
		return set(f.v, s)
	}
	if s == "" {
		return nil
	}
	b, err := os.ReadFile(s)
	if err != nil {
		return err
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	f.fileOf.SetString(string(b))
	return nil
}

// logLevels are the values a log-level key accepts ("" keeps the logger's default).
var logLevels = []string{"", "trace", "debug", "info", "warn", "error", "fatal", "panic", "disabled"}

// check applies the rules some keys follow by name to the text s (see the package doc).
func check(f field, s string) error {
	key := f.name
	switch {
	case f.addrs && s != "":
		for _, a := range strings.Split(s, ",") {
			a = strings.TrimSpace(a)
			if a == "" || strings.Contains(a, ":///") { // a gRPC target (dns:///host:port) as given
				continue
			}
			if err := checkHostPort(a); err != nil {
				return fmt.Errorf("address %q: %w", a, err)
			}
		}
	case key == "log-level":
		for _, l := range logLevels {
			if strings.EqualFold(s, l) {
				return nil
			}
		}
		return errors.New("not a log level (trace, debug, info, warn, error, fatal, panic, disabled)")
	case strings.HasSuffix(key, "-listen") && s != "":
		if err := checkHostPort(s); err != nil {
			return fmt.Errorf("not a listen address: %w", err)
		}
	}
	return nil
}

// checkHostPort checks that s is host:port with a port from 0 to 65535 (host may be empty).
func checkHostPort(s string) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("not host:port: %w", err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		// A service name (":http") is looked up in the local services database only.
		if _, lerr := net.LookupPort("tcp", port); lerr != nil {
			return fmt.Errorf("port %q is not a number from 0 to 65535", port)
		}
	}
	return nil
}

func fields(dst any) ([]field, error) {
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		return nil, errors.New("cfgload: dst must be a pointer to a struct")
	}
	var out []field
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			sf := t.Field(i)
			if !sf.IsExported() {
				continue
			}
			name := sf.Tag.Get("cfg")
			if name == "" {
				if sf.Type.Kind() == reflect.Struct && sf.Type != reflect.TypeOf(time.Duration(0)) {
					walk(v.Field(i))
				}
				continue
			}
			if name == "-" {
				continue
			}
			f := field{name: name, help: sf.Tag.Get("help"), secret: sf.Tag.Get("secret") == "true", addrs: sf.Tag.Get("addrs") == "true", v: v.Field(i)}
			out = append(out, f)
			if f.secret && f.v.Kind() == reflect.String {
				out = append(out, field{name: name + "-file", help: "file holding " + name + " (instead of passing it in a flag)", fileOf: f.v})
			}
		}
	}
	walk(rv.Elem())
	return out, nil
}

// value adapts a field to flag.Value so flags parse with the same rules as env.
type value struct{ f field }

func (v value) String() string {
	if !v.f.v.IsValid() {
		return ""
	}
	return format(v.f.v)
}
func (v value) Set(s string) error { return setField(v.f, s) }

// IsBoolFlag lets --flag mean --flag=true for bool fields.
func (v value) IsBoolFlag() bool { return v.f.v.IsValid() && v.f.v.Kind() == reflect.Bool }

func format(v reflect.Value) string {
	switch x := v.Interface().(type) {
	case time.Duration:
		return x.String()
	case []string:
		return strings.Join(x, ",")
	case map[string]string:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + "=" + x[k]
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v.Interface())
}

func set(v reflect.Value, s string) error {
	switch v.Interface().(type) {
	case time.Duration:
		d, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		v.SetInt(int64(d))
		return nil
	case []string:
		var parts []string
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
		v.Set(reflect.ValueOf(parts))
		return nil
	case map[string]string:
		m := map[string]string{}
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p == "" {
				continue
			}
			k, val, ok := strings.Cut(p, "=")
			if !ok {
				return fmt.Errorf("%q is not key=value", p)
			}
			m[strings.TrimSpace(k)] = strings.TrimSpace(val)
		}
		v.Set(reflect.ValueOf(m))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return err
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return err
		}
		v.SetUint(n)
	case reflect.Float64, reflect.Float32:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return err
		}
		v.SetFloat(f)
	default:
		return fmt.Errorf("unsupported config type %s", v.Type())
	}
	return nil
}

// EnvName is the environment variable for a config key of service svc:
// EnvName("loader", "polaris-addr") = "ASF_LOADER_POLARIS_ADDR".
func EnvName(svc, key string) string {
	r := strings.NewReplacer("-", "_", ".", "_")
	return "ASF_" + strings.ToUpper(r.Replace(svc)) + "_" + strings.ToUpper(r.Replace(key))
}

// Load fills dst (a pointer to a Config struct already holding its defaults).
func Load(svc string, args []string, getenv func(string) string, dst any) error {
	return load(svc, args, getenv, dst, os.Stderr)
}

func load(svc string, args []string, getenv func(string) string, dst any, usage io.Writer) error {
	if buildinfo.WantsVersion(args) {
		return ErrVersion
	}
	fs, err := fields(dst)
	if err != nil {
		return err
	}
	file := getenv(EnvName(svc, "config"))
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--config="); ok {
			file = v
		} else if v, ok := strings.CutPrefix(a, "-config="); ok {
			file = v
		} else if (a == "--config" || a == "-config") && i+1 < len(args) {
			file = args[i+1]
		}
	}
	if file != "" {
		if err := loadFile(file, fs); err != nil {
			return err
		}
	}
	for _, f := range fs {
		if s := getenv(EnvName(svc, f.name)); s != "" {
			if err := setField(f, s); err != nil {
				return fmt.Errorf("env %s%s: %w", EnvName(svc, f.name), shown(f, s), err)
			}
		}
	}
	set := flag.NewFlagSet(svc, flag.ContinueOnError)
	// A parse error is returned (the caller prints it once, naming the flag and value);
	// the flag list is printed only for --help.
	set.SetOutput(io.Discard)
	set.String("config", file, "YAML config file (env "+EnvName(svc, "config")+")")
	version := set.Bool("version", false, "print the version, the commit and the Go version, and exit")
	for _, f := range fs {
		set.Var(value{f}, f.name, f.help+" (env "+EnvName(svc, f.name)+")")
	}
	if err := set.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			set.SetOutput(usage)
			fmt.Fprintf(usage, "Usage of %s:\n", svc)
			set.PrintDefaults()
		}
		return err
	}
	if *version {
		return ErrVersion
	}
	if set.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", set.Args())
	}
	return nil
}

func loadFile(path string, fs []field) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	var raw map[string]yaml.Node
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	known := map[string]field{}
	for _, f := range fs {
		known[f.name] = f
	}
	for k, node := range raw {
		f, ok := known[k]
		if !ok {
			return fmt.Errorf("config file %s: unknown key %q", path, k)
		}
		var err error
		switch {
		case node.Kind == yaml.ScalarNode:
			if err = setField(f, node.Value); err != nil {
				k += shown(f, node.Value)
			}
		case f.v.Kind() == reflect.Slice || f.v.Kind() == reflect.Map:
			ptr := reflect.New(f.v.Type())
			if err = node.Decode(ptr.Interface()); err == nil {
				f.v.Set(ptr.Elem())
			}
		default:
			err = fmt.Errorf("want a scalar")
		}
		if err != nil {
			return fmt.Errorf("config file %s: key %s: %w", path, k, err)
		}
	}
	return nil
}

// shown is "=<value>" for an error message about field f, or "" for a secret.
func shown(f field, s string) string {
	if f.secret || f.fileOf.IsValid() {
		return ""
	}
	return fmt.Sprintf("=%q", s)
}

// Redacted returns the config as key → value text for logging, with secret fields masked.
func Redacted(cfg any) map[string]string {
	fs, err := fields(cfg)
	if err != nil {
		return nil
	}
	out := make(map[string]string, len(fs))
	for _, f := range fs {
		if f.fileOf.IsValid() {
			continue
		}
		if f.secret {
			out[f.name] = "***"
			continue
		}
		out[f.name] = format(f.v)
	}
	return out
}
