// Package cabitest builds the example C engine (examples/engines/c-echo) for tests.
//
//	so := cabitest.BuildEcho(t)                                   // full engine
//	so := cabitest.BuildEcho(t, "-DCECHO_OMIT_OPTIONAL")          // without the optional symbols
//	e, err := cabi.Open(so, cabi.Options{})
package cabitest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Dir returns the directory of the example C engine's sources.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "..", "..", "examples", "engines", "c-echo")
}

// IncludeDir returns the directory holding type.h and wrapper.h.
func IncludeDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "include")
}

// BuildEcho compiles the example engine with gcc (extra flags appended) into a fresh
// t.TempDir() and returns the path of the libwrapper.so. It skips the test when gcc is
// not installed. Set CECHO_CFLAGS to add flags (for example -fsanitize=address).
func BuildEcho(t testing.TB, flags ...string) string {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not installed")
	}
	_ = gcc
	out, err := BuildEchoTo(t.TempDir(), flags...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// BuildEchoTo is BuildEcho into dir, for TestMain.
func BuildEchoTo(dir string, flags ...string) (string, error) {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		return "", fmt.Errorf("gcc not installed: %w", err)
	}
	out := filepath.Join(dir, "libwrapper.so")
	args := []string{"-shared", "-fPIC", "-O1", "-g", "-pthread", "-Wall", "-I", IncludeDir(), "-o", out, filepath.Join(Dir(), "wrapper.c")}
	args = append(args, flags...)
	args = append(args, strings.Fields(os.Getenv("CECHO_CFLAGS"))...)
	if b, err := exec.Command(gcc, args...).CombinedOutput(); err != nil {
		return "", fmt.Errorf("build c-echo: %v\n%s", err, b)
	}
	return out, nil
}
