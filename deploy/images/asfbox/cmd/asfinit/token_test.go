package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestAdminToken(t *testing.T) {
	env := map[string]string{"ASF_POLARIS_ADMIN_TOKEN": " from-polaris-env\n"}
	if got, err := adminToken("", func(k string) string { return env[k] }); err != nil || got != "from-polaris-env" {
		t.Fatalf("polaris env: %q, %v", got, err)
	}
	env["ASF_INIT_ADMIN_TOKEN"] = "from-init-env"
	if got, _ := adminToken("", func(k string) string { return env[k] }); got != "from-init-env" {
		t.Fatalf("init env first: %q", got)
	}
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, _ := adminToken(file, func(k string) string { return env[k] }); got != "from-file" {
		t.Fatalf("file first: %q", got)
	}
	if _, err := adminToken("", func(string) string { return "" }); err == nil {
		t.Fatal("no token accepted")
	}
}
