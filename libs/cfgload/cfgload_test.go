package cfgload

import (
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
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
