package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/athenaserving/asf/libs/natsbus"
	"github.com/athenaserving/asf/libs/pki"
)

func TestInitMakesKeepsAndDelivers(t *testing.T) {
	root := t.TempDir()
	dir, deliver := filepath.Join(root, "secrets"), filepath.Join(root, "deliver")
	for c := range deliveries {
		if err := os.MkdirAll(filepath.Join(deliver, c), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	if err := run([]string{"init", "--dir", dir, "--deliver", deliver}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "made app app") {
		t.Fatalf("first start: %s", out.String())
	}
	if _, err := pki.LoadCA(filepath.Join(dir, "pki")); err != nil {
		t.Fatal(err)
	}
	users, err := natsbus.LoadUsers(filepath.Join(dir, "nats"))
	if err != nil || len(users) != 2 {
		t.Fatalf("nats users %v, %v", users, err)
	}
	read := func(p ...string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(p...))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	token, env, ca := read(dir, adminTokenFile), read(dir, clientEnvFile), read(dir, "pki", "ca.key")
	if !strings.HasPrefix(token, "plr_") || len(strings.TrimSpace(token)) != 52 {
		t.Fatalf("admin token %q", token)
	}
	if !strings.Contains(read(dir, appsFile), `"capabilities":["*"]`) || !strings.Contains(env, "ASF_API_SECRET=") {
		t.Fatalf("apps %s / client.env %s", read(dir, appsFile), env)
	}

	// Each consumer has exactly its files, and no consumer the CA key.
	for c, files := range deliveries {
		entries, err := os.ReadDir(filepath.Join(deliver, c))
		if err != nil || len(entries) != len(files) {
			t.Fatalf("%s: %d files, want %d (%v)", c, len(entries), len(files), err)
		}
		for _, f := range files {
			if read(deliver, c, filepath.Base(f)) != read(dir, f) {
				t.Fatalf("%s: %s differs from the original", c, f)
			}
		}
	}
	if got := read(deliver, "polaris", adminTokenFile); got != token {
		t.Fatalf("polaris admin token %q", got)
	}
	if st, _ := os.Stat(filepath.Join(deliver, "webgate", "webgate.key")); st.Mode().Perm() != 0o600 {
		t.Fatalf("webgate.key mode %v", st.Mode())
	}

	// A later start keeps everything and repairs a lost delivery.
	if err := os.Remove(filepath.Join(deliver, "atom", "atom.key")); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run([]string{"init", "--dir", dir, "--deliver", deliver}, &out); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "made") {
		t.Fatalf("second start made something: %s", out.String())
	}
	if read(dir, adminTokenFile) != token || read(dir, clientEnvFile) != env || read(dir, "pki", "ca.key") != ca {
		t.Fatal("second start changed the secrets")
	}
	if read(deliver, "atom", "atom.key") != read(dir, "pki", "atom.key") {
		t.Fatal("atom.key not delivered again")
	}

	out.Reset()
	if err := run([]string{"show", "--dir", dir}, &out); err != nil || out.String() != env {
		t.Fatalf("show: %q, %v", out.String(), err)
	}
	for _, bad := range []string{"pki/ca.key", "../x", "nats/polaris.nk"} {
		if err := run([]string{"show", "--dir", dir, bad}, &out); err == nil {
			t.Fatalf("show %s accepted", bad)
		}
	}
}

func TestDeliverRefusesUnknownConsumer(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "deliver", "webgte"), 0o700); err != nil {
		t.Fatal(err)
	}
	err := run([]string{"init", "--dir", filepath.Join(root, "s"), "--deliver", filepath.Join(root, "deliver")}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "webgte") {
		t.Fatalf("misnamed consumer: %v", err)
	}
}

func TestShowBeforeInit(t *testing.T) {
	err := run([]string{"show", "--dir", t.TempDir()}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "docker-compose up") {
		t.Fatalf("show before init: %v", err)
	}
}
