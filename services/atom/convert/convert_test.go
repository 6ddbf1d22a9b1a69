package convert

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/athenaserving/asf/libs/aserr"
	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
	loaderpb "github.com/athenaserving/asf/libs/proto/loader/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// golden compares the canonical JSON of m with testdata/<name>.golden.
func golden(t *testing.T, name string, m proto.Message) {
	t.Helper()
	raw, err := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	// protojson output is deliberately unstable in whitespace; re-encode canonically.
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update to create): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden:\n--- got\n%s--- want\n%s", name, got, want)
	}
}

func item(name, dt string, data string, attrs map[string]string) *atompb.Item {
	return &atompb.Item{Name: name, DataType: dt, Data: []byte(data), Attributes: attrs}
}

func TestToLoaderInputGolden(t *testing.T) {
	meta := &Meta{
		Service: "echo-loader",
		Accepts: map[string]string{"result": "text", "picture": "image", "speech": "audio"},
		Inputs:  map[string]string{"untyped": "video", "declared": "audio"},
	}
	multi := &Meta{
		Inputs:  map[string]string{"audio": "audio", "ref": "text", "face": "image"},
		Accepts: map[string]string{"result": "text", "tts": "audio", "frame": "video", "blob": "other"},
	}
	header := map[string]string{"app_id": "app1", "uid": "u1", "did": "d1", "client_ip": "10.0.0.1", "res_id": "r1"}
	cases := []struct {
		name   string
		frame  *atompb.Frame
		syncID int32
		meta   *Meta
	}{
		{"input_once_all_types", &atompb.Frame{
			Capability: "echo", Sid: "ase0001@gw", Status: 3, Header: header,
			Params: map[string]string{"eos": "1000", "lang": "cn"},
			Accepts: map[string]*atompb.Accept{
				"result":  {Attributes: map[string]string{"encoding": "utf8", "compress": "raw", "format": "json"}},
				"picture": {Attributes: map[string]string{"encoding": "jpg"}},
				"speech":  {},
				"extra":   {Attributes: map[string]string{"format": "plain"}},
			},
			Payload: []*atompb.Item{
				item("input", "text", "hello", map[string]string{"encoding": "utf8", "status": "3"}),
				item("audio", "audio", "\x00\x01\x02", map[string]string{"encoding": "raw", "sample_rate": "16000", "channels": "1", "bit_depth": "16"}),
				item("image", "image", "\xff\xd8", map[string]string{"encoding": "jpg"}),
				item("video", "video", "mp4", map[string]string{"encoding": "h264"}),
				item("blob", "other", "\x7f", nil),
				item("odd", "smell", "?", nil),
				item("untyped", "", "v", nil),
				item("bare", "", "", nil),
				item("declared", "text", "schema wins", nil),
			},
		}, 0, meta},
		{"input_multi_default_expect", &atompb.Frame{
			Capability: "multi", Sid: "m1", Status: 0,
			Header: map[string]string{"appid": "legacy-app", "client_ip": "192.0.2.7", "cid": "c9"},
			Params: map[string]string{"vcn": "xiaoyan", "speed": "50"},
			Payload: []*atompb.Item{
				item("audio", "audio", "\x00\x00", map[string]string{"sample_rate": "16000", "status": "0"}),
				item("ref", "text", "reference", map[string]string{"encoding": "utf8"}),
				item("face", "image", "\x89PNG", map[string]string{"encoding": "png"}),
			},
		}, 0, multi},
		{"input_multi_continue_no_default", &atompb.Frame{
			Capability: "multi", Sid: "m1", Status: 1,
			Payload: []*atompb.Item{item("audio", "audio", "\x01", map[string]string{"status": "1"})},
		}, 1, multi},
		{"input_begin_no_meta", &atompb.Frame{
			Capability: "ist", Sid: "s1", Status: 0, Header: map[string]string{"app_id": "a", "sid": "stale"},
			Accepts: map[string]*atompb.Accept{"result": {Attributes: map[string]string{"format": "json"}}},
			Payload: []*atompb.Item{item("input", "audio", "pcm", map[string]string{"status": "0", "seq": "0"})},
		}, 0, nil},
		{"input_continue", &atompb.Frame{
			Capability: "ist", Sid: "s1", Status: 1,
			Payload: []*atompb.Item{item("input", "audio", "pcm2", map[string]string{"status": "1", "seq": "1"})},
		}, 1, meta},
		{"input_end_empty", &atompb.Frame{Capability: "ist", Sid: "s1", Status: 2}, 2, meta},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			golden(t, tc.name, ToLoaderInput(tc.frame, tc.syncID, tc.meta))
		})
	}
}

