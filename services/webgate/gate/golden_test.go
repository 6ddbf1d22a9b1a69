package gate

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/athenaserving/asf/libs/capability"
	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
	"github.com/athenaserving/asf/services/webgate/ase"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func golden(t *testing.T, name string, got []byte) {
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

const goldenSchema = `{"meta":{"serviceId":"ist","version":"2","ist":{"input":{"input":{"dataType":"audio"}},"accept":{"result":{"dataType":"text"}}}},
 "schemaoutput":{"properties":{"payload":{"properties":{"result":{"properties":{"seq":{"type":"string"},"final":{"type":"boolean"},"score":{"type":"number"}}}}}}}}`

// TestSchemaTypedRenderGolden pins how schemaoutput types response attributes.
func TestSchemaTypedRenderGolden(t *testing.T) {
	sch, err := capability.Parse([]byte(goldenSchema))
	require.NoError(t, err)
	r := (&Gate{opts: Options{Renderer: ase.DefaultRenderer()}}).Renderer(sch)
	res := &atompb.Result{Sid: "s1", Status: 2, Payload: []*atompb.Item{{
		Name: "result", DataType: "text",
		Attributes: map[string]string{"seq": "7", "final": "true", "score": "0.5", "status": "2", "other": "1", "format": "json"},
		Data:       []byte(`{"w":"hi"}`),
	}}}
	golden(t, "schema_typed_result", r.AppendResultCID(nil, res, "c1"))
}
