package ase

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
	"github.com/athenaserving/asf/services/webgate/internal/goldentest"
	"github.com/stretchr/testify/assert"
)

func TestRenderGolden(t *testing.T) {
	r := DefaultRenderer()
	cases := map[string]*atompb.Result{
		"result_json_inline": {Sid: "ase000e48e5@hu184ebb9f44b05c3882", Status: 1, Payload: []*atompb.Item{{
			Name: "result", DataType: "text",
			Attributes: map[string]string{"encoding": "utf8", "compress": "raw", "format": "json", "status": "1", "seq": "1"},
			Data:       []byte(`{"ws": [ ]}`),
		}}},
		"result_json_invalid_falls_back_to_base64": {Sid: "s1", Status: 2, Payload: []*atompb.Item{{
			Name: "result", DataType: "text",
			Attributes: map[string]string{"format": "json", "status": "2"},
			Data:       []byte(`{"ws":`),
		}}},
		"audio_attrs_typed": {Sid: "s2", Status: 3, Payload: []*atompb.Item{{
			Name: "audio", DataType: "audio",
			Attributes: map[string]string{"encoding": "raw", "sample_rate": "16000", "channels": "1", "bit_depth": "16", "seq": "x1", "ced": "12", "note": "a\"b\n\u2028"},
			Data:       []byte{0, 1, 2, 3, 250},
		}}},
		"two_outputs_no_type": {Sid: "s3", Status: 3, Payload: []*atompb.Item{
			{Name: "b", Attributes: map[string]string{"width": "1.5e3", "height": "-0"}, Data: []byte("hi")},
			{Name: "a", DataType: "image"},
		}},
		"no_payload":   {Sid: "s4", Status: 0},
		"error_result": {Code: 10110, Message: "licence not enough", Sid: "s5", Status: 2},
	}
	for name, res := range cases {
		t.Run(name, func(t *testing.T) {
			goldentest.JSON(t, name, r.AppendResult(nil, res))
		})
	}
	t.Run("error", func(t *testing.T) {
		goldentest.JSON(t, "error", appendError(nil, 10163, "payload.input.audio: invalid base64 \x01", "s6"))
	})
}

func TestRenderTyperIsPluggable(t *testing.T) {
	r := Renderer{Typer: func(output, key string) AttrType {
		if key == "final" {
			return AttrBool
		}
		return AttrString
	}}
	out := r.AppendResult(nil, &atompb.Result{Sid: "s", Payload: []*atompb.Item{{
		Name: "r", DataType: "text", Attributes: map[string]string{"final": "true", "status": "2"},
	}}})
	assert.JSONEq(t, `{"header":{"code":0,"message":"success","sid":"s","status":0},"payload":{"r":{"final":true,"status":"2","text":""}}}`, string(out))
}

func TestIsJSONNumber(t *testing.T) {
	for _, s := range []string{"0", "-0", "12", "1.5", "1e3", "-1.25E-7"} {
		assert.True(t, isJSONNumber(s), s)
	}
	for _, s := range []string{"", "-", "01", "1.", ".5", "+1", "1e", "0x10", "Inf", "NaN", "1_0", " 1"} {
		assert.False(t, isJSONNumber(s), s)
	}
}

func TestHTTPStatus(t *testing.T) {
	assert.Equal(t, 200, HTTPStatus(0))
	assert.Equal(t, 400, HTTPStatus(10163))
	assert.Equal(t, 400, HTTPStatus(10313))
	assert.Equal(t, 404, HTTPStatus(10404))
	assert.Equal(t, 502, HTTPStatus(10110))
	assert.Equal(t, 502, HTTPStatus(12345))
}

func TestSIDGen(t *testing.T) {
	g := NewSIDGen("hu", "10.1.2.3:8889")
	g.now = func() time.Time { return time.UnixMilli(0x184ebb9f44b) }
	s := g.Next()
	assert.Len(t, s, SIDLen)
	assert.True(t, strings.HasPrefix(s, "ase"), s)
	assert.Equal(t, "0001@hu184ebb9f44b", s[7:25])
	assert.Equal(t, byte('2'), s[31])

	other := NewSIDGen("hu", "10.1.2.3:8890")
	assert.NotEqual(t, g.node, other.node, "the listen address identifies the gateway")

	g2 := NewSIDGen("x", "a")
	assert.Equal(t, "x0", string(g2.dc[:]))

	seen := sync.Map{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 1000 {
				id := g2.Next()
				_, dup := seen.LoadOrStore(id, true)
				assert.False(t, dup, id)
			}
		})
	}
	wg.Wait()
}

func FuzzRender(f *testing.F) {
	f.Add("result", "text", "format", "json", []byte(`{"a":1}`), "sid")
	f.Add("r", "audio", "status", "1e9", []byte{0xff}, "\u2028")
	f.Fuzz(func(t *testing.T, name, dataType, key, val string, data []byte, sid string) {
		res := &atompb.Result{Sid: sid, Payload: []*atompb.Item{{
			Name: name, DataType: dataType, Attributes: map[string]string{key: val, "format": "json"}, Data: data,
		}}}
		out := DefaultRenderer().AppendResult(nil, res)
		if !json.Valid(out) {
			t.Fatalf("invalid JSON %q", out)
		}
		var back struct {
			Header struct {
				Sid string `json:"sid"`
			} `json:"header"`
		}
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatal(err)
		}
		// Invalid UTF-8 turns into U+FFFD per byte, as encoding/json does.
		ref, _ := json.Marshal(sid)
		var want string
		_ = json.Unmarshal(ref, &want)
		if want != back.Header.Sid {
			t.Fatalf("sid %q came back as %q", sid, back.Header.Sid)
		}
	})
}
