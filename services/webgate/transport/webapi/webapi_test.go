package webapi

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/athenaserving/asf/libs/capability"
	"github.com/athenaserving/asf/services/webgate/gate"
	"github.com/stretchr/testify/require"
)

// echoSchema is capability echo with a WebAPI 2.0 route beside its ASE route.
func echoSchema(t testing.TB) []byte {
	b, err := os.ReadFile("testdata/echo_schema.json")
	require.NoError(t, err)
	return b
}

// FuzzDecodeWebAPI: any message either fails with a 10163 or yields ASE JSON that the ASE
// parser reads; it never panics.
func FuzzDecodeWebAPI(f *testing.F) {
	sch, err := capability.Parse(echoSchema(f))
	require.NoError(f, err)
	info := &gate.Request{Capability: "echo", Schema: sch, WebAPI: true}
	f.Add([]byte(`{"common":{"app_id":"a","cid":"c","cmd":"close"},"business":{"mode":"fast"},"data":{"status":0,"seq":1,"text":"aGk="}}`))
	f.Add([]byte(`{"data":{"status":"0","text":{}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(info, b, false)
		if err != nil {
			return
		}
		if !json.Valid(m.ASE) {
			t.Fatalf("invalid ASE JSON %s", m.ASE)
		}
	})
}
