package cli

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
)

// TestVersionAndHelpExitZero: --version prints the version, commit and Go version, and
// --help the usage; both exit 0.
func TestVersionAndHelpExitZero(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"--help"}} {
		var out, errOut bytes.Buffer
		code := Run(context.Background(), args, IO{In: strings.NewReader(""), Out: &out, Err: &errOut, Getenv: func(string) string { return "" }})
		if code != 0 {
			t.Fatalf("%v: exit %d, stderr %q", args, code, errOut.String())
		}
		if args[0] == "--version" && !regexp.MustCompile(`^asectl version \S+ commit \S+( \(modified\))? go\d`).MatchString(out.String()) {
			t.Errorf("--version printed %q", out.String())
		}
		if args[0] == "--help" && !strings.Contains(out.String()+errOut.String(), "Usage:") {
			t.Errorf("--help printed %q", out.String())
		}
	}
}
