package capmeta

import (
	"os"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/capability"
)

const doc = `{
  "meta": {
    "serviceId": "tts", "version": "v1", "service": ["tts"], "engine": "tts-loader",
    "once_timeout": 2.5, "session_timeout": 60, "read_timeout": "5", "first_result_timeout": "1.5",
    "tts": {
      "input": {"text": {"dataType": "text"}, "ref": {"dataType": "audio"}},
      "accept": {"audio": {"dataType": "audio"}, "subtitle": {"dataType": "text"}}
    }
  },
  "schemaoutput": {"type": "object", "properties": {"payload": {"type": "object", "properties": {
    "audio": {"type": "object", "properties": {"sample_rate": {"type": "integer"}, "ced": {"type": "string"}, "last": {"type": "boolean"}}}}}}}
}`

type mapSource map[string]*capability.Schema

func (m mapSource) Get(id string) (*capability.Schema, bool) { s, ok := m[id]; return s, ok }

func parse(t *testing.T, d string) *capability.Schema {
	t.Helper()
	s, err := capability.Parse([]byte(d))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestFromSchema(t *testing.T) {
	m, err := FromSchema(parse(t, doc))
	if err != nil {
		t.Fatal(err)
	}
	if m.Service != "tts-loader" || m.LoaderService("tts") != "tts-loader" {
		t.Errorf("service %q", m.Service)
	}
	if m.Inputs["text"] != "text" || m.Inputs["ref"] != "audio" || m.Accepts["audio"] != "audio" || m.Accepts["subtitle"] != "text" {
		t.Errorf("inputs %v accepts %v", m.Inputs, m.Accepts)
	}
	if m.OnceTimeout != 2500*time.Millisecond || m.SessionTimeout != time.Minute || m.ReadTimeout != 5*time.Second || m.FirstResultTimeout != 1500*time.Millisecond {
		t.Errorf("timeouts %v %v %v %v", m.OnceTimeout, m.SessionTimeout, m.ReadTimeout, m.FirstResultTimeout)
	}
	for _, tc := range [][3]string{{"audio", "sample_rate", "number"}, {"audio", "ced", "string"}, {"audio", "last", "boolean"}, {"audio", "nope", ""}, {"subtitle", "x", ""}} {
		if got := m.OutputAttrType(tc[0], tc[1]); got != tc[2] {
			t.Errorf("attr %s.%s = %q, want %q", tc[0], tc[1], got, tc[2])
		}
	}
}

func TestCacheFollowsRevisions(t *testing.T) {
	src := mapSource{"tts": parse(t, doc)}
	c := New(src)
	m1 := c.Meta("tts")
	if m1 == nil || c.Meta("tts") != m1 {
		t.Fatal("meta not cached for one revision")
	}
	src["tts"] = parse(t, `{"meta":{"serviceId":"tts"}}`)
	m2 := c.Meta("tts")
	if m2 == m1 || m2.Service != "" || m2.LoaderService("tts") != "tts" {
		t.Fatalf("new revision not picked up: %+v", m2)
	}
	if c.Meta("unknown") != nil {
		t.Fatal("unknown capability has a meta")
	}
	delete(src, "tts")
	if c.Meta("tts") != nil {
		t.Fatal("removed capability still has a meta")
	}
}

func TestExtrasErrors(t *testing.T) {
	for _, d := range []string{
		`{"meta":{"engine":5}}`, `{"meta":{"engine":"a b"}}`, `{"meta":{"first_result_timeout":"soon"}}`,
		`{"meta":{"first_result_timeout":-1}}`, `[`,
	} {
		if _, err := Extras([]byte(d)); err == nil {
			t.Errorf("Extras(%s) accepted", d)
		}
	}
	x, err := Extras([]byte(`{"meta":{"engine":null,"first_result_timeout":null}}`))
	if err != nil || x != (Extra{}) {
		t.Fatalf("nulls: %+v, %v", x, err)
	}
	// A bad extra keeps the schema usable with default extras.
	m, err := FromSchema(parse(t, `{"meta":{"serviceId":"x","first_result_timeout":"later","x":{"input":{"in":{"dataType":"audio"}}}}}`))
	if err == nil || m == nil || m.Inputs["in"] != "audio" || m.FirstResultTimeout != 0 {
		t.Fatalf("bad extras: %+v, %v", m, err)
	}
}

// FuzzExtras checks that the extras parser never panics and never yields a negative timeout.
func FuzzExtras(f *testing.F) {
	f.Add([]byte(doc))
	f.Add([]byte(`{"meta":{"first_result_timeout":"1e9"}}`))
	if b, err := os.ReadFile("../../../libs/capability/testdata/schema_ist.json"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		x, err := Extras(b)
		if err == nil && x.FirstResultTimeout < 0 {
			t.Fatalf("negative timeout %v", x.FirstResultTimeout)
		}
	})
}
