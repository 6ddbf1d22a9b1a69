package cfgload

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type testCfg struct {
	Listen  string            `cfg:"grpc-listen" help:"listen address"`
	Licence int               `cfg:"licence"`
	TTL     time.Duration     `cfg:"ttl"`
	Embed   bool              `cfg:"nats-embedded"`
	Peers   []string          `cfg:"peers"`
	Labels  map[string]string `cfg:"labels"`
	Token   string            `cfg:"token" secret:"true"`
	skipped int               //lint:ignore U1000 present to show that unexported fields are not configuration
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(file, []byte("licence: 5\nttl: 2s\ngrpc-listen: \":1\"\npeers: [a, b]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testCfg{Listen: ":0", Licence: 1, TTL: time.Second}
	e := env(map[string]string{"ASF_LOADER_LICENCE": "7", "ASF_LOADER_LABELS": "canary=true,zone=a"})
	if err := load("loader", []string{"--config", file, "--grpc-listen=:9", "--nats-embedded"}, e, &cfg, io.Discard); err != nil {
		t.Fatal(err)
	}
	if cfg.Licence != 7 || cfg.TTL != 2*time.Second || cfg.Listen != ":9" || !cfg.Embed {
		t.Fatalf("precedence wrong: %+v", cfg)
	}
	if len(cfg.Peers) != 2 || cfg.Peers[1] != "b" || cfg.Labels["zone"] != "a" {
		t.Fatalf("collections wrong: %+v", cfg)
	}
}

func TestErrors(t *testing.T) {
	var cfg testCfg
	if err := load("x", []string{"--licence=abc"}, env(nil), &cfg, io.Discard); err == nil {
		t.Fatal("bad int accepted")
	}
	if err := load("x", nil, env(map[string]string{"ASF_X_TTL": "soon"}), &cfg, io.Discard); err == nil {
		t.Fatal("bad duration accepted")
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	_ = os.WriteFile(file, []byte("nope: 1\n"), 0o600)
	if err := load("x", []string{"--config=" + file}, env(nil), &cfg, io.Discard); err == nil {
		t.Fatal("unknown key accepted")
	}
}

func TestRedacted(t *testing.T) {
	r := Redacted(&testCfg{Token: "s3cret", Licence: 3})
	if r["token"] != "***" || r["licence"] != "3" {
		t.Fatalf("redacted = %v", r)
	}
}

func FuzzLoadFile(f *testing.F) {
	f.Add([]byte("licence: 5\nttl: 2s\n"))
	f.Add([]byte("labels: {a: b}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		file := filepath.Join(dir, "c.yaml")
		if err := os.WriteFile(file, b, 0o600); err != nil {
			t.Fatal(err)
		}
		var cfg testCfg
		_ = load("x", []string{"--config=" + file}, env(nil), &cfg, io.Discard) // must not panic
	})
}

// A secret key also reads from a file named by <key>-file, in YAML, env and flags, so
// the secret itself never appears on a command line.
func TestSecretFromFile(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "token")
	if err := os.WriteFile(secret, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var cfg testCfg
	if err := load("x", []string{"--token-file", secret}, env(nil), &cfg, io.Discard); err != nil || cfg.Token != "from-file" {
		t.Fatalf("flag: %q %v", cfg.Token, err)
	}
	cfg = testCfg{}
	if err := load("x", nil, env(map[string]string{"ASF_X_TOKEN_FILE": secret}), &cfg, io.Discard); err != nil || cfg.Token != "from-file" {
		t.Fatalf("env: %q %v", cfg.Token, err)
	}
	file := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(file, []byte("token-file: "+secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg = testCfg{}
	if err := load("x", []string{"--config", file}, env(nil), &cfg, io.Discard); err != nil || cfg.Token != "from-file" {
		t.Fatalf("yaml: %q %v", cfg.Token, err)
	}
	cfg = testCfg{}
	if err := load("x", []string{"--token-file", filepath.Join(dir, "missing")}, env(nil), &cfg, io.Discard); err == nil {
		t.Fatal("a missing secret file accepted")
	}
	if _, ok := Redacted(&cfg)["token-file"]; ok {
		t.Fatal("the -file companion is listed by Redacted")
	}
}

type checkedCfg struct {
	LogLevel   string        `cfg:"log-level"`
	HTTPListen string        `cfg:"http-listen"`
	Timeout    time.Duration `cfg:"timeout"`
	Workers    int           `cfg:"workers"`
	Atom       string        `cfg:"atom" addrs:"true"`
}

// TestBadValuesNameKeyAndValue: a bad value from a flag, the environment or the file is an
// error naming the key and the value.
func TestBadValuesNameKeyAndValue(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	require.NoError(t, os.WriteFile(file, []byte("log-level: nope\n"), 0o600))
	cases := []struct {
		args []string
		env  map[string]string
		want []string
	}{
		{args: []string{"--log-level", "nope"}, want: []string{"log-level", `"nope"`, "not a log level"}},
		{args: []string{"--log-level=NOPE"}, want: []string{"log-level", `"NOPE"`}},
		{env: map[string]string{"ASF_WG_LOG_LEVEL": "verbose"}, want: []string{"ASF_WG_LOG_LEVEL", `"verbose"`}},
		{args: []string{"--config", file}, want: []string{"log-level", `"nope"`, file}},
		{args: []string{"--timeout", "5 sec"}, want: []string{"timeout", `"5 sec"`}},
		{env: map[string]string{"ASF_WG_TIMEOUT": "soon"}, want: []string{"ASF_WG_TIMEOUT", `"soon"`}},
		{args: []string{"--workers", "many"}, want: []string{"workers", `"many"`}},
		{args: []string{"--http-listen", "8889"}, want: []string{"http-listen", `"8889"`, "host:port"}},
		{args: []string{"--http-listen", "127.0.0.1:70000"}, want: []string{"http-listen", `"127.0.0.1:70000"`, "65535"}},
		{args: []string{"--atom", "atom-1"}, want: []string{"atom", `"atom-1"`, "host:port"}},
		{env: map[string]string{"ASF_WG_ATOM": "a:9988,b:x"}, want: []string{"ASF_WG_ATOM", `"b:x"`, "65535"}},
	}
	for _, c := range cases {
		var cfg checkedCfg
		var usage bytes.Buffer
		err := load("wg", c.args, env(c.env), &cfg, &usage)
		require.Error(t, err, "%v %v accepted", c.args, c.env)
		for _, w := range c.want {
			require.Contains(t, err.Error(), w, "%v %v", c.args, c.env)
		}
		require.Empty(t, usage.String(), "the flag list is printed only for --help")
	}
}

func TestGoodValuesPass(t *testing.T) {
	var cfg checkedCfg
	require.NoError(t, load("wg", []string{"--log-level=DEBUG", "--http-listen=:0", "--timeout=1.5s"}, env(nil), &cfg, io.Discard))
	require.NoError(t, load("wg", []string{"--log-level=", "--http-listen=[::1]:8889", "--http-listen="}, env(nil), &cfg, io.Discard))
	require.NoError(t, load("wg", []string{"--atom= a:9988, b:9986 ,", "--atom=dns:///atom.asf:9988", "--atom="}, env(nil), &cfg, io.Discard))
	require.Equal(t, 1500*time.Millisecond, cfg.Timeout)
}

func TestHelpAndVersion(t *testing.T) {
	var cfg checkedCfg
	var usage bytes.Buffer
	require.ErrorIs(t, load("wg", []string{"--help"}, env(nil), &cfg, &usage), ErrHelp)
	require.Contains(t, usage.String(), "-log-level")
	require.Contains(t, usage.String(), "-version")
	require.ErrorIs(t, load("wg", []string{"--version"}, env(nil), &cfg, io.Discard), ErrVersion)
	// --version wins over a config file that cannot be read.
	require.ErrorIs(t, load("wg", []string{"--config=/nonexistent", "-version"}, env(nil), &cfg, io.Discard), ErrVersion)
}
