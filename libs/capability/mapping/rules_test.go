package mapping

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

func TestRulesApply(t *testing.T) {
	raw := `[{"data_type":"text","rule":[
		{"src":"$.payload.text.text","dst":"$.body.input.q"},
		{"src":"$.parameter.tr.to","dst":"$.query.to"},
		{"value":{"fmt":"plain"},"dst":"$.body.opts"},
		{"src":"$.header.missing","dst":"$.body.never"}]}]`
	r, err := CompileRules([]byte(raw), "request.mapping", []string{"header", "parameter", "payload"}, []string{"body", "query", "headers"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Len() != 4 {
		t.Fatalf("len %d", r.Len())
	}
	doc := map[string]any{
		"payload":   map[string]any{"text": map[string]any{"text": "hello"}},
		"parameter": map[string]any{"tr": map[string]any{"to": "fr"}},
	}
	out := map[string]any{}
	r.Apply(doc, out)
	want := map[string]any{
		"body":  map[string]any{"input": map[string]any{"q": "hello"}, "opts": map[string]any{"fmt": "plain"}},
		"query": map[string]any{"to": "fr"},
	}
	if !reflect.DeepEqual(out, want) {
		got, _ := json.Marshal(out)
		t.Fatalf("got %s", got)
	}
}

func TestRulesRefused(t *testing.T) {
	for _, tc := range []struct{ raw, where string }{
		{`[{"data_type":"text","rule":[{"src":"$.body.x","dst":"$.payload.out.text"}]}]`, "response.mapping[0].rule[0]"},           // src root
		{`[{"data_type":"audio","rule":[{"src":"$.header.a","dst":"$.payload.a.text"}]}]`, "response.mapping[0].rule[0]"},          // data type
		{`{"data_type":"text","rule":[{"src":"$.header.a","dst":"$.payload"}]}`, "response.mapping[0].rule[0]"},                    // dst too short
		{`[{"data_type":"movie","rule":[]}]`, "response.mapping[0].data_type"},                                                     // data type name
		{`[{"data_type":"text","rule":[{"src":"$.header.a","value":1,"dst":"$.payload.x.text"}]}]`, "response.mapping[0].rule[0]"}, // both
	} {
		_, err := CompileRules([]byte(tc.raw), "response.mapping", []string{"header", "payload"}, []string{"header", "payload"})
		var e *Error
		if !errors.As(err, &e) || e.Where != tc.where {
			t.Errorf("%s: got %v, want a refusal at %s", tc.raw, err, tc.where)
		}
	}
	if _, err := CompileRules([]byte(`{`), "x", nil, nil); err == nil {
		t.Error("bad JSON accepted")
	}
}

func TestRulesNil(t *testing.T) {
	var r *Rules
	out := map[string]any{}
	r.Apply(map[string]any{"a": 1}, out)
	if r.Len() != 0 || len(out) != 0 {
		t.Fatal("a nil Rules maps nothing")
	}
}
