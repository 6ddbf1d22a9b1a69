package webgate

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/athenaserving/asf/libs/aserr"
	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
)

// knownAtom is echoAtom that, as atom does, answers 10404 for a capability it does not know.
type knownAtom struct {
	echoAtom
	unknown string
}

func (a *knownAtom) Call(ctx context.Context, f *atompb.Frame) (*atompb.Result, error) {
	if f.GetCapability() == a.unknown {
		return &atompb.Result{Code: int32(aserr.ErrNotFound.Code), Message: aserr.ErrNotFound.Msg}, nil
	}
	return a.echoAtom.Call(ctx, f)
}

const numSchema = `{"meta":{"serviceId":"num","version":"3",
  "num":{"input":{"count":{"dataType":"text"},"score":{"dataType":"text"},"flag":{"dataType":"text"},"audio":{"dataType":"audio"},"word":{"dataType":"text"}},
         "accept":{"count":{"dataType":"text"},"score":{"dataType":"text"},"flag":{"dataType":"text"},"audio":{"dataType":"audio"},"word":{"dataType":"text"}}}},
 "schemaoutput":{"properties":{"payload":{"properties":{
   "count":{"properties":{"text":{"type":"integer"}}},
   "score":{"properties":{"text":{"type":"number","format":"float"}}},
   "flag":{"properties":{"text":{"type":"boolean"}}},
   "word":{"properties":{"text":{"type":"string"}}}}}}}}`

// startOIP runs a webgate (authentication off, schemas echo and num) with a polaris whose
// registry the test sets, and an atom that does not know capability "nope".
func startOIP(t *testing.T) *env {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	fake := &knownAtom{unknown: "nope"}
	gs := grpc.NewServer()
	atompb.RegisterAtomServer(gs, fake)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	files := defaultFiles()
	files["capabilities/schema_num.json"] = numSchema
	polAddr, fp := startPolaris(t)
	for k, v := range files {
		svc, file, _ := strings.Cut(k, "/")
		fp.push(svc, file, v)
	}
	cfg := testConfig(lis.Addr().String())
	cfg.Polaris, cfg.DataDir = polAddr, t.TempDir()
	srv, err := New(cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel), nil)
	require.NoError(t, err)
	require.NoError(t, srv.Start(t.Context()))
	t.Cleanup(func() {
		require.NoError(t, srv.Shutdown(context.Background()))
		http.DefaultClient.CloseIdleConnections()
	})
	return &env{srv: srv, atom: &fake.echoAtom, polaris: fp}
}

// TestOIPModelsFollowTheRegistry: a model with neither a schema nor a registered loader is
// 404 on ready, metadata and infer; ready is true only while a live loader (of the version
// asked) exists; a version no loader registered is 404; metadata lists the registered
// engine versions.
func TestOIPModelsFollowTheRegistry(t *testing.T) {
	e := startOIP(t)
	reg := &e.polaris.registry
	reg.setLoaders("echo", loaderState("echo", "1.0", "127.0.0.1:1", true), loaderState("echo", "2.0", "127.0.0.1:2", false))

	for _, p := range []string{"/v2/models/nope/ready", "/v2/models/nope", "/v2/models/nope/versions/1/ready"} {
		st, body := get(t, e.url(p))
		assert.Equal(t, http.StatusNotFound, st, p)
		assert.JSONEq(t, `{"error":"model nope not found"}`, body, p)
	}
	st, body, _ := post(t, e.url("/v2/models/nope/infer"), `{"inputs":[{"name":"input","shape":[1],"datatype":"BYTES","data":["x"]}]}`)
	assert.Equal(t, http.StatusNotFound, st, body)

	st, body = get(t, e.url("/v2/models/echo/ready"))
	assert.Equal(t, http.StatusOK, st)
	assert.JSONEq(t, `{"name":"echo","ready":true}`, body)
	st, body = get(t, e.url("/v2/models/echo/versions/1.0/ready"))
	assert.Equal(t, http.StatusOK, st)
	assert.JSONEq(t, `{"name":"echo","version":"1.0","ready":true}`, body)
	st, body = get(t, e.url("/v2/models/echo/versions/2.0/ready"))
	assert.Equal(t, http.StatusBadRequest, st, "a version whose loaders are not live is not ready")
	assert.JSONEq(t, `{"name":"echo","version":"2.0","ready":false}`, body)
	for _, p := range []string{"/v2/models/echo/versions/9/ready", "/v2/models/echo/versions/9"} {
		st, body = get(t, e.url(p))
		assert.Equal(t, http.StatusNotFound, st, p)
		assert.JSONEq(t, `{"error":"model echo has no version 9"}`, body, p)
	}
	st, body = get(t, e.url("/v2/models/echo/versions/2.0"))
	require.Equal(t, http.StatusOK, st, body)
	var meta struct{ Versions []string }
	require.NoError(t, json.Unmarshal([]byte(body), &meta))
	assert.Equal(t, []string{"1.0", "2.0"}, meta.Versions)

	// The live loader goes offline: the model is known (schema, registered loaders) but not ready.
	reg.setLoaders("echo", loaderState("echo", "1.0", "127.0.0.1:1", false))
	st, body = get(t, e.url("/v2/models/echo/ready"))
	assert.Equal(t, http.StatusBadRequest, st)
	assert.JSONEq(t, `{"name":"echo","ready":false}`, body)
	// No loader at all: still known by its schema, not ready.
	reg.setLoaders("echo")
	st, _ = get(t, e.url("/v2/models/echo/ready"))
	assert.Equal(t, http.StatusBadRequest, st)
	st, _ = get(t, e.url("/v2/models/echo"))
	assert.Equal(t, http.StatusOK, st)

	// A model without a schema is known by its registered loaders.
	reg.setLoaders("bare", loaderState("bare", "", "127.0.0.1:3", true))
	st, body = get(t, e.url("/v2/models/bare/ready"))
	assert.Equal(t, http.StatusOK, st)
	assert.JSONEq(t, `{"name":"bare","ready":true}`, body)
	st, _ = get(t, e.url("/v2/models/bare"))
	assert.Equal(t, http.StatusOK, st)
}

