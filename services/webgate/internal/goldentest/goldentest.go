// Package goldentest compares the JSON a test produced with testdata/<name>.golden; `go test
// -update` rewrites the files. webgate's protocol conversions (ase, gate, transport/oip) pin
// their output with it.
package goldentest

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// JSON checks that got is valid JSON equal to testdata/<name>.golden (without its final
// newline), after writing it there under -update.
func JSON(t *testing.T, name string, got []byte) {
	t.Helper()
	require.True(t, json.Valid(got), "invalid JSON: %s", got)
	path := filepath.Join("testdata", name+".golden")
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(path, append(got, '\n'), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -update to create %s", path)
	assert.Equal(t, strings.TrimSuffix(string(want), "\n"), string(got))
}
