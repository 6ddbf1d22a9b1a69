package capability

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"
)

// benchCase is a capability of the repository and a typical request of it: 40 ms of
// 16 kHz 16-bit audio (1280 bytes, base64) in its data field.
type benchCase struct {
	name, file string
	frame      func(audio string) string
	first      string
}

var benchCases = []benchCase{
	{
		// The bench's capability (make bench, tools/asfbench): the compose echo schema.
		name: "echo", file: "deploy/compose/config/asf/default/capabilities/v1/schema_echo.json",
		frame: func(audio string) string {
			return `{"header":{"app_id":"app1","status":1},"payload":{"input":{"encoding":"raw","status":1,"seq":1,"text":"` + audio + `"}}}`
		},
		first: `{"header":{"app_id":"app1","status":0},"parameter":{"echo":{}}}`,
	},
	{
		// A schema with enums, a pattern and additionalProperties: false.
		name: "asr", file: "examples/engines/asr/schema_asr.json",
		frame: func(audio string) string {
			return `{"header":{"app_id":"app1","status":1},"payload":{"audio":{"encoding":"raw","sample_rate":16000,"channels":1,"bit_depth":16,"status":1,"seq":1,"audio":"` + audio + `"}}}`
		},
		first: `{"header":{"app_id":"app1","uid":"u1","status":0},"parameter":{"asr":{"threshold":"0.5","result":{"encoding":"utf8","format":"json"}}}}`,
	},
}

func benchSchema(b *testing.B, c benchCase) *Schema {
	data, err := os.ReadFile(filepath.Join(repoRoot(b), c.file))
	if err != nil {
		b.Skip("schema not found:", err)
	}
	s, err := Parse(data)
	if err != nil {
		b.Fatal(err)
	}
	if s.check == nil {
		b.Fatal("schemainput not compiled")
	}
	return s
}

// BenchmarkValidate compares the jsonschema library with the compiled validator on a
// typical request: "tree" validates the decoded document (Validate), "bytes" a message
// (the library: decoding plus Validate, as webgate did; compiled: ValidateJSON), "later" a
// later WebSocket frame over the session's first (the library: decoding, the merged view
// and Validate; compiled: ValidateOver).
func BenchmarkValidate(b *testing.B) {
	audio := base64.StdEncoding.EncodeToString(make([]byte, 1280))
	for _, c := range benchCases {
		s := benchSchema(b, c)
		data := []byte(c.frame(audio))
		doc, err := DecodeJSON(data)
		if err != nil {
			b.Fatal(err)
		}
		base := DecodeMembers([]byte(c.first), "header", "parameter")
		keys := []string{"header", "parameter"}
		run := func(name string, f func() error) {
			b.Run(c.name+"/"+name, func(b *testing.B) {
				b.SetBytes(int64(len(data)))
				b.ReportAllocs()
				for b.Loop() {
					if err := f(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		run("tree/library", func() error { return s.validateLibrary(doc) })
		run("tree/compiled", func() error { return s.Validate(doc) })
		run("bytes/library", func() error {
			v, err := decodeDocument(data)
			if err != nil {
				return err
			}
			return s.validateLibrary(v)
		})
		run("bytes/compiled", func() error { return s.ValidateJSON(data) })
		run("later/library", func() error {
			v, err := decodeDocument(data)
			if err != nil {
				return err
			}
			return s.validateLibrary(overlayTop(v, base, keys))
		})
		run("later/compiled", func() error { return s.ValidateOver(data, base, keys) })
	}
}
