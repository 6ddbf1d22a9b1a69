package mapping

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

func load(t *testing.T) *Spec {
	t.Helper()
	raw, err := os.ReadFile("testdata/iat.webapi.json")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Compile(raw, "iat")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func decode(t *testing.T, name string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func golden(t *testing.T, name string, v any) {
	t.Helper()
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s:\ngot  %s\nwant %s", name, got, want)
	}
}

func TestGoldenRequest(t *testing.T) {
	s := load(t)
	golden(t, "request_first.ase.golden", s.Request(decode(t, "request_first.webapi.json"), true))
	golden(t, "request_next.ase.golden", s.Request(decode(t, "request_next.webapi.json"), false))
}

func TestGoldenResponse(t *testing.T) {
	s := load(t)
	golden(t, "response.data.golden", s.Response(decode(t, "response.ase.json")))
}

func TestRequestDoesNotAliasSource(t *testing.T) {
	s := load(t)
	doc := decode(t, "request_first.webapi.json")
	s.Request(doc, true)
	if _, ok := doc["business"].(map[string]any)["result"]; ok {
		t.Fatal("a rule wrote into the request document")
	}
}

func TestBusinessDefault(t *testing.T) {
	s, err := Compile([]byte(`{"route":"/v2/tts","request":{"data":{"mapping":{"data_type":"text","rule":[{"src":"$.data.text","dst":"$.payload.text.text"}]}}}}`), "tts")
	if err != nil {
		t.Fatal(err)
	}
	out := s.Request(map[string]any{"common": map[string]any{"app_id": "a", "cmd": "close"}, "business": map[string]any{"vcn": "x"}, "data": map[string]any{"status": 2.0, "text": "aGk="}}, true)
	got, _ := json.Marshal(out)
	want := `{"header":{"app_id":"a","status":2},"parameter":{"tts":{"vcn":"x"}},"payload":{"text":{"text":"aGk="}}}`
	if string(got) != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestConditions(t *testing.T) {
	for _, tc := range []struct {
		cond string
		doc  map[string]any
		want bool
	}{
		{`$.business.x`, map[string]any{"business": map[string]any{"x": "a"}}, true},
		{`$.business.x`, map[string]any{"business": map[string]any{"x": ""}}, false},
		{`$.business.x`, map[string]any{"business": map[string]any{"x": json.Number("0")}}, false},
		{`$.business.x`, map[string]any{}, false},
		{`$.business.x == 3`, map[string]any{"business": map[string]any{"x": json.Number("3")}}, true},
		{`$.business.x == 3`, map[string]any{"business": map[string]any{"x": "3"}}, false},
		{`$.common.cmd != "kpal"`, map[string]any{"common": map[string]any{"cmd": "kpal"}}, false},
		{`$.common.cmd != "kpal"`, map[string]any{}, true},
		{`$.business.f == true`, map[string]any{"business": map[string]any{"f": true}}, true},
	} {
		c, err := parseCond(tc.cond)
		if err != nil {
			t.Fatalf("%s: %v", tc.cond, err)
		}
		if got := c.holds(tc.doc); got != tc.want {
			t.Errorf("%s on %v = %v, want %v", tc.cond, tc.doc, got, tc.want)
		}
	}
}

func TestBadRulesRefused(t *testing.T) {
	for _, tc := range []struct{ doc, where, reason string }{
		{`{"route":"v2/iat"}`, "route", "absolute path"},
		{`{"route":"/v2/models/x"}`, "route", "Open Inference Protocol"},
		{`{"route":"/v2/iat","request":{"data":{"mapping":[{"data_type":"sound","rule":[]}]}}}`, "request.data.mapping[0].data_type", "must be text"},
		{`{"route":"/v2/iat","request":{"data":{"mapping":[{"data_type":"audio","rule":[{"src":"data.audio","dst":"$.payload.input.audio"}]}]}}}`, "request.data.mapping[0].rule[0]", "must start with $."},
		{`{"route":"/v2/iat","request":{"data":{"mapping":[{"data_type":"audio","rule":[{"src":"$.payload.x","dst":"$.payload.input.audio"}]}]}}}`, "request.data.mapping[0].rule[0]", "$.common or $.business or $.data"},
		{`{"route":"/v2/iat","request":{"data":{"mapping":[{"data_type":"audio","rule":[{"src":"$.data.audio","dst":"$.payload.input.image"}]}]}}}`, "request.data.mapping[0].rule[0]", "does not match data_type audio"},
		{`{"route":"/v2/iat","request":{"data":{"mapping":[{"data_type":"audio","rule":[{"src":"$.data.audio","dst":"$.payload"}]}]}}}`, "request.data.mapping[0].rule[0]", "below $.payload"},
		{`{"route":"/v2/iat","request":{"data":{"mapping":[{"data_type":"audio","rule":[{"src":"$.data.a","value":1,"dst":"$.payload.x.y"}]}]}}}`, "request.data.mapping[0].rule[0]", "exclusive"},
		{`{"route":"/v2/iat","request":{"data":{"mapping":[{"data_type":"audio","rule":[{"dst":"$.payload.x.y"}]}]}}}`, "request.data.mapping[0].rule[0]", "src or value is required"},
		{`{"route":"/v2/iat","response":{"data":{"mapping":[{"data_type":"text","rule":[{"src":"$.payload.result.text","dst":"$.payload.x"}]}]}}}`, "response.data.mapping[0].rule[0]", "must start with $.data"},
		{`{"route":"/v2/iat","script":{"first":[{"if":"$.business.x ==","then":[{"value":1,"dst":"$.parameter.iat.x"}]}]}}`, "script.first[0].if", "JSON literal"},
		{`{"route":"/v2/iat","script":{"every":[{"if":"$.header.x","then":[{"value":1,"dst":"$.parameter.iat.x"}]}]}}`, "script.every[0].if", "must start with $.common"},
		{`{"route":"/v2/iat","script":{"every":[{"if":"$.common.x","then":[]}]}}`, "script.every[0].then", "at least one rule"},
		{`{"route":"/v2/iat","script":{"every":[{"if":"$.common.x == {}","then":[{"value":1,"dst":"$.header.x"}]}]}}`, "script.every[0].if", "scalar"},
	} {
		_, err := Compile([]byte(tc.doc), "iat")
		var me *Error
		if !errors.As(err, &me) {
			t.Errorf("%s: error %v, want a rule error", tc.doc, err)
			continue
		}
		if me.Where != tc.where || !strings.Contains(me.Reason, tc.reason) || me.Rule == "" {
			t.Errorf("%s: got %q (where %s), want where %s, reason with %q", tc.doc, err, me.Where, tc.where, tc.reason)
		}
	}
	if _, err := Compile([]byte(`{"route":"/v2/iat","extra":1}`), "iat"); err == nil {
		t.Error("unknown field accepted")
	}
}

// FuzzRequest runs arbitrary WebAPI 2.0 documents through the mapping: it never panics
// and always yields an object.
func FuzzRequest(f *testing.F) {
	raw, _ := os.ReadFile("testdata/iat.webapi.json")
	s, err := Compile(raw, "iat")
	if err != nil {
		f.Fatal(err)
	}
	for _, n := range []string{"request_first.webapi.json", "request_next.webapi.json", "response.ase.json"} {
		b, _ := os.ReadFile(filepath.Join("testdata", n))
		f.Add(b)
	}
	f.Add([]byte(`{"common":[],"business":null,"data":{"status":"x","audio":{}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var doc map[string]any
		if dec.Decode(&doc) != nil {
			return
		}
		out := s.Request(doc, true)
		if _, err := json.Marshal(out); err != nil {
			t.Fatal(err)
		}
		_ = s.Response(doc)
	})
}

func TestRetryFlag(t *testing.T) {
	if load(t).Retry() {
		t.Fatal("retry is off unless the block enables it")
	}
	s, err := Compile([]byte(`{"route":"/v2/ise","enable_retry":true}`), "ise")
	if err != nil {
		t.Fatal(err)
	}
	if !s.Retry() {
		t.Fatal("enable_retry: true not compiled")
	}
	if _, err := Compile([]byte(`{"route":"/v2/ise","enable_retry":"yes"}`), "ise"); err == nil {
		t.Fatal("a non-boolean enable_retry was accepted")
	}
}
