package convert

import (
	"testing"

	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
	loaderpb "github.com/athenaserving/asf/libs/proto/loader/v1"
)

func benchMeta() *Meta {
	return &Meta{
		Inputs:  map[string]string{"input": "audio"},
		Accepts: map[string]string{"result": "text"},
		OutputAttrType: func(_, key string) string {
			if key == "status" || key == "seq" {
				return "integer"
			}
			return ""
		},
	}
}

// BenchmarkToLoaderInput converts a typical later streaming frame (40 ms of audio).
func BenchmarkToLoaderInput(b *testing.B) {
	f := &atompb.Frame{
		Capability: "echo", Sid: "ase000e48e5@hu184ebb9f44b05c3882", Status: StatusContinue,
		Payload: []*atompb.Item{{
			Name: "input", DataType: "audio", Data: make([]byte, 1280),
			Attributes: map[string]string{"encoding": "raw", "sample_rate": "16000", "channels": "1", "bit_depth": "16", "status": "1", "seq": "1"},
		}},
	}
	meta := benchMeta()
	b.ReportAllocs()
	for b.Loop() {
		_ = ToLoaderInput(f, 1, meta)
	}
}

// BenchmarkNewResult converts a typical loader output back into a result.
func BenchmarkNewResult(b *testing.B) {
	out := &loaderpb.LoaderOutput{
		ServiceId: "echo", Status: loaderpb.Status_STATUS_CONTINUE, LoaderNs: 1000, EngineNs: 500,
		Pl: []*loaderpb.Payload{{
			Meta: &loaderpb.MetaDesc{Name: "result", DataType: loaderpb.DataType_DATA_TYPE_TEXT,
				Attribute: map[string]string{"encoding": "utf8", "status": "1", "seq": "1"}},
			Data: make([]byte, 1280),
		}},
	}
	meta := benchMeta()
	expect := []*loaderpb.MetaDesc{{Name: "result", DataType: loaderpb.DataType_DATA_TYPE_TEXT}}
	b.ReportAllocs()
	for b.Loop() {
		_ = NewResult(out, meta, "ase000e48e5@hu184ebb9f44b05c3882", expect)
	}
}
