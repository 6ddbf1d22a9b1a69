package ase

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"

	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
)

// BenchmarkParseFrame parses a typical streaming frame: 40 ms of 16 kHz 16-bit PCM.
func BenchmarkParseFrame(b *testing.B) {
	audio := base64.StdEncoding.EncodeToString(make([]byte, 1280))
	in := []byte(`{"header":{"app_id":"your_appid","status":1},"payload":{"input":{"encoding":"raw","sample_rate":16000,"channels":1,"bit_depth":16,"status":1,"seq":1,"audio":"` + audio + `"}}}`)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseFrame(in, "ist", StatusContinue); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendResult renders a typical recognition result with inline JSON.
func BenchmarkAppendResult(b *testing.B) {
	res := &atompb.Result{Sid: "ase000e48e5@hu184ebb9f44b05c3882", Status: 1, Payload: []*atompb.Item{{
		Name: "result", DataType: "text",
		Attributes: map[string]string{"encoding": "utf8", "compress": "raw", "format": "json", "status": "1", "seq": "1"},
		Data:       []byte(`{"ws":[{"bg":0,"cw":[{"w":"hello","sc":0.9}]},{"bg":40,"cw":[{"w":"world","sc":0.8}]}]}`),
	}}}
	r := DefaultRenderer()
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = r.AppendResult(buf[:0], res)
	}
}

// BenchmarkAppendString measures JSON string rendering: base64 (the data of most
// payloads), Chinese text (results) and text with escapes.
func BenchmarkAppendString(b *testing.B) {
	for name, s := range map[string]string{
		"base64":  base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("athena "), 150)),
		"chinese": strings.Repeat("科大讯飞语音识别", 40),
		"escapes": strings.Repeat(`a "quoted" line\n`, 40),
	} {
		b.Run(name, func(b *testing.B) {
			var buf []byte
			b.SetBytes(int64(len(s)))
			for b.Loop() {
				buf = AppendString(buf[:0], s)
			}
		})
	}
}