func attrTypes(m map[string]map[string]string) func(string, string) string {
	return func(output, key string) string { return m[output][key] }
}

func TestToResultGolden(t *testing.T) {
	pl := func(name string, dt loaderpb.DataType, data string, attrs map[string]string) *loaderpb.Payload {
		return &loaderpb.Payload{Meta: &loaderpb.MetaDesc{Name: name, DataType: dt, Attribute: attrs}, Data: []byte(data)}
	}
	meta := &Meta{
		Accepts: map[string]string{"result": "text", "speech": "audio", "picture": "image", "clip": "video", "blob": "other", "mislabelled": "audio"},
		OutputAttrType: attrTypes(map[string]map[string]string{
			"result": {"status": "integer", "seq": "integer", "score": "number", "final": "boolean", "format": "string", "bad_int": "integer", "big": "number", "yes": "boolean", "frac": "integer"},
			"speech": {"sample_rate": "integer", "channels": "integer"},
		}),
	}
	expect := []*loaderpb.MetaDesc{
		{Name: "result", Attribute: map[string]string{"encoding": "utf8", "compress": "raw", "format": "json"}},
		{Name: "speech", Attribute: map[string]string{"encoding": "raw", "sample_rate": "8000"}},
	}
	cases := []struct {
		name   string
		out    *loaderpb.LoaderOutput
		meta   *Meta
		expect []*loaderpb.MetaDesc
	}{
		{"result_once_all_types", &loaderpb.LoaderOutput{
			ServiceId: "echo", Status: loaderpb.Status_STATUS_ONCE, EngineNs: 1500, LoaderNs: 4000,
			Pl: []*loaderpb.Payload{
				pl("result", loaderpb.DataType_DATA_TYPE_TEXT, `{"ws":[]}`, map[string]string{"encoding": "utf8", "format": "json"}),
				pl("speech", loaderpb.DataType_DATA_TYPE_AUDIO, "\x01\x02", map[string]string{"sample_rate": "16000"}),
				pl("picture", loaderpb.DataType_DATA_TYPE_IMAGE, "\xff", nil),
				pl("clip", loaderpb.DataType_DATA_TYPE_VIDEO, "v", nil),
				pl("blob", loaderpb.DataType_DATA_TYPE_OTHER, "o", nil),
				pl("future", loaderpb.DataType(42), "x", nil),
			},
		}, nil, nil},
		{"result_multi_typed", &loaderpb.LoaderOutput{
			ServiceId: "multi", Status: loaderpb.Status_STATUS_CONTINUE, EngineNs: 10, LoaderNs: 20,
			Pl: []*loaderpb.Payload{
				pl("result", loaderpb.DataType_DATA_TYPE_TEXT, `{"ws":[{"w":"hi"}]}`, map[string]string{
					"status": "1", "seq": "007", "score": "0.50", "final": "1", "format": "json", "bad_int": "n/a",
					"big": "1e400", "yes": "TRUE", "frac": "3.0", "untyped": "12"}),
				pl("speech", loaderpb.DataType_DATA_TYPE_AUDIO, "\x01\x02", map[string]string{"sample_rate": "16000", "channels": "1.0"}),
				pl("picture", loaderpb.DataType_DATA_TYPE_IMAGE, "\xff", nil),
				pl("clip", loaderpb.DataType_DATA_TYPE_VIDEO, "v", nil),
				pl("blob", loaderpb.DataType_DATA_TYPE_OTHER, "o", nil),
				pl("mislabelled", loaderpb.DataType_DATA_TYPE_TEXT, "pcm", nil),
				pl("undeclared", loaderpb.DataType_DATA_TYPE_IMAGE, "u", map[string]string{"status": "1"}),
			},
		}, meta, expect},
		{"result_begin", &loaderpb.LoaderOutput{Status: loaderpb.Status_STATUS_BEGIN}, nil, nil},
		{"result_continue", &loaderpb.LoaderOutput{Status: loaderpb.Status_STATUS_CONTINUE,
			Pl: []*loaderpb.Payload{pl("result", loaderpb.DataType_DATA_TYPE_TEXT, "part", map[string]string{"seq": "1", "status": "1"})}}, nil, nil},
		{"result_end", &loaderpb.LoaderOutput{Status: loaderpb.Status_STATUS_END, EngineNs: 7,
			Pl: []*loaderpb.Payload{pl("result", loaderpb.DataType_DATA_TYPE_TEXT, "done", map[string]string{"status": "2"})}}, nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			golden(t, tc.name, NewResult(tc.out, tc.meta, "sid-1", tc.expect))
		})
	}
}

