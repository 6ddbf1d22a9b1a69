package worker

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/services/loader/engine"
)

func sampleRequest() engine.Request {
	return engine.Request{
		Tag:     "sid-1",
		Headers: map[string]string{"app_id": "a1", "uid": "u"},
		Params:  map[string]string{"lang": "zh", "empty": ""},
		Expect:  []engine.Meta{{Name: "result", Type: engine.DataText, Attrs: map[string]string{"encoding": "utf8"}}},
		Inputs: []engine.Payload{
			{Meta: engine.Meta{Name: "audio", Type: engine.DataAudio, Attrs: map[string]string{"sample_rate": "16000"}}, Data: []byte{0, 1, 2, 255}},
			{Meta: engine.Meta{Name: "text", Type: engine.DataText}, Data: []byte("hello")},
		},
		PsrIDs: []uint32{7, 1 << 31},
	}
}

func TestCodecRoundTrip(t *testing.T) {
	req := sampleRequest()
	var e Encoder
	e.Request(req)
	d := newDecoder(e.B)
	if got := d.Request(); d.Done() != nil || !reflect.DeepEqual(got, req) {
		t.Fatalf("request: got %+v err %v", got, d.Err())
	}

	sp := engine.SessionParams{Tag: "s", Params: map[string]string{"k": "v"}, Expect: req.Expect, PsrIDs: []uint32{3}}
	e = Encoder{}
	e.SessionParams(sp)
	d = newDecoder(e.B)
	if got := d.SessionParams(); d.Done() != nil || !reflect.DeepEqual(got, sp) {
		t.Fatalf("session params: got %+v err %v", got, d.Err())
	}

	f := engine.Frame{SyncID: -1, Status: engine.StatusEnd, Inputs: req.Inputs}
	e = Encoder{}
	e.Write(42, f)
	d = newDecoder(e.B)
	if sid, got := d.Write(); d.Done() != nil || sid != 42 || !reflect.DeepEqual(got, f) {
		t.Fatalf("write: got %d %+v err %v", sid, got, d.Err())
	}

	res := engine.Result{Status: engine.StatusContinue, Outputs: req.Inputs, Engine: 1500 * time.Microsecond}
	e = Encoder{}
	e.Result(res)
	d = newDecoder(e.B)
	if got := d.Result(); d.Done() != nil || !reflect.DeepEqual(got, res) {
		t.Fatalf("result: got %+v err %v", got, d.Err())
	}

	e = Encoder{}
	e.Result(engine.Result{Status: engine.StatusEnd, Err: aserr.New(30003, "boom")})
	d = newDecoder(e.B)
	if got := d.Result(); d.Done() != nil || aserr.CodeOf(got.Err) != 30003 || aserr.MessageOf(got.Err) != "boom" {
		t.Fatalf("result error: got %+v err %v", got, d.Err())
	}

	e = Encoder{}
	e.Error(aserr.ErrEngineCrashed)
	d = newDecoder(e.B)
	if err := d.Error(); d.Done() != nil || !errors.Is(err, aserr.ErrEngineCrashed) {
		t.Fatalf("error: got %v", err)
	}
	e = Encoder{}
	e.Response(engine.Response{})
	d = newDecoder(e.B)
	if got := d.Response(); d.Done() != nil || got.Outputs != nil {
		t.Fatalf("empty response: %+v", got)
	}
}

func TestFrames(t *testing.T) {
	var buf []byte
	buf = appendFrame(buf, MsgOnce, 1<<40, []byte("body"))
	buf = appendFrame(buf, MsgFini, 2, nil)
	r := bytes.NewReader(buf)
	m, err := readFrame(r)
	if err != nil || m.Type != MsgOnce || m.ID != 1<<40 || string(m.Body) != "body" {
		t.Fatalf("frame 1: %+v %v", m, err)
	}
	m, err = readFrame(r)
	if err != nil || m.Type != MsgFini || m.ID != 2 || m.Body != nil {
		t.Fatalf("frame 2: %+v %v", m, err)
	}
	if _, err := readFrame(r); err != io.EOF {
		t.Fatalf("end: %v, want EOF", err)
	}
	if _, err := readFrame(bytes.NewReader(buf[:10])); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated: %v", err)
	}
	if _, err := readFrame(bytes.NewReader([]byte{0, 0, 0, 3, 1, 2, 3})); !errors.Is(err, errMalformed) {
		t.Fatalf("short length: %v", err)
	}
	if _, err := readFrame(bytes.NewReader([]byte{0xff, 0xff, 0xff, 0xff})); !errors.Is(err, errMalformed) {
		t.Fatalf("huge length: %v", err)
	}
}

func TestDecoderRejects(t *testing.T) {
	var e Encoder
	e.Request(sampleRequest())
	for i := range len(e.B) - 1 {
		d := newDecoder(e.B[:i])
		d.Request()
		if !errors.Is(d.Done(), errMalformed) {
			t.Fatalf("truncated at %d: no error", i)
		}
	}
	d := newDecoder(append(append([]byte(nil), e.B...), 0))
	d.Request()
	if !errors.Is(d.Done(), errMalformed) {
		t.Fatal("trailing byte accepted")
	}
	// A list count far beyond the remaining bytes must fail without allocating it.
	d = newDecoder([]byte{0xff, 0xff, 0xff, 0xff})
	if d.Map(); !errors.Is(d.Done(), errMalformed) {
		t.Fatal("huge count accepted")
	}
}

func FuzzDecode(f *testing.F) {
	var e Encoder
	e.Request(sampleRequest())
	f.Add(appendFrame(nil, MsgOnce, 1, e.B))
	e = Encoder{}
	e.Write(3, engine.Frame{Status: engine.StatusBegin, Inputs: sampleRequest().Inputs})
	f.Add(appendFrame(nil, MsgWrite, 2, e.B))
	e = Encoder{}
	e.Result(engine.Result{Status: engine.StatusEnd, Err: aserr.New(1, "x")})
	f.Add(appendFrame(nil, MsgResult, 3, e.B))
	f.Add([]byte{0, 0, 0, 9, 1, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := readFrame(bytes.NewReader(b))
		if err != nil {
			m = Message{Body: b}
		}
		d := newDecoder(m.Body)
		req := d.Request()
		if d.Done() == nil {
			var e Encoder
			e.Request(req)
			d2 := newDecoder(e.B)
			if got := d2.Request(); d2.Done() != nil || !reflect.DeepEqual(got, req) {
				t.Fatalf("request re-encode mismatch: %+v vs %+v", got, req)
			}
		}
		for _, dec := range []func(*Decoder){
			func(d *Decoder) { d.SessionParams() },
			func(d *Decoder) { d.Write() },
			func(d *Decoder) { d.Result() },
			func(d *Decoder) { _ = d.Error() },
			func(d *Decoder) { d.Response() },
			func(d *Decoder) { d.Map() },
			func(d *Decoder) { d.SessionID() },
		} {
			d := newDecoder(m.Body)
			dec(d)
			_ = d.Done()
		}
	})
}
