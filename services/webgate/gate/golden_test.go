package gate

import (
	"testing"

	"github.com/athenaserving/asf/libs/capability"
	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
	"github.com/athenaserving/asf/services/webgate/ase"
	"github.com/athenaserving/asf/services/webgate/internal/goldentest"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

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
	goldentest.JSON(t, "schema_typed_result", r.AppendResultCID(nil, res, "c1"))
}