func TestTypeAttr(t *testing.T) {
	for _, tc := range []struct{ typ, in, want string }{
		{"integer", "16000", "16000"}, {"integer", " 7 ", "7"}, {"integer", "2.0", "2"}, {"integer", "2.5", "2.5"},
		{"integer", "x", "x"}, {"number", "0.50", "0.5"}, {"number", "NaN", "NaN"}, {"number", "1e400", "1e400"},
		{"boolean", "1", "true"}, {"boolean", "F", "false"}, {"boolean", "yes", "yes"},
		{"string", "16000", "16000"}, {"", "true", "true"}, {"object", "{}", "{}"},
	} {
		if got := TypeAttr(tc.typ, tc.in); got != tc.want {
			t.Errorf("TypeAttr(%q, %q) = %q, want %q", tc.typ, tc.in, got, tc.want)
		}
	}
}

// FuzzTypeAttr checks that a typed attribute is either unchanged or a valid JSON literal
// of its type.
func FuzzTypeAttr(f *testing.F) {
	for _, s := range []string{"1", "1.5", "true", "x", "1e400", "-0"} {
		f.Add("integer", s)
		f.Add("number", s)
		f.Add("boolean", s)
	}
	f.Fuzz(func(t *testing.T, typ, v string) {
		got := TypeAttr(typ, v)
		if got == v {
			return
		}
		var x any
		if err := json.Unmarshal([]byte(got), &x); err != nil {
			t.Fatalf("TypeAttr(%q, %q) = %q: not JSON", typ, v, got)
		}
		switch x.(type) {
		case float64:
			if typ != "integer" && typ != "number" {
				t.Fatalf("number for type %q", typ)
			}
		case bool:
			if typ != "boolean" {
				t.Fatalf("bool for type %q", typ)
			}
		default:
			t.Fatalf("TypeAttr(%q, %q) = %q", typ, v, got)
		}
	})
}

func TestLoaderService(t *testing.T) {
	var m *Meta
	if m.LoaderService("ist") != "ist" || (&Meta{}).LoaderService("ist") != "ist" || (&Meta{Service: "asr"}).LoaderService("ist") != "asr" {
		t.Fatal("loader service mapping")
	}
}

func TestCheckStatus(t *testing.T) {
	for _, tc := range []struct {
		status int32
		once   bool
		ok     bool
	}{{3, true, true}, {0, true, false}, {0, false, true}, {1, false, true}, {2, false, true}, {3, false, false}, {-1, false, false}, {9, true, false}} {
		err := CheckStatus(tc.status, tc.once)
		if (err == nil) != tc.ok {
			t.Errorf("CheckStatus(%d, %v) = %v", tc.status, tc.once, err)
		}
		if err != nil && aserr.CodeOf(err) != 10163 {
			t.Errorf("code = %d, want 10163", aserr.CodeOf(err))
		}
	}
}

