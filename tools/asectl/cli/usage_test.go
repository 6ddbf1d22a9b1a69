package cli_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/athenaserving/asf/tools/asectl/cli"
	"github.com/spf13/cobra"
)

// commands lists every command path of asectl ("asectl svc ls", ...), from the help of
// each command.
func commands(t *testing.T, c *ctl, path []string) [][]string {
	t.Helper()
	r := c.run(append(path, "--help")...)
	if r.code != 0 {
		t.Fatalf("asectl %s --help: exit %d %s", strings.Join(path, " "), r.code, r.err)
	}
	if !strings.Contains(r.out, "Examples:") {
		t.Errorf("asectl %s --help has no example:\n%s", strings.Join(path, " "), r.out)
	}
	out := [][]string{path}
	sect := strings.SplitN(r.out, "Available Commands:", 2)
	if len(sect) < 2 {
		return out
	}
	for _, line := range strings.Split(strings.TrimLeft(sect[1], "\n"), "\n") {
		if line == "" {
			break
		}
		f := strings.Fields(line)
		if len(f) == 0 || f[0] == "help" {
			continue
		}
		if f[0] == "completion" {
			continue // cobra's own, checked below
		}
		out = append(out, commands(t, c, append(append([]string{}, path...), f[0]))...)
	}
	return out
}

func TestEveryCommandHasHelpWithAnExample(t *testing.T) {
	c := newCtl(t)
	all := commands(t, c, nil)
	want := []string{"engine new", "engine dryrun", "engine schema", "engine pack", "engine run", "login", "context ls",
		"svc ls", "svc describe", "svc enable", "svc disable", "svc weight", "top", "cfg ls", "cfg get", "cfg push", "cfg diff",
		"cfg history", "cfg rollback", "cfg gray", "schema push", "schema get", "schema validate", "app create", "app ls",
		"app rotate-key", "app limits", "app delete", "call once", "call stream", "call sign"}
	have := map[string]bool{}
	for _, p := range all {
		have[strings.Join(p, " ")] = true
	}
	for _, w := range want {
		if !have[w] {
			t.Errorf("no command %q", w)
		}
	}
}

func TestExitCodesAndCompletion(t *testing.T) {
	c := newCtl(t)
	c.fails(cli.ExitUsage, "unknown command", "nosuch")
	c.fails(cli.ExitUsage, "unknown flag", "svc", "ls", "--nosuch")
	c.fails(cli.ExitUsage, "output format", "svc", "ls", "-o", "xml")
	c.fails(cli.ExitUsage, "accepts 1 arg", "cfg", "get")
	c.fails(cli.ExitError, "asectl login", "app", "ls")
	c.env["ASF_WEBGATE"] = "http://127.0.0.1:1" // no context needed for a call: the edge is refused
	c.fails(cli.ExitError, "connection refused", "call", "once", "echo")
	for _, sh := range []string{"bash", "zsh", "fish", "powershell"} {
		if out := c.ok("completion", sh); !strings.Contains(out, "asectl") {
			t.Errorf("completion %s: %.100s", sh, out)
		}
	}
	// Dynamic completion: flag values and subcommands.
	if out := c.ok(cobra.ShellCompRequestCmd, "svc", "ls", "-o", ""); !strings.Contains(out, "yaml") {
		t.Errorf("completion of -o: %s", out)
	}
	if out := c.ok(cobra.ShellCompRequestCmd, "engine", "new", "--lang", ""); !strings.Contains(out, "python") {
		t.Errorf("completion of --lang: %s", out)
	}
	var b bytes.Buffer
	if code := cli.Run(t.Context(), []string{"--help"}, cli.IO{Out: &b, Err: &b}); code != 0 || !strings.Contains(b.String(), "Exit status: 0 ok, 1 error, 2 usage") {
		t.Fatalf("root help: %d %s", code, b.String())
	}
}
