// Package cmds_test checks the command-line conventions every tool binary keeps.
package cmds_test

import (
	"errors"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

// tools are the binaries under tools/cmd.
var tools = []string{"asedemo", "asfbench", "asfchaos", "asfnats", "asfpki", "asfrun", "lbbench", "loaderbench"}

// TestHelpAndVersionExitZero builds every tool and runs it with --help (exit 0) and
// --version (exit 0, "<name> version <v> commit <c> go<...>" on stdout).
func TestHelpAndVersionExitZero(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every tool")
	}
	dir := t.TempDir()
	args := []string{"build", "-o", dir + "/"}
	for _, name := range tools {
		args = append(args, "./"+name)
	}
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, name := range tools {
		bin := filepath.Join(dir, name)
		if out, err := exec.Command(bin, "--help").CombinedOutput(); exitCode(t, err) != 0 {
			t.Errorf("%s --help: exit %d\n%s", name, exitCode(t, err), out)
		}
		out, err := exec.Command(bin, "--version").Output()
		if exitCode(t, err) != 0 {
			t.Errorf("%s --version: exit %d", name, exitCode(t, err))
		}
		if !regexp.MustCompile(`^` + name + ` version \S+ commit \S+( \(modified\))? go\d`).Match(out) {
			t.Errorf("%s --version printed %q", name, out)
		}
	}
}

func exitCode(t *testing.T, err error) int {
	t.Helper()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return exit.ExitCode()
	}
	t.Fatal(err)
	return -1
}
