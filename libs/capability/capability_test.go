package capability

import (
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func readIST(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/schema_ist.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseAccessors(t *testing.T) {
	s, err := Parse(readIST(t))
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, got, want any) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	check("id", s.ID(), "ist")
	check("version", s.Version(), "v1.0")
	check("route", s.Route(), "/v1/private/ist")
	in, ok := s.InputType("input")
	check("input type", in, DataAudio)
	check("input known", ok, true)
	_, ok = s.InputType("nope")
	check("unknown input", ok, false)
	acc, _ := s.AcceptType("result")
	check("accept type", acc, DataText)
	check("read timeout", s.ReadTimeout(), 5*time.Second)
	check("session timeout", s.SessionTimeout(), 60*time.Second)
	check("once timeout", s.OnceTimeout(), 2500*time.Millisecond)
	st, ok := s.HTTPStatus(10110)
	check("codeMap", st, 429)
	check("codeMap ok", ok, true)
	check("seq type", s.OutputAttrType("result", "seq"), AttrNumber)
	check("final type", s.OutputAttrType("result", "final"), AttrBool)
	check("encoding type", s.OutputAttrType("result", "encoding"), AttrString)
	check("unknown type", s.OutputAttrType("result", "x"), AttrUnknown)
	check("has input schema", s.HasInputSchema(), true)
}

func TestParseDefaultsAndErrors(t *testing.T) {
	s, err := Parse([]byte(`{"meta":{"serviceId":"echo","route":"/v1/private/echo2/","input":{"data":{"dataType":"text"}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if s.Route() != "/v1/private/echo2" || s.Services()[0] != "echo" || s.HasInputSchema() {
		t.Fatalf("defaults: %q %v %v", s.Route(), s.Services(), s.HasInputSchema())
	}
	if d, _ := s.InputType("data"); d != DataText {
		t.Fatalf("meta-level input: %q", d)
	}
	for name, doc := range map[string]string{
		"no meta":        `{}`,
		"bad json":       `{"meta":`,
		"no id":          `{"meta":{}}`,
		"id with slash":  `{"meta":{"serviceId":"a/b"}}`,
		"bad data type":  `{"meta":{"serviceId":"a","a":{"input":{"x":{"dataType":"sound"}}}}}`,
		"bad timeout":    `{"meta":{"serviceId":"a","read_timeout":"soon"}}`,
		"bad codeMap":    `{"meta":{"serviceId":"a","codeMap":{"x":400}}}`,
		"bad status":     `{"meta":{"serviceId":"a","codeMap":{"10163":42}}}`,
		"relative route": `{"meta":{"serviceId":"a","route":"v1/a"}}`,
		"bad schema":     `{"meta":{"serviceId":"a"},"schemainput":{"type":"nothing"}}`,
		"external ref":   `{"meta":{"serviceId":"a"},"schemainput":{"$ref":"http://example.com/s.json"}}`,
	} {
		if _, err := Parse([]byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestValidate(t *testing.T) {
	s, err := Parse(readIST(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ValidateJSON([]byte(`{"header":{"app_id":"a","status":0},"parameter":{"ist":{"eos":1000}},"payload":{"input":{"audio":"AA==","sample_rate":16000}}}`)); err != nil {
		t.Fatalf("valid request rejected: %v", err)
	}
	for doc, mention := range map[string]string{
		`{"payload":{}}`: "header",
		`{"header":{"app_id":"a"},"payload":{"input":{"sample_rate":44100}}}`: "sample_rate",
		`{"header":{"app_id":"a"},"payload":{"other":{}}}`:                    "other",
		`{"header":{"app_id":"a","status":7}}`:                                "status",
		`{"header":`:                                                          "json",
	} {
		err := s.ValidateJSON([]byte(doc))
		if err == nil || !strings.Contains(err.Error(), mention) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error %v should mention %q on one line", doc, err, mention)
		}
	}
}

func TestRegistry(t *testing.T) {
	r := NewRegistry()
	if _, err := r.Put("schema_ist.json", 1, readIST(t)); err != nil {
		t.Fatal(err)
	}
	s, ok := r.ByRoute("/v1/private/ist/")
	if !ok || s.ID() != "ist" || s.Revision() != 1 || s.File() != "schema_ist.json" {
		t.Fatalf("by route: %v %v", s, ok)
	}
	if _, err := r.Put("schema_other.json", 1, []byte(`{"meta":{"serviceId":"ist"}}`)); err == nil {
		t.Fatal("duplicate serviceId accepted")
	}
	if _, err := r.Put("schema_other.json", 1, []byte(`{"meta":{"serviceId":"x","route":"/v1/private/ist"}}`)); err == nil {
		t.Fatal("duplicate route accepted")
	}
	if _, err := r.Put("schema_ist.json", 2, []byte(`{"meta":`)); err == nil {
		t.Fatal("bad revision accepted")
	}
	if s, _ := r.Get("ist"); s.Revision() != 1 {
		t.Fatal("bad revision replaced the good one")
	}
	if _, err := r.Put("schema_tts.json", 3, []byte(`{"meta":{"serviceId":"tts"}}`)); err != nil {
		t.Fatal(err)
	}
	if got := len(r.List()); got != 2 {
		t.Fatalf("list: %d", got)
	}
	r.Retain(map[string]bool{"schema_tts.json": true})
	if _, ok := r.Get("ist"); ok || r.Len() != 1 {
		t.Fatal("retain kept a dropped file")
	}
	if !r.Remove("schema_tts.json") || r.Remove("schema_tts.json") || r.Len() != 0 {
		t.Fatal("remove")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"meta":{"serviceId":"ist","ist":{"input":{"input":{"dataType":"audio"}}}},"schemainput":{"type":"object"},"schemaoutput":{"properties":{"r":{"properties":{"seq":{"type":"integer"}}}}}}`))
	f.Add([]byte(`{"meta":{"serviceId":"a","codeMap":{"1":200},"read_timeout":"1.5"}}`))
	f.Add([]byte(`{"meta":{"serviceId":"a"},"schemainput":{"$ref":"#/definitions/x","definitions":{"x":{"type":"string"}}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(data)
		if err != nil {
			return
		}
		if s.ID() == "" || !strings.HasPrefix(s.Route(), "/") {
			t.Fatalf("accepted id %q route %q", s.ID(), s.Route())
		}
		_ = s.ValidateJSON([]byte(`{"header":{"app_id":"a"},"payload":{}}`))
	})
}

func TestOutputJSONType(t *testing.T) {
	s, err := Parse([]byte(`{"meta":{"serviceId":"n","accept":{"count":{"dataType":"text"},"score":{"dataType":"text"}}},
 "schemaoutput":{"properties":{"payload":{"properties":{
   "count":{"properties":{"text":{"type":["null","integer"]},"ok":{"type":"boolean"}}},
   "score":{"properties":{"text":{"type":"number","format":"float"},"raw":{"type":"number"},"label":{"type":"string"}}}}}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ out, key, want string }{
		{"count", "text", "integer"}, {"count", "ok", "boolean"}, {"score", "text", "float"},
		{"score", "raw", "number"}, {"score", "label", "string"}, {"score", "nope", ""}, {"nope", "text", ""},
	} {
		if got := s.OutputJSONType(c.out, c.key); got != c.want {
			t.Errorf("OutputJSONType(%s, %s) = %q, want %q", c.out, c.key, got, c.want)
		}
	}
}

func TestTraceSampleRate(t *testing.T) {
	s, err := Parse([]byte(`{"meta":{"serviceId":"tr","trace_sample_rate":0.25}}`))
	if err != nil {
		t.Fatal(err)
	}
	if rate, ok := s.TraceSampleRate(); !ok || rate != 0.25 {
		t.Errorf("TraceSampleRate = %v, %v; want 0.25, true", rate, ok)
	}
	s, err = Parse([]byte(`{"meta":{"serviceId":"tr"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.TraceSampleRate(); ok {
		t.Error("absent trace_sample_rate reported as set: the edge's default must apply")
	}
	if _, err := Parse([]byte(`{"meta":{"serviceId":"tr","trace_sample_rate":2}}`)); err == nil || !strings.Contains(err.Error(), "trace_sample_rate") {
		t.Errorf("rate 2 accepted or error %v does not name it", err)
	}
}
