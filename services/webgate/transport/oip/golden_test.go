package oip

import (
	"encoding/json"
	"testing"

	"github.com/athenaserving/asf/libs/capability"
	"github.com/athenaserving/asf/services/webgate/gate"
	"github.com/athenaserving/asf/services/webgate/internal/goldentest"
	"github.com/stretchr/testify/require"
)

const goldenSchema = `{"meta":{"serviceId":"ist","version":"2","ist":{"input":{"input":{"dataType":"audio"}},"accept":{"result":{"dataType":"text"}}}},
 "schemaoutput":{"properties":{"payload":{"properties":{"result":{"properties":{"seq":{"type":"string"},"final":{"type":"boolean"},"score":{"type":"number"}}}}}}}}`

// TestOIPRequestGolden pins the OIP v2 infer request → atom frame mapping.
func TestOIPRequestGolden(t *testing.T) {
	sch, err := capability.Parse([]byte(goldenSchema))
	require.NoError(t, err)
	req := `{"id":"req-1","parameters":{"uid":"u1","eos":1000,"punc":true},
	 "inputs":[{"name":"input","shape":[2],"datatype":"INT16","parameters":{"sample_rate":16000,"encoding":"raw"},"data":[1,-1]},
	           {"name":"hint","shape":[1],"datatype":"BYTES","data":["aGk="],"parameters":{"content_encoding":"base64"}}],
	 "outputs":[{"name":"result","parameters":{"format":"json","encoding":"utf8"}}]}`
	var r oipRequest
	require.NoError(t, json.Unmarshal([]byte(req), &r))
	f, err := oipFrame(&r, &gate.Request{Capability: "ist", Schema: sch})
	require.NoError(t, err)
	out, err := json.Marshal(f) // encoding/json sorts map keys: stable
	require.NoError(t, err)
	goldentest.JSON(t, "oip_infer_frame", out)
}
