package ase

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/athenaserving/asf/libs/aserr"
	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
)

const specFirstFrame = `{"header":{"app_id":"your_appid","uid":"u1","status":0},
 "parameter":{"ist":{"eos":1000,"punc":true,"lang":"cn","ratio":0.50,"result":{"encoding":"utf8","compress":"raw","format":"json"}}},
 "payload":{"input":{"encoding":"raw","sample_rate":16000,"channels":1,"bit_depth":16,"status":0,"seq":0,"audio":"AAECAw=="}}}`

func TestParseSpecFirstFrame(t *testing.T) {
	f, err := ParseFrame([]byte(specFirstFrame), "ist", StatusOnce)
	require.NoError(t, err)
	assert.Equal(t, "ist", f.Capability)
	assert.Equal(t, StatusBegin, f.Status)
	assert.Equal(t, map[string]string{"app_id": "your_appid", "uid": "u1"}, f.Header)
	assert.Equal(t, map[string]string{"eos": "1000", "punc": "true", "lang": "cn", "ratio": "0.50"}, f.Params)
	require.Contains(t, f.Accepts, "result")
	assert.Equal(t, map[string]string{"encoding": "utf8", "compress": "raw", "format": "json"}, f.Accepts["result"].Attributes)
	require.Len(t, f.Payload, 1)
	it := f.Payload[0]
	assert.Equal(t, "input", it.Name)
	assert.Equal(t, "audio", it.DataType)
	assert.Equal(t, []byte{0, 1, 2, 3}, it.Data)
	assert.Equal(t, map[string]string{
		"encoding": "raw", "sample_rate": "16000", "channels": "1", "bit_depth": "16", "status": "0", "seq": "0",
	}, it.Attributes)
}

func TestParseFollowUpFrameOnlyPayload(t *testing.T) {
	f, err := ParseFrame([]byte(`{"header":{"status":2},"payload":{"input":{"encoding":"raw","status":2,"seq":2,"audio":""}}}`), "ist", StatusContinue)
	require.NoError(t, err)
	assert.Equal(t, StatusEnd, f.Status)
	assert.Empty(t, f.Header)
	assert.Empty(t, f.Params)
	require.Len(t, f.Payload, 1)
	assert.Equal(t, "audio", f.Payload[0].DataType)
	assert.Empty(t, f.Payload[0].Data)

	f, err = ParseFrame([]byte(`{"payload":{"input":{"audio":"AA=="}}}`), "ist", StatusContinue)
	require.NoError(t, err)
	assert.Equal(t, StatusContinue, f.Status, "default status when header.status is absent")
}

func TestParseHeaderVariants(t *testing.T) {
	f, err := ParseFrame([]byte(`{"header":{"appid":"a1","status":"3","sid":"client","cid":7,"x":{"y":[1, 2]},"n":null}}`), "c", StatusBegin)
	require.NoError(t, err)
	assert.Equal(t, StatusOnce, f.Status)
	assert.Equal(t, map[string]string{"app_id": "a1", "cid": "7", "x": `{"y":[1,2]}`}, f.Header)

	f, err = ParseFrame([]byte(`{"header":{"appid":"a1","app_id":"a2"}}`), "c", StatusOnce)
	require.NoError(t, err)
	assert.Equal(t, "a2", f.Header["app_id"], "app_id wins over appid")
}

func TestParseParameterSingleOtherKey(t *testing.T) {
	f, err := ParseFrame([]byte(`{"parameter":{"s8e098":{"k":"v"}}}`), "tts", StatusOnce)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"k": "v"}, f.Params)

	f, err = ParseFrame([]byte(`{"parameter":{"a":{"k":"v"},"b":{"k":"w"}}}`), "tts", StatusOnce)
	require.NoError(t, err)
	assert.Empty(t, f.Params, "ambiguous parameter keys are not guessed")
}

func TestParseEscapes(t *testing.T) {
	// Some encoders escape '/' as "\/" in base64 text.
	raw := []byte{0xfb, 0xff, 0xbf}
	b64 := base64.StdEncoding.EncodeToString(raw) // "+/+/"
	escaped := strings.ReplaceAll(b64, "/", `\/`)
	f, err := ParseFrame([]byte(`{"payload":{"img":{"image":"`+escaped+`","name":"a\"b"}}}`), "c", StatusOnce)
	require.NoError(t, err)
	assert.Equal(t, raw, f.Payload[0].Data)
	assert.Equal(t, `a"b`, f.Payload[0].Attributes["name"])
}

func TestParsePayloadOrderIsByName(t *testing.T) {
	f, err := ParseFrame([]byte(`{"payload":{"b":{"text":""},"a":{"text":""},"c":{"text":""}}}`), "c", StatusOnce)
	require.NoError(t, err)
	var names []string
	for _, it := range f.Payload {
		names = append(names, it.Name)
	}
	assert.Equal(t, []string{"a", "b", "c"}, names)
}

