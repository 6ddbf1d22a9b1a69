package engines

import (
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"

	"github.com/athenaserving/asf/libs/capability"
)

var schemas sync.Map // capability → *capability.Schema

// schemaOf parses (once per test binary) examples/engines/<capability>/schema_<capability>.json.
func schemaOf(t *testing.T, name string) *capability.Schema {
	t.Helper()
	if s, ok := schemas.Load(name); ok {
		return s.(*capability.Schema)
	}
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "examples", "engines", name, "schema_"+name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := capability.Parse(b)
	if err != nil {
		t.Fatalf("schema %s: %v", name, err)
	}
	schemas.Store(name, s)
	return s
}

func TestSchemas(t *testing.T) {
	for _, c := range []struct {
		name            string
		inputs, accepts []string
		in, out         capability.DataType
	}{
		{"tts", []string{"text"}, []string{"audio"}, capability.DataText, capability.DataAudio},
		{"asr", []string{"audio"}, []string{"result"}, capability.DataAudio, capability.DataText},
		{"digits", []string{"image"}, []string{"result"}, capability.DataImage, capability.DataText},
	} {
		s := schemaOf(t, c.name)
		if s.ID() != c.name || s.Route() != "/v1/private/"+c.name {
			t.Errorf("%s: id %q route %q", c.name, s.ID(), s.Route())
		}
		if !reflect.DeepEqual(s.Inputs(), c.inputs) || !reflect.DeepEqual(s.Accepts(), c.accepts) {
			t.Errorf("%s: inputs %v accepts %v", c.name, s.Inputs(), s.Accepts())
		}
		if dt, _ := s.InputType(c.inputs[0]); dt != c.in {
			t.Errorf("%s: input type %v", c.name, dt)
		}
		if dt, _ := s.AcceptType(c.accepts[0]); dt != c.out {
			t.Errorf("%s: accept type %v", c.name, dt)
		}
	}
	// Out-of-range parameters are refused (10163 at webgate).
	for name, body := range map[string]string{
		"tts":    `{"header":{"app_id":"a","status":3},"parameter":{"tts":{"speed":1000}},"payload":{"text":{"text":"aGk="}}}`,
		"asr":    `{"header":{"app_id":"a","status":0},"parameter":{"asr":{"lm":"x"}},"payload":{"audio":{"audio":""}}}`,
		"digits": `{"header":{"app_id":"a","status":3},"payload":{"image":{"image":"","scale":0}}}`,
	} {
		if err := schemaOf(t, name).ValidateJSON([]byte(body)); err == nil {
			t.Errorf("%s: invalid request accepted: %s", name, body)
		}
	}
}
