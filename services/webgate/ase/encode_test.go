package ase

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// marshalNoHTML is encoding/json's output with HTML escaping off, AppendJSON's reference.
func marshalNoHTML(t testing.TB, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	require.NoError(t, enc.Encode(v))
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	many := map[string]any{}
	for _, k := range []string{"q", "b", "z", "a", "m", "c", "y", "d", "x", "e", "w", "f", "v", "g", "u", "h", "t", "i"} {
		many[k] = k
	}
	for name, v := range map[string]any{
		"null":          nil,
		"string":        "a \"quoted\" \\ <tag> & \u2028 \xff é",
		"number":        json.Number("-12.5e+3"),
		"empty number":  json.Number(""),
		"bools":         []any{true, false},
		"int":           -42,
		"floats":        []any{0.0, 1.5, 1e-7, 123456789.0, 1e21, -2.5e-300, 1e20},
		"nested":        map[string]any{"header": map[string]any{"status": 2, "app_id": "x"}, "payload": map[string]any{"input": map[string]any{"text": "aGk="}}, "list": []any{}},
		"sorted keys":   many,
		"empty object":  map[string]any{},
		"nil list":      []any(nil),
		"nil object":    map[string]any(nil),
		"control chars": "\n\r\t\x01",
	} {
		t.Run(name, func(t *testing.T) {
			got, ok := AppendJSON([]byte("prefix:"), v)
			require.True(t, ok)
			assert.Equal(t, "prefix:"+string(marshalNoHTML(t, v)), string(got))
		})
	}
}

func TestAppendJSONRefuses(t *testing.T) {
	deep := any("x")
	for range maxEncodeDepth + 1 {
		deep = []any{deep}
	}
	for name, v := range map[string]any{
		"NaN":          math.NaN(),
		"infinity":     math.Inf(-1),
		"bad number":   json.Number("1.2.3"),
		"other type":   struct{}{},
		"int64":        int64(1),
		"inside a map": map[string]any{"a": []any{1, struct{}{}}},
		"too deep":     deep,
	} {
		t.Run(name, func(t *testing.T) {
			_, ok := AppendJSON(nil, v)
			assert.False(t, ok)
		})
	}
}

// FuzzAppendJSON: whatever encoding/json decodes (numbers as json.Number), AppendJSON
// encodes to the same value; for a document on DecodeJSON's fast path, to the same bytes
// as encoding/json with HTML escaping off.
func FuzzAppendJSON(f *testing.F) {
	f.Add([]byte(`{"common":{"app_id":"a"},"business":{},"data":{"status":2,"text":"aGk="}}`))
	f.Add([]byte(`[1,-2.5e10,"\u00e9\b\f\n",true,null,{"b":{},"a":[]}]`))
	f.Add([]byte(`"<&>\u2028"`))
	f.Fuzz(func(t *testing.T, in []byte) {
		dec := json.NewDecoder(bytes.NewReader(in))
		dec.UseNumber()
		var v any
		if dec.Decode(&v) != nil {
			return
		}
		out, ok := AppendJSON(nil, v)
		if !ok {
			t.Fatalf("refused %q", in)
		}
		back := json.NewDecoder(bytes.NewReader(out))
		back.UseNumber()
		var w any
		if err := back.Decode(&w); err != nil {
			t.Fatalf("%q encoded as invalid JSON %q: %v", in, out, err)
		}
		if !reflect.DeepEqual(v, w) {
			t.Fatalf("%q came back as %#v, not %#v", in, w, v)
		}
		if fast, ok := DecodeJSON(in); ok {
			got, _ := AppendJSON(nil, fast)
			if want := marshalNoHTML(t, fast); !bytes.Equal(got, want) {
				t.Fatalf("%q: AppendJSON %q, encoding/json %q", in, got, want)
			}
		}
	})
}