func TestParseErrorsAre10163(t *testing.T) {
	cases := map[string]struct {
		in      string
		mention string
	}{
		"not json":        {`{"header":`, "json"},
		"not object":      {`[1,2]`, "json"},
		"header array":    {`{"header":[1]}`, "json"},
		"bad base64":      {`{"payload":{"input":{"audio":"@@@"}}}`, "payload.input.audio"},
		"data not string": {`{"payload":{"input":{"audio":12}}}`, "payload.input.audio"},
		"two data fields": {`{"payload":{"input":{"audio":"","text":""}}}`, "payload.input"},
		"item not object": {`{"payload":{"input":"x"}}`, "json"},
		"bad status":      {`{"header":{"status":7}}`, "header.status"},
		"status text":     {`{"header":{"status":"x"}}`, "header.status"},
		"parameter array": {`{"parameter":{"c":[1]}}`, "parameter.c"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := ParseFrame([]byte(tc.in), "c", StatusOnce)
			require.Error(t, err)
			assert.Equal(t, aserr.ErrBadRequest.Code, aserr.CodeOf(err))
			assert.Contains(t, aserr.MessageOf(err), tc.mention)
		})
	}
}

func FuzzParseFrame(f *testing.F) {
	f.Add([]byte(specFirstFrame))
	f.Add([]byte(`{"header":{"status":2},"payload":{"input":{"audio":""}}}`))
	f.Add([]byte(`{"header":{"appid":"x"},"parameter":{"c":{"r":{"format":"json"}}},"payload":{"a":{"text":"e30="}}}`))
	f.Add([]byte(`{"payload":{"a":{"image":"\/\/8="}}}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"Header":{"status":1},"payload":{"a":{"text":"AA==","x":[1,{"y":null}],"n":-1.5e3}},"z":true}`))
	f.Add([]byte(`{"header":{"status":1,"status":2},"payload":{"a":{"text":"AA=="},"b":null}}`))
	for _, build := range hostileShapes {
		f.Add(build(40)) // past keySet's linear scan, so the fuzzer mutates the map path too
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		checkFastPath(t, in)
		fr, err := ParseFrame(in, "c", StatusOnce)
		if err != nil {
			if code := aserr.CodeOf(err); code != aserr.ErrBadRequest.Code {
				t.Fatalf("error code %d, want 10163: %v", code, err)
			}
			return
		}
		if !json.Valid(in) {
			t.Fatalf("accepted invalid JSON %q", in)
		}
		if !utf8.Valid(in) {
			t.Fatalf("accepted invalid UTF-8 %q", in)
		}
		if err := CheckUTF8(fr); err != nil {
			t.Fatalf("accepted a frame with invalid UTF-8: %v", err)
		}
		if fr.Status < StatusBegin || fr.Status > StatusOnce {
			t.Fatalf("status %d out of range", fr.Status)
		}
		res := &atompb.Result{Sid: "s", Status: fr.Status}
		for _, it := range fr.Payload {
			if it.DataType != "" && !isDataField(it.DataType) {
				t.Fatalf("data type %q", it.DataType)
			}
			res.Payload = append(res.Payload, it)
		}
		out := DefaultRenderer().AppendResult(nil, res)
		if !json.Valid(out) {
			t.Fatalf("rendered invalid JSON %q from %q", out, in)
		}
	})
}

// checkFastPath asserts that the scanner and the encoding/json path agree on in.
func checkFastPath(t *testing.T, in []byte) {
	t.Helper()
	fast, ferr := parseFrame(in, "c", StatusOnce, true)
	slow, serr := parseFrame(in, "c", StatusOnce, false)
	if (ferr == nil) != (serr == nil) {
		t.Fatalf("fast path error %v, encoding/json path error %v for %q", ferr, serr, in)
	}
	if ferr == nil && !proto.Equal(fast, slow) {
		t.Fatalf("fast path %v, encoding/json path %v for %q", fast, slow, in)
	}
	if v, ok := DecodeJSON(in); ok {
		d := json.NewDecoder(bytes.NewReader(in))
		d.UseNumber()
		var want any
		if err := d.Decode(&want); err != nil {
			t.Fatalf("DecodeJSON accepted %q: %v", in, err)
		}
		if _, err := d.Token(); err != io.EOF {
			t.Fatalf("DecodeJSON accepted trailing data in %q", in)
		}
		if !reflect.DeepEqual(v, want) {
			t.Fatalf("DecodeJSON %#v, encoding/json %#v for %q", v, want, in)
		}
	}
}

func TestFastPathMatchesEncodingJSON(t *testing.T) {
	for _, in := range []string{
		specFirstFrame,
		`{"header":{"appid":"a1","status":"3","sid":"client","cid":7,"x":{"y":[1, 2]},"n":null}}`,
		`{"header":{"appid":"a1","app_id":"a2"}}`,
		`{"HEADER":{"status":1}}`,
		`{"header":{"status":1},"header":{"status":2}}`,
		`{"payload":{"a":{"text":"AA==","audio":"AA=="}}}`,
		`{"payload":{"a":null,"b":{"text":null}}}`,
		`{"payload":{"a":{"text":"\/\/8="}}}`,
		`{"payload":{"a":{"text":"é"}}}`,
		`{"parameter":{"c":{"r":{"format":"json"}},"d":1}}`,
		`{"x":[1,2,{"a":[]}],"payload":{}} `,
		`{"header":{"status":01}}`,
		`{"header":{"status":1}}x`,
		`[]`, `null`, ``, `{`, `{"header":}`, `{"a":1,}`,
	} {
		checkFastPath(t, []byte(in))
	}
}
