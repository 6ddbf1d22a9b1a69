package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParseKey(t *testing.T) {
	k, err := ParseKey("asf/default/capabilities/v1/schema_echo.json")
	if err != nil || k.Service != "capabilities" || k.File != "schema_echo.json" {
		t.Fatalf("ParseKey = %+v, %v", k, err)
	}
	for _, bad := range []string{"", "a/b/c/d", "a/b/c/d/e/f", "a//c/d/e", "a/b/../d/e", "a/b/c d/d/e"} {
		if _, err := ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) accepted", bad)
		}
	}
	it, err := ParseFileFlag("asf/default/webgate/v1/apps.json=/run/secrets/apps.json")
	if err != nil || it.Path != "/run/secrets/apps.json" || it.Key.File != "apps.json" {
		t.Fatalf("ParseFileFlag = %+v, %v", it, err)
	}
	if _, err := ParseFileFlag("asf/default/webgate/v1/apps.json"); err == nil {
		t.Error("ParseFileFlag without =PATH accepted")
	}
}

func TestScanDir(t *testing.T) {
	dir := t.TempDir()
	write := func(rel string) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(rel), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("asf/default/capabilities/v1/schema_b.json")
	write("asf/default/capabilities/v1/schema_a.json")
	write("..data/ignored")
	write(".hidden")
	items, err := ScanDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 || items[0].Key.File != "schema_a.json" || items[1].Key.File != "schema_b.json" {
		t.Fatalf("ScanDir = %+v", items)
	}
	write("asf/misplaced.json")
	if _, err := ScanDir(dir); err == nil {
		t.Fatal("a file at the wrong depth was accepted")
	}
}

func FuzzParseKey(f *testing.F) {
	f.Add("asf/default/capabilities/v1/schema_echo.json")
	f.Add("a/b/c/d/e=/x")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKey(s)
		if err != nil {
			return
		}
		back, err := ParseKey(k.String())
		if err != nil || back != k {
			t.Fatalf("round trip %q → %+v → %v", s, k, err)
		}
	})
}
