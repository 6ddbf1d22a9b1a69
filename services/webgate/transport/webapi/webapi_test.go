package webapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"reflect"
	"testing"

	"github.com/athenaserving/asf/libs/capability"
	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
	"github.com/athenaserving/asf/services/webgate/ase"
	"github.com/athenaserving/asf/services/webgate/gate"
	"github.com/stretchr/testify/assert"
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

// appendResultRef is AppendResult as encoding/json alone does it: the reference the fast
// path must agree with.
func appendResultRef(info *gate.Request, r ase.Renderer, res *atompb.Result) []byte {
	doc := map[string]any{}
	dec := json.NewDecoder(bytes.NewReader(r.AppendResult(nil, res)))
	dec.UseNumber()
	_ = dec.Decode(&doc)
	data, _ := json.Marshal(info.Schema.WebAPI().Response(doc))
	out := append([]byte(`{"code":0,"message":"success","sid":`), ase.AppendString(nil, res.GetSid())...)
	return append(append(append(out, `,"data":`...), data...), '}')
}

// sameJSON reports whether a and b hold the same JSON value.
func sameJSON(t testing.TB, a, b []byte) bool {
	t.Helper()
	var va, vb any
	require.NoError(t, json.Unmarshal(a, &va), "%s", a)
	require.NoError(t, json.Unmarshal(b, &vb), "%s", b)
	return reflect.DeepEqual(va, vb)
}

func TestAppendResultMapsTheASEResult(t *testing.T) {
	sch, err := capability.Parse(echoSchema(t))
	require.NoError(t, err)
	info := &gate.Request{Capability: "echo", Schema: sch, WebAPI: true}
	res := &atompb.Result{Sid: "sid1", Status: 2, Payload: []*atompb.Item{{Name: "result", DataType: "text",
		Attributes: map[string]string{"encoding": "utf8", "status": "2"}, Data: []byte("héllo <&> \"x\"")}}}
	got := AppendResult([]byte("x"), info, ase.DefaultRenderer(), res, "cid1")
	want := `x{"code":0,"message":"success","sid":"sid1","cid":"cid1","data":{"result":"aMOpbGxvIDwmPiAieCI=","status":2}}`
	assert.Equal(t, want, string(got))
}

// FuzzAppendResult: AppendResult renders the same WebAPI 2.0 answer as encoding/json.
func FuzzAppendResult(f *testing.F) {
	sch, err := capability.Parse(echoSchema(f))
	require.NoError(f, err)
	info := &gate.Request{Capability: "echo", Schema: sch, WebAPI: true}
	f.Add("sid", "result", "text", "format", "json", []byte(`{"a":[1,"<x>"]}`), int32(2))
	f.Add("s\u2028", "result", "audio", "seq", "7", []byte{0xff, 0}, int32(1))
	f.Fuzz(func(t *testing.T, sid, name, dataType, key, val string, data []byte, status int32) {
		res := &atompb.Result{Sid: sid, Status: status, Payload: []*atompb.Item{{Name: name, DataType: dataType,
			Attributes: map[string]string{key: val}, Data: data}}}
		r := ase.DefaultRenderer()
		got := AppendResult(nil, info, r, res, "")
		if want := appendResultRef(info, r, res); !sameJSON(t, got, want) {
			t.Fatalf("got %s, encoding/json %s", got, want)
		}
	})
}

// BenchmarkWebAPI measures the WebAPI 2.0 envelope of one once request of the suite's
// WebAPI 2.0 rows (their schema, 1 KB of text): Decode into ASE JSON and AppendResult of
// its echo, without the ASE parsing and rendering every ASE request costs too (but the
// rendering AppendResult maps from).
func BenchmarkWebAPI(b *testing.B) {
	raw, err := os.ReadFile("testdata/bench_echo_schema.json")
	require.NoError(b, err)
	sch, err := capability.Parse(raw)
	require.NoError(b, err)
	info := &gate.Request{Capability: "echo", Schema: sch, WebAPI: true, SID: "sid"}
	text := bytes.Repeat([]byte("athena "), 150)
	body := []byte(`{"business":{},"common":{"app_id":"app1"},"data":{"status":2,"text":"` + base64.StdEncoding.EncodeToString(text) + `"}}`)
	res := &atompb.Result{Sid: "sid", Status: 2, Payload: []*atompb.Item{{Name: "input", DataType: "text",
		Attributes: map[string]string{"encoding": "utf8", "status": "2"}, Data: text}}}
	r := ase.DefaultRenderer()
	var out []byte
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		m, err := Decode(info, body, true)
		if err != nil || len(m.ASE) == 0 {
			b.Fatal(err)
		}
		out = AppendResult(out[:0], info, r, res, "")
	}
}