// TestOIPOutputsFollowTheSchema: outputs are typed by the capability schema — in metadata
// and in infer answers: integer → INT64, number with format float → FP32, boolean → BOOL,
// with shape [n] for n elements; text → BYTES [1]; audio → BYTES [1] in base64; a text that
// does not parse as its declared type stays BYTES.
func TestOIPOutputsFollowTheSchema(t *testing.T) {
	e := startOIP(t)
	e.polaris.registry.setLoaders("num", loaderState("num", "3", "127.0.0.1:1", true))
	st, body := get(t, e.url("/v2/models/num"))
	require.Equal(t, http.StatusOK, st, body)
	assert.JSONEq(t, `{"name":"num","platform":"asf","versions":["3"],
	  "inputs":[{"name":"audio","datatype":"BYTES","shape":[-1]},{"name":"count","datatype":"BYTES","shape":[-1]},{"name":"flag","datatype":"BYTES","shape":[-1]},{"name":"score","datatype":"BYTES","shape":[-1]},{"name":"word","datatype":"BYTES","shape":[-1]}],
	  "outputs":[{"name":"audio","datatype":"BYTES","shape":[-1]},{"name":"count","datatype":"INT64","shape":[-1]},{"name":"flag","datatype":"BOOL","shape":[-1]},{"name":"score","datatype":"FP32","shape":[-1]},{"name":"word","datatype":"BYTES","shape":[-1]}]}`, body)

	pcm := base64.StdEncoding.EncodeToString([]byte{0xff, 0x00, 0xfe})
	infer := `{"id":"r","inputs":[
	  {"name":"count","shape":[1],"datatype":"BYTES","data":["1 2, 3"]},
	  {"name":"score","shape":[1],"datatype":"BYTES","data":["0.5"]},
	  {"name":"flag","shape":[1],"datatype":"BYTES","data":["true"]},
	  {"name":"word","shape":[1],"datatype":"BYTES","data":["42"]},
	  {"name":"audio","shape":[1],"datatype":"BYTES","parameters":{"content_encoding":"base64"},"data":["` + pcm + `"]}]}`
	st, body, _ = post(t, e.url("/v2/models/num/infer"), infer)
	require.Equal(t, http.StatusOK, st, body)
	var out struct {
		Outputs []struct {
			Name, Datatype string
			Shape          []int64
			Data           []any
			Parameters     map[string]any
		}
	}
	require.NoError(t, json.Unmarshal([]byte(body), &out))
	got := map[string]string{}
	for _, o := range out.Outputs {
		b, _ := json.Marshal(map[string]any{"datatype": o.Datatype, "shape": o.Shape, "data": o.Data})
		got[o.Name] = string(b)
		if o.Name == "audio" {
			assert.Equal(t, "base64", o.Parameters["content_encoding"])
		}
	}
	assert.JSONEq(t, `{"datatype":"INT64","shape":[3],"data":[1,2,3]}`, got["count"])
	assert.JSONEq(t, `{"datatype":"FP32","shape":[1],"data":[0.5]}`, got["score"])
	assert.JSONEq(t, `{"datatype":"BOOL","shape":[1],"data":[true]}`, got["flag"])
	assert.JSONEq(t, `{"datatype":"BYTES","shape":[1],"data":["42"]}`, got["word"])
	assert.JSONEq(t, `{"datatype":"BYTES","shape":[1],"data":["`+pcm+`"]}`, got["audio"])

	infer = `{"inputs":[{"name":"count","shape":[1],"datatype":"BYTES","data":["many"]}]}`
	st, body, _ = post(t, e.url("/v2/models/num/infer"), infer)
	require.Equal(t, http.StatusOK, st, body)
	out.Outputs = nil
	require.NoError(t, json.Unmarshal([]byte(body), &out))
	require.Len(t, out.Outputs, 1)
	assert.Equal(t, "BYTES", out.Outputs[0].Datatype, "a text that is not an integer stays BYTES")
	assert.Equal(t, []int64{1}, out.Outputs[0].Shape)
	assert.Equal(t, []any{"many"}, out.Outputs[0].Data)
}
