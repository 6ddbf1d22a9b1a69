package scaffold

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNewWritesAReadyProject(t *testing.T) {
	for _, lang := range []string{Python, C} {
		dir := filepath.Join(t.TempDir(), "greeter")
		files, err := New("greeter", lang, dir)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{".dockerignore", ".gitignore", "Dockerfile", "Makefile", "README.md", "aiges.toml", "sample.txt", "schema_greeter.json"}
		if lang == C {
			want = append(want, "include/type.h", "include/wrapper.h", "wrapper.c")
		} else {
			want = append(want, "wrapper.py")
		}
		for _, f := range want {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				t.Errorf("%s: %s missing (wrote %v)", lang, f, files)
			}
		}
		var schema struct {
			Meta map[string]any `json:"meta"`
		}
		b, _ := os.ReadFile(filepath.Join(dir, "schema_greeter.json"))
		if err := json.Unmarshal(b, &schema); err != nil || schema.Meta["serviceId"] != "greeter" {
			t.Fatalf("%s schema: %v %v", lang, err, schema.Meta)
		}
		df, _ := os.ReadFile(filepath.Join(dir, "Dockerfile"))
		if !bytes.Contains(df, []byte("FROM ${BASE}")) || !bytes.Contains(df, []byte("ASF_LOADER_SERVICE=greeter")) {
			t.Fatalf("%s Dockerfile:\n%s", lang, df)
		}
		toml, _ := os.ReadFile(filepath.Join(dir, "aiges.toml"))
		if !bytes.Contains(toml, []byte("[greeter]")) {
			t.Fatalf("%s aiges.toml:\n%s", lang, toml)
		}
		if _, err := New("greeter", lang, dir); !errors.Is(err, ErrExists) {
			t.Fatalf("second New into the same directory: %v", err)
		}
	}
}

func TestNewRefusesBadInput(t *testing.T) {
	for _, name := range []string{"", "Greeter", "1abc", "a/b", "a b", strings.Repeat("a", 64)} {
		if _, err := New(name, Python, t.TempDir()); err == nil {
			t.Errorf("name %q accepted", name)
		}
	}
	if _, err := New("ok", "rust", t.TempDir()); err == nil || !strings.Contains(err.Error(), "python or c") {
		t.Fatalf("language: %v", err)
	}
}

// The C template carries copies of the loader's AIGES headers, so that a project builds
// on its own; they must stay the loader's.
func TestCHeadersAreTheLoaders(t *testing.T) {
	for _, h := range []string{"type.h", "wrapper.h"} {
		ours, err := templates.ReadFile("templates/c/include/" + h)
		if err != nil {
			t.Fatal(err)
		}
		theirs, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "services", "loader", "include", h))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ours, theirs) {
			t.Errorf("templates/c/include/%s differs from services/loader/include/%s: copy it again", h, h)
		}
	}
}