func TestRouteKeyAndErrors(t *testing.T) {
	if k := RouteKey(&atompb.Frame{Header: map[string]string{"uid": "u", "app_id": "a"}}); k != "u" {
		t.Errorf("key = %q, want uid", k)
	}
	if k := RouteKey(&atompb.Frame{Header: map[string]string{"app_id": "a"}}); k != "a" {
		t.Errorf("key = %q, want app_id", k)
	}
	if err := OutputError(&loaderpb.LoaderOutput{Code: 30003}); aserr.CodeOf(err) != 30003 {
		t.Errorf("output error = %v", err)
	}
	r := ErrorResult(aserr.ErrLicenceFull, "s", 3)
	if r.Code != 10110 || r.Message != "licence not enough" || r.Sid != "s" {
		t.Errorf("error result = %v", r)
	}
}

// FuzzConvert feeds arbitrary wire bytes as a Frame and a LoaderOutput and checks that
// conversion never panics and keeps every payload and its bytes.
func FuzzConvert(f *testing.F) {
	seed, _ := proto.Marshal(&atompb.Frame{Capability: "echo", Sid: "s", Status: 3,
		Header: map[string]string{"uid": "u"}, Accepts: map[string]*atompb.Accept{"r": {}},
		Payload: []*atompb.Item{item("input", "text", "hi", map[string]string{"a": "b"})}})
	out, _ := proto.Marshal(&loaderpb.LoaderOutput{Status: 2, Pl: []*loaderpb.Payload{{Meta: &loaderpb.MetaDesc{Name: "r", DataType: 1}, Data: []byte("x")}}})
	f.Add(seed, out, int32(0))
	f.Add([]byte{}, []byte{}, int32(5))
	f.Fuzz(func(t *testing.T, frameWire, outWire []byte, syncID int32) {
		var fr atompb.Frame
		if proto.Unmarshal(frameWire, &fr) == nil {
			in := ToLoaderInput(&fr, syncID, &Meta{Accepts: map[string]string{"r": "audio"}})
			wantExpect := len(fr.Accepts)
			if wantExpect == 0 && (fr.Status == StatusBegin || fr.Status == StatusOnce) {
				wantExpect = 1 // the schema's declared output
			}
			if len(in.Pl) != len(fr.Payload) || len(in.Expect) != wantExpect || in.SyncId != syncID {
				t.Fatalf("lost items: %d/%d payloads, %d/%d accepts", len(in.Pl), len(fr.Payload), len(in.Expect), len(fr.Accepts))
			}
			for i, p := range in.Pl {
				if !bytes.Equal(p.Data, fr.Payload[i].Data) || p.Meta.Name != fr.Payload[i].Name {
					t.Fatalf("payload %d changed", i)
				}
			}
			if fr.Sid != "" && in.Headers[HeaderSid] != fr.Sid {
				t.Fatal("sid header missing")
			}
			if (in.State == loaderpb.State_STATE_ONCE) != (fr.Status == StatusOnce) {
				t.Fatalf("state %v for status %d", in.State, fr.Status)
			}
		}
		var lo loaderpb.LoaderOutput
		if proto.Unmarshal(outWire, &lo) == nil {
			items := toResult(&lo, nil, nil)
			if len(items) != len(lo.Pl) {
				t.Fatal("lost output payloads")
			}
			for i, it := range items {
				if dataTypeOf(it.DataType) != lo.Pl[i].GetMeta().GetDataType() && it.DataType != "other" {
					t.Fatalf("data type %q does not map back to %v", it.DataType, lo.Pl[i].GetMeta().GetDataType())
				}
			}
			r := NewResult(&lo, nil, "s", nil)
			if r.Status < 0 || r.Status > 3 {
				t.Fatalf("status %d out of range", r.Status)
			}
		}
	})
}
