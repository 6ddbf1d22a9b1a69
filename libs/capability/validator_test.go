package capability

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// The compiled validator must decide exactly as the jsonschema library, on the decoded tree
// (Validate) and from the bytes (ValidateOver), for every schemainput in the repository and
// a few that use every compiled keyword, over a corpus generated from each schema.

// inlineSchemas are schemainputs written inside Go tests of other modules, and schemas
// that use every keyword of the compiled subset.
var inlineSchemas = map[string]string{
	"webgate strict": `{"type":"object","required":["header"],"properties":{
   "header":{"type":"object","required":["app_id"],"properties":{"app_id":{"type":"string"},"status":{"type":"integer"}}},
   "parameter":{"type":"object","properties":{"strict":{"type":"object","required":["lang"],
     "properties":{"lang":{"type":"string"},"n":{"type":"integer"}}}}},
   "payload":{"type":"object"}}}`,
	"webgate echo": `{"type":"object","properties":{
   "header":{"type":"object","properties":{"app_id":{"type":"string"},"status":{"type":"integer"}}},
   "payload":{"type":"object","properties":{"input":{"type":"object","properties":{"text":{"type":"string"},"seq":{"type":"integer","maximum":100}}}}}}}`,
	"gate fuzz": `{"type":"object","properties":{"header":{"type":"object","properties":{"app_id":{"type":"string"}}},
   "payload":{"type":"object","properties":{"input":{"type":"object","properties":{"seq":{"type":"integer"}}}}}}}`,
	"forward fwd": `{"type": "object", "properties": {
    "parameter": {"type": "object", "properties": {"fwd": {"type": "object",
      "properties": {"lang": {"type": "string", "enum": ["en", "fr"]}}}}},
    "payload": {"type": "object", "required": ["input"], "properties": {"input": {"type": "object", "required": ["text"]}}}}}`,
	"asectl echo": `{"type": "object", "properties": {"payload": {"type": "object",
    "properties": {"input": {"type": "object"}}, "additionalProperties": false}}}`,
	"every keyword": `{"type":"object","required":["a","b"],"minProperties":2,"maxProperties":7,
 "properties":{
   "a":{"type":["integer","null"],"minimum":-5,"maximum":100,"multipleOf":5},
   "b":{"type":"string","minLength":2,"maxLength":5,"pattern":"^[a-zé]+$"},
   "c":{"enum":[1,"x",null,true,[1,2],{"k":"v"}]},
   "d":{"const":{"k":[1,2.0]}},
   "e":{"type":"array","items":{"type":"number","exclusiveMinimum":0,"exclusiveMaximum":1.5},"minItems":1,"maxItems":3},
   "f":{"allOf":[{"type":"string"},{"maxLength":3}],"anyOf":[{"const":"ab"},{"pattern":"^z"}]},
   "g":{"oneOf":[{"type":"integer"},{"type":"number","maximum":10}]},
   "h":{"not":{"type":"string"}},
   "i":false, "j":true,
   "k":{"type":"object","properties":{"x":{"type":"boolean"}},"additionalProperties":{"type":"integer"}},
   "l":{"type":"number","minimum":1e-3,"maximum":12345678901234567890123},
   "m":{"const":"é"}, "n":{"enum":[16000, 8000.0, "16000"]}, "o":{"format":"email","title":"t","description":"d"}
 },
 "additionalProperties":false}`,
	"session shape": `{"type":"object","required":["header"],"properties":{
  "header":{"type":"object","required":["app_id"],"properties":{"app_id":{"type":"string","maxLength":8},"status":{"type":"integer","enum":[0,1,2,3]},"uid":{"type":"string"}},"additionalProperties":false},
  "parameter":{"type":"object","properties":{"p":{"type":"object","required":["lang"],"properties":{"lang":{"enum":["en","fr"]},"n":{"type":"integer","minimum":0},
     "sub":{"type":"object","properties":{"deep":{"const":1}}}},"additionalProperties":{"type":"string"}}}},
  "payload":{"type":"object","properties":{"input":{"type":"object","properties":{"text":{"type":"string","maxLength":64},"status":{"type":"integer"}}}}}}}`,
	"root applicators": `{"allOf":[{"type":"object","required":["header"]},{"properties":{"header":{"required":["app_id"],"properties":{"app_id":{"minLength":1}}}}}],
  "anyOf":[{"required":["payload"]},{"required":["parameter"]}],
  "properties":{"parameter":{"maxProperties":2,"additionalProperties":{"type":["string","integer"]}}}}`,
	"root oneOf": `{"oneOf":[{"required":["header"],"properties":{"header":{"required":["app_id"]}}},{"required":["payload"],"not":{"required":["header"]}}]}`,
	"arrays": `{"type":"object","properties":{"list":{"type":"array","items":{"type":"object","required":["v"],"properties":{"v":{"type":"integer","exclusiveMaximum":3}}},"maxItems":4},
  "any":{"type":"array"},"strs":{"items":{"maxLength":2}}}}`,
	"true":  `true`,
	"false": `false`,
	"empty": `{}`,
}

// outsideSubset are schemainputs that keep the library.
var outsideSubset = map[string]string{
	"patternProperties": `{"type":"object","patternProperties":{"^x":{"type":"integer"}}}`,
	"ref":               `{"$ref":"#/$defs/h","$defs":{"h":{"type":"object","required":["header"]}}}`,
	"if":                `{"if":{"required":["a"]},"then":{"required":["b"]}}`,
	"uniqueItems":       `{"properties":{"l":{"uniqueItems":true}}}`,
	"unknown keyword":   `{"type":"object","x-note":1}`,
}

type testSchema struct {
	name  string
	input any // the decoded schemainput
	s     *Schema
}

// repoRoot is the directory holding go.work.
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("go.work not found")
		}
		dir = parent
	}
}

// repoSchemaFiles returns every JSON file of the repository that holds a schemainput.
func repoSchemaFiles(t testing.TB) map[string][]byte {
	t.Helper()
	root := repoRoot(t)
	out := map[string][]byte{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "node_modules", "bin":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".json") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(`"schemainput"`)) {
			rel, _ := filepath.Rel(root, path)
			out[rel] = b
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatal("no schema files found")
	}
	return out
}

func parseInput(t testing.TB, name, input string) testSchema {
	t.Helper()
	s, err := Parse([]byte(`{"meta":{"serviceId":"t"},"schemainput":` + input + `}`))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	doc, err := DecodeJSON([]byte(input))
	if err != nil {
		t.Fatal(err)
	}
	return testSchema{name: name, input: doc, s: s}
}

// allSchemas are the repository's schemas and the inline ones, every one compiled.
func allSchemas(t testing.TB) []testSchema {
	t.Helper()
	var out []testSchema
	for path, b := range repoSchemaFiles(t) {
		var w struct {
			SchemaInput json.RawMessage `json:"schemainput"`
		}
		if err := json.Unmarshal(b, &w); err != nil || isNull(w.SchemaInput) {
			continue
		}
		out = append(out, parseInput(t, path, string(w.SchemaInput)))
	}
	for name, in := range inlineSchemas {
		out = append(out, parseInput(t, name, in))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	for _, ts := range out {
		if ts.s.check == nil {
			t.Fatalf("%s: not compiled", ts.name)
		}
	}
	return out
}

func TestSchemasOutsideSubsetKeepLibrary(t *testing.T) {
	for name, in := range outsideSubset {
		ts := parseInput(t, name, in)
		if ts.s.check != nil {
			t.Errorf("%s: compiled", name)
		}
	}
	ts := parseInput(t, "ref", outsideSubset["ref"])
	if err := ts.s.ValidateJSON([]byte(`{"payload":{}}`)); err == nil || !strings.Contains(err.Error(), "header") {
		t.Errorf("ref: %v", err)
	}
	if err := ts.s.ValidateOver([]byte(`{"payload":{}}`), map[string]any{"header": map[string]any{}}, []string{"header"}); err != nil {
		t.Errorf("ref with base: %v", err)
	}
}

// libraryVerdict validates doc with the library alone; panicked reports a library panic.
func libraryVerdict(s *Schema, doc any) (msg string, panicked bool) {
	defer func() {
		if r := recover(); r != nil {
			panicked = true
		}
	}()
	if err := s.input.Validate(doc); err != nil {
		return flatten(err.Error()), false
	}
	return "", false
}

var additionalRE = regexp.MustCompile(`additional properties (.*) not allowed`)

// normalize makes two flattened messages comparable: the library lists a schema's errors
// (and unknown properties) in map order.
func normalize(msg string) string {
	parts := strings.Split(msg, "; ")
	for i, p := range parts {
		parts[i] = additionalRE.ReplaceAllStringFunc(p, func(m string) string {
			names := strings.Split(additionalRE.FindStringSubmatch(m)[1], ", ")
			sort.Strings(names)
			return "additional properties " + strings.Join(names, ", ") + " not allowed"
		})
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// agree checks that Validate and ValidateOver decide text (with base laid under it) as the
// library decides ref, the document it sees, and word the same errors.
// It reports whether the library accepts ref.
func agree(t *testing.T, ts testSchema, text []byte, ref any, base map[string]any) bool {
	t.Helper()
	want, panicked := libraryVerdict(ts.s, ref)
	var tree string
	if base == nil {
		tree = errText(ts.s.Validate(ref))
	}
	over := errText(ts.s.ValidateOver(text, base, inheritedKeys))
	if panicked {
		// The library panics on a number big.Rat cannot hold; the compiled validator
		// refuses the document.
		if over == "" || (base == nil && tree == "") {
			t.Errorf("%s: %s: library panics, accepted (tree %q over %q)", ts.name, text, tree, over)
		}
		return false
	}
	if base == nil && normalize(tree) != normalize(want) {
		t.Errorf("%s: %s:\n tree    %q\n library %q", ts.name, text, tree, want)
	}
	if normalize(over) != normalize(want) {
		t.Errorf("%s: %s (base %v):\n bytes   %q\n library %q", ts.name, text, base, over, want)
	}
	return want == ""
}

var inheritedKeys = []string{"header", "parameter"}

func TestValidatorAgreesWithLibrary(t *testing.T) {
	schemas := allSchemas(t)
	docs, accepted, refused := 0, 0, 0
	for _, ts := range schemas {
		for i, doc := range corpus(ts.input) {
			if testing.Short() && i%4 != 0 {
				continue
			}
			for _, text := range encodings(doc, i) {
				ref, err := DecodeJSON(text)
				if err != nil {
					t.Fatalf("%s: corpus text %s: %v", ts.name, text, err)
				}
				docs++
				if agree(t, ts, text, ref, nil) {
					accepted++
				} else {
					refused++
				}
			}
		}
	}
	t.Logf("%d schemas, %d documents: %d accepted, %d refused", len(schemas), docs, accepted, refused)
	if accepted == 0 || refused == 0 {
		t.Fatal("the corpus does not exercise both outcomes")
	}
}

// TestOverlay pins the merged view of a later frame that services/webgate/gate has always
// validated: the first frame's header and parameter under the later frame's, objects
// merged key by key, a missing or null member inherited.
func TestOverlay(t *testing.T) {
	first := map[string]any{
		"header":    map[string]any{"app_id": "a", "status": json.Number("0"), "n": nil},
		"parameter": map[string]any{"p": map[string]any{"lang": "en", "deep": map[string]any{"x": json.Number("1")}}},
		"payload":   map[string]any{"input": map[string]any{"text": "aGk="}},
	}
	for later, want := range map[string]string{
		`{"header":{"status":1}}`: `{"header":{"app_id":"a","n":null,"status":1},"parameter":{"p":{"deep":{"x":1},"lang":"en"}}}`,
		`{"header":null,"parameter":{"p":{"deep":{"y":2},"lang":null}}}`: `{"header":{"app_id":"a","n":null,"status":0},"parameter":{"p":{"deep":{"x":1,"y":2},"lang":"en"}}}`,
		`{"parameter":{"p":7},"payload":{}}`:                             `{"header":{"app_id":"a","n":null,"status":0},"parameter":{"p":7},"payload":{}}`,
		`{"header":{"q":null}}`:                                          `{"header":{"app_id":"a","n":null,"q":null,"status":0},"parameter":{"p":{"deep":{"x":1},"lang":"en"}}}`,
		`[1]`:                                                            `[1]`,
	} {
		doc, err := DecodeJSON([]byte(later))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := json.Marshal(overlayTop(doc, first, inheritedKeys))
		if string(got) != want {
			t.Errorf("%s: %s, want %s", later, got, want)
		}
	}
	// A first frame's null header is not inherited; nor is a member outside keys.
	doc, _ := DecodeJSON([]byte(`{}`))
	got, _ := json.Marshal(overlayTop(doc, map[string]any{"header": nil, "payload": map[string]any{}}, inheritedKeys))
	if string(got) != `{}` {
		t.Errorf("null header: %s", got)
	}
}

func TestValidateOverAgreesWithMergedView(t *testing.T) {
	pairs := 0
	for _, ts := range allSchemas(t) {
		docs := corpus(ts.input)
		var firsts []map[string]any
		for i, d := range docs {
			if m, ok := d.(map[string]any); ok && i%3 == 0 {
				firsts = append(firsts, m)
			}
		}
		firsts = append(firsts, map[string]any{"header": nil, "parameter": map[string]any{}}, map[string]any{})
		step := 3
		if testing.Short() {
			step = 12
		}
		for i := 0; i < len(docs); i += step {
			later := docs[i]
			first := firsts[i%len(firsts)]
			firstText := encode(first, encOptions{})
			base := DecodeMembers(firstText, inheritedKeys...)
			full, err := DecodeJSON(firstText)
			if err != nil {
				t.Fatal(err)
			}
			fullMap := full.(map[string]any)
			for _, k := range inheritedKeys {
				v, ok := fullMap[k]
				if bv, bok := base[k]; ok != bok || !reflect.DeepEqual(v, bv) {
					t.Fatalf("DecodeMembers(%s)[%s] = %v, want %v", firstText, k, bv, v)
				}
			}
			for _, text := range encodings(later, i/step) {
				ref, _ := DecodeJSON(text)
				agree(t, ts, text, overlayTop(ref, fullMap, inheritedKeys), base)
				pairs++
			}
		}
	}
	t.Logf("%d later messages", pairs)
}

// TestValidatorErrorText pins the flattened texts that tests of other modules read.
func TestValidatorErrorText(t *testing.T) {
	ts := parseInput(t, "every keyword", inlineSchemas["every keyword"])
	for doc, want := range map[string]string{
		`{"a":5}`:                   `at '': minProperties: got 1, want 2; at '': missing property 'b'`,
		`{"a":7,"b":"ab"}`:          `at '/a': multipleOf: got 7, want 5`,
		`{"a":5,"b":"ab","z":1}`:    `at '': additional properties 'z' not allowed`,
		`{"a":5,"b":"abcdef"}`:      `at '/b': maxLength: got 6, want 5`,
		`{"a":5,"b":"ab","c":2}`:    `at '/c': 'enum' failed`,
		`{"a":5,"b":"ab","g":1.5}`:  ``,
		`{"a":5,"b":"ab","g":11.5}`: `at '/g': 'oneOf' failed, none matched; at '/g': got number, want integer; at '/g': maximum: got 11.5, want 10`,
		`{"a":5,"b":"ab","g":1}`:    `at '/g': 'oneOf' failed, subschemas 0, 1 matched`,
		`{"a":5,"b":"ab","h":"s"}`:  `at '/h': 'not' failed`,
		`{"a":5,"b":"ab","i":0}`:    `at '/i': false schema`,
		`{"a":5,"b":"ab","e":[2]}`:  `at '/e/0': exclusiveMaximum: got 2, want 1.5`,
		`{"a":5,"b":"AB"}`:          `at '/b': 'AB' does not match pattern '^[a-zé]+$'`,
		`{"a":"5","b":"ab"}`:        `at '/a': got string, want null or integer`,
	} {
		got := errText(ts.s.ValidateJSON([]byte(doc)))
		if got != want {
			t.Errorf("%s: %q, want %q", doc, got, want)
		}
	}
	// webgate's tests read the pointer and the bound.
	echo := parseInput(t, "webgate echo", inlineSchemas["webgate echo"])
	got := errText(echo.s.ValidateJSON([]byte(`{"header":{"app_id":"a"},"payload":{"input":{"seq":1000,"text":""}}}`)))
	if got != "at '/payload/input/seq': maximum: got 1,000, want 100" {
		t.Errorf("echo: %q", got)
	}
}

// TestValidatorOutOfRangeNumber: a number big.Rat cannot hold makes the library panic under
// a numeric keyword; the compiled validator refuses it and names where it is.
func TestValidatorOutOfRangeNumber(t *testing.T) {
	ts := parseInput(t, "n", `{"properties":{"n":{"type":"number","minimum":0},"i":{"type":"integer"}}}`)
	err := ts.s.ValidateJSON([]byte(`{"n":1e10000000}`))
	if err == nil || err.Error() != "at '/n': number 1e10000000 is out of range" {
		t.Fatalf("got %v", err)
	}
	if err := ts.s.ValidateJSON([]byte(`{"i":1e10000000}`)); err == nil || !strings.Contains(err.Error(), "want integer") {
		t.Fatalf("integer: %v", err)
	}
	lib := parseInput(t, "lib", `{"properties":{"n":{"type":"number","minimum":0}},"patternProperties":{"^x":true}}`)
	if err := lib.s.ValidateJSON([]byte(`{"n":1e10000000}`)); err == nil {
		t.Fatal("library path accepted")
	}
}

// TestValidateOverDecodesOnlyWhenNeeded: odd but valid documents (escaped or repeated
// keys, escaped text, deep nesting) get the same answers as their decoded form.
func TestValidateOverOddDocuments(t *testing.T) {
	ts := parseInput(t, "session shape", inlineSchemas["session shape"])
	deep := strings.Repeat(`{"a":`, 100) + `1` + strings.Repeat(`}`, 100)
	for _, c := range []struct {
		doc   string
		valid bool
	}{
		{`{"header":{"app_id":"a"}}`, true},
		{`{"header":{"app_\u0069d":"a"}}`, true},
		{`{"header":{"app_id":"toolongvalue"}}`, false},
		{`{"header":{"app_id":"toolongvalue","app_id":"a"}}`, true},
		{`{"header":{"app_id":"a","app_id":"toolongvalue"}}`, false},
		{`{"header":{"app_id":"\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"}}`, true},
		{`{"header":{"app_id":"\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"}}`, false},
		{`{"header":{"app_id":"ééééééééé"}}`, false},
		{"{\"header\":{\"app_id\":\"\xff\xfe\"}}", true},
		{`{"header":{"app_id":"a"},"payload":` + deep + `}`, true},
		{`{"header":{"app_id":"a"},"parameter":{"p":{"lang":"en","sub":{"deep":1.0}}}}`, true},
		{`{"header":{"app_id":"a"},"parameter":{"p":{"lang":"de"}}}`, false},
		{`{"header":{"app_id":"a"},"parameter":{"p":{"lang":"en","x":"\ud83d\ude00"}}}`, true},
		{`{"header":{"app_id":"a"},"parameter":{"p":{"lang":"en","x":7}}}`, false},
		{`{"header":{"app_id":"a"}} x`, false},
		{`{"header":{"app_id":"a"},}`, false},
		{` {"header" : {"app_id" : "a" } } `, true},
	} {
		err := ts.s.ValidateJSON([]byte(c.doc))
		if (err == nil) != c.valid {
			t.Errorf("%s: %v, want valid %v", c.doc, err, c.valid)
		}
		if ref, derr := DecodeJSON([]byte(c.doc)); derr == nil {
			agree(t, ts, []byte(c.doc), ref, nil)
		} else if err == nil || !strings.HasPrefix(err.Error(), "invalid request json: ") {
			t.Errorf("%s: %v, want invalid request json", c.doc, err)
		}
	}
}

func TestDecodeMembers(t *testing.T) {
	for doc, want := range map[string]map[string]any{
		`{"header":{"app_id":"a","n":1},"payload":{"input":{"audio":"AAAA"}}}`: {"header": map[string]any{"app_id": "a", "n": json.Number("1")}},
		`{"header":null,"parameter":{"p":[1,"x"]}}`:                            {"header": nil, "parameter": map[string]any{"p": []any{json.Number("1"), "x"}}},
		`{"he\u0061der":{"a":"b"},"header":{"a":"c"}}`:                         {"header": map[string]any{"a": "c"}},
		`{"header":{"a":"b"},"header":{"a":"c"}}`:                              {"header": map[string]any{"a": "c"}},
		`{"payload":{}}`: nil,
		`[1]`:            nil,
		`{"header":`:     nil,
	} {
		got := DecodeMembers([]byte(doc), inheritedKeys...)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %#v, want %#v", doc, got, want)
		}
	}
}

// --- corpus ---

// interesting are values put in every place of generated documents.
var interesting = func() []any {
	out := []any{nil, true, false, "", "a", "ab", "abc", "abcdef", "en", "fr", "de", "utf8", "raw", "x", "z", "zé",
		"é", "漢字", "😀", "a\x00b", "line\nbreak", `quo"te`, "sl/ash", "\ufffd", strings.Repeat("a", 50), strings.Repeat("a", 51),
		strings.Repeat("é", 8), strings.Repeat("é", 9), "16000", "1.5",
		[]any{}, []any{json.Number("1")}, []any{json.Number("1"), json.Number("2")}, []any{json.Number("1"), json.Number("2.0")},
		[]any{json.Number("0.5")}, []any{json.Number("2")}, []any{"a"}, []any{nil}, []any{json.Number("0.5"), json.Number("1"), json.Number("1.4"), json.Number("1.49")},
		[]any{map[string]any{"v": json.Number("1")}, map[string]any{"v": json.Number("3")}},
		map[string]any{}, map[string]any{"k": "v"}, map[string]any{"k": []any{json.Number("1"), json.Number("2")}},
		map[string]any{"k": []any{json.Number("1"), json.Number("2.0")}}, map[string]any{"x": true}, map[string]any{"x": json.Number("1")},
		map[string]any{"app_id": "a"}, map[string]any{"lang": "en"}, map[string]any{"deep": json.Number("1")},
	}
	for _, n := range []string{"0", "1", "-1", "2", "3", "5", "7", "10", "-5", "-6", "100", "101", "105", "1000", "16000", "8000", "65535", "65536",
		"1.0", "1.5", "-0", "1e2", "1E+2", "1e-3", "0.001", "0.0009", "99.999", "10.5", "1e400", "-1e400", "1e-400",
		"12345678901234567890123", "12345678901234567890124", "123456789012345678901234567890", "9223372036854775807",
		"9223372036854775808", "-9223372036854775809", "450", "451", "79", "80"} {
		out = append(out, json.Number(n))
	}
	return out
}()

// schemaValues are the literals a schema mentions (enum items, consts, bounds and their
// neighbours, strings at and past length limits).
func schemaValues(s any) []any {
	var out []any
	var walkSchema func(v any)
	walkSchema = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, kv := range x {
				switch k {
				case "enum":
					if arr, ok := kv.([]any); ok {
						out = append(out, arr...)
					}
				case "const":
					out = append(out, kv)
				case "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf":
					if n, ok := kv.(json.Number); ok {
						out = append(out, n)
						if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
							out = append(out, json.Number(strconv.FormatInt(i-1, 10)), json.Number(strconv.FormatInt(i+1, 10)))
						}
					}
				case "minLength", "maxLength":
					if n, ok := kv.(json.Number); ok {
						if i, err := strconv.Atoi(string(n)); err == nil && i < 100 {
							for _, l := range []int{i - 1, i, i + 1} {
								if l >= 0 {
									out = append(out, strings.Repeat("b", l), strings.Repeat("ü", l))
								}
							}
						}
					}
				}
				walkSchema(kv)
			}
		case []any:
			for _, it := range x {
				walkSchema(it)
			}
		}
	}
	walkSchema(s)
	return out
}

// generate builds a document meant to pass schema s.
func generate(s any, depth int) any {
	m, ok := s.(map[string]any)
	if !ok || depth > 8 {
		return "x"
	}
	if c, ok := m["const"]; ok {
		return c
	}
	if e, ok := m["enum"].([]any); ok && len(e) > 0 {
		return e[0]
	}
	for _, k := range []string{"allOf", "anyOf", "oneOf"} {
		if subs, ok := m[k].([]any); ok && len(subs) > 0 {
			merged := map[string]any{}
			for kk, v := range m {
				if kk != k {
					merged[kk] = v
				}
			}
			if sm, ok := subs[0].(map[string]any); ok {
				for kk, v := range sm {
					merged[kk] = v
				}
			}
			return generate(merged, depth+1)
		}
	}
	types := typeList(m["type"])
	t := ""
	if len(types) > 0 {
		t = types[0]
	} else if _, ok := m["properties"]; ok {
		t = "object"
	} else if _, ok := m["required"]; ok {
		t = "object"
	} else if _, ok := m["items"]; ok {
		t = "array"
	}
	switch t {
	case "object":
		obj := map[string]any{}
		props, _ := m["properties"].(map[string]any)
		for k, ps := range props {
			if ps == false {
				continue
			}
			obj[k] = generate(ps, depth+1)
		}
		if req, ok := m["required"].([]any); ok {
			for _, r := range req {
				if k, ok := r.(string); ok {
					if _, ok := obj[k]; !ok {
						obj[k] = generate(props[k], depth+1)
					}
				}
			}
		}
		return obj
	case "array":
		return []any{generate(m["items"], depth+1)}
	case "integer", "number":
		for _, k := range []string{"minimum", "maximum"} {
			if n, ok := m[k].(json.Number); ok {
				if _, err := strconv.ParseInt(string(n), 10, 64); err == nil {
					return n
				}
			}
		}
		return json.Number("1")
	case "boolean":
		return true
	case "null":
		return nil
	}
	str := "abc"
	if n, ok := m["maxLength"].(json.Number); ok {
		if i, _ := strconv.Atoi(string(n)); i < 3 {
			str = str[:i]
		}
	}
	if p, ok := m["pattern"].(string); ok {
		re := regexp.MustCompile(p)
		for _, c := range []string{str, "a", "abc", "en", "zz", "1.5", "A_b-1", "raw"} {
			if re.MatchString(c) {
				return c
			}
		}
	}
	return str
}

// corpus is the generated document of s and its mutations: every member and element
// replaced by interesting values and by each value s mentions, removed, and joined by an
// unknown member.
func corpus(s any) []any {
	base := generate(s, 0)
	values := append(append([]any{}, interesting...), schemaValues(s)...)
	seeds := []any{base, nil, json.Number("1"), "s", []any{}, map[string]any{},
		map[string]any{"header": map[string]any{"app_id": "a", "status": json.Number("1")}, "payload": map[string]any{"input": map[string]any{"text": "aGk=", "status": json.Number("1")}}},
		map[string]any{"parameter": map[string]any{"p": map[string]any{"n": json.Number("1")}}, "payload": map[string]any{}}}
	out := append([]any{}, seeds...)
	var paths [][]any
	collectPaths(base, nil, &paths)
	for pi, p := range paths {
		// Every value the schema mentions, and half of the interesting ones in turn.
		for vi, v := range values {
			if vi < len(interesting) && vi%2 != pi%2 {
				continue
			}
			out = append(out, replaceAt(base, p, v))
		}
		out = append(out, replaceAt(base, p, removed{}))
		out = append(out, replaceAt(base, p, extra{}))
	}
	return out
}

type removed struct{}
type extra struct{}

func collectPaths(v any, prefix []any, out *[][]any) {
	switch x := v.(type) {
	case map[string]any:
		*out = append(*out, append(append([]any{}, prefix...), extra{}))
		for _, k := range sortedKeys(x) {
			p := append(append([]any{}, prefix...), k)
			*out = append(*out, p)
			collectPaths(x[k], p, out)
		}
	case []any:
		for i := range x {
			p := append(append([]any{}, prefix...), i)
			*out = append(*out, p)
			collectPaths(x[i], p, out)
		}
	}
}

// replaceAt returns a copy of v with the value at path replaced by with (removed: deleted;
// a path ending in extra{}: an unknown member "zz" added).
func replaceAt(v any, path []any, with any) any {
	if len(path) == 0 {
		return with
	}
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x)+1)
		for k, vv := range x {
			m[k] = vv
		}
		switch k := path[0].(type) {
		case extra:
			m["zz"] = json.Number("1")
		case string:
			if len(path) == 1 {
				switch with.(type) {
				case removed:
					delete(m, k)
				case extra:
				default:
					m[k] = with
				}
				return m
			}
			m[k] = replaceAt(x[k], path[1:], with)
		}
		return m
	case []any:
		a := append([]any{}, x...)
		if i, ok := path[0].(int); ok && i < len(a) {
			if len(path) == 1 {
				switch with.(type) {
				case removed:
					return append(a[:i], a[i+1:]...)
				case extra:
					return a
				}
				a[i] = with
				return a
			}
			a[i] = replaceAt(a[i], path[1:], with)
		}
		return a
	}
	return v
}

// encOptions vary how a document is written.
type encOptions struct {
	space     bool // white space around every token
	escapeKey bool // every key's first character as a \u escape
	escapeStr bool // every string's characters as \u escapes
	repeat    bool // every object's first member written twice, first with null
}

// encodings are the ways the corpus writes its i-th document: compact, and one of the
// odd ways in turn.
func encodings(doc any, i int) [][]byte {
	odd := []encOptions{{space: true, escapeStr: true}, {escapeKey: true}, {repeat: true}}
	return [][]byte{encode(doc, encOptions{}), encode(doc, odd[i%len(odd)])}
}

func encode(v any, o encOptions) []byte {
	var b bytes.Buffer
	encodeTo(&b, v, o)
	return b.Bytes()
}

func encodeTo(b *bytes.Buffer, v any, o encOptions) {
	sp := func() {
		if o.space {
			b.WriteString(" \n\t")
		}
	}
	switch x := v.(type) {
	case map[string]any:
		keys := sortedKeys(x)
		b.WriteByte('{')
		sp()
		for i, k := range keys {
			if i == 0 && o.repeat {
				encodeString(b, k, o.escapeKey)
				b.WriteString(":null,")
			}
			if i > 0 {
				b.WriteByte(',')
				sp()
			}
			encodeString(b, k, o.escapeKey)
			sp()
			b.WriteByte(':')
			sp()
			encodeTo(b, x[k], o)
			sp()
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, it := range x {
			if i > 0 {
				b.WriteByte(',')
				sp()
			}
			encodeTo(b, it, o)
		}
		b.WriteByte(']')
	case string:
		if o.escapeStr {
			b.WriteByte('"')
			for _, r := range x {
				if r > 0xffff {
					r1, r2 := utf16Pair(r)
					fmt.Fprintf(b, `\u%04x\u%04x`, r1, r2)
					continue
				}
				fmt.Fprintf(b, `\u%04x`, r)
			}
			b.WriteByte('"')
			return
		}
		encodeString(b, x, false)
	case json.Number:
		b.WriteString(string(x))
	default:
		out, _ := json.Marshal(x)
		b.Write(out)
	}
}

func utf16Pair(r rune) (rune, rune) {
	r -= 0x10000
	return 0xd800 + (r>>10)&0x3ff, 0xdc00 + r&0x3ff
}

// encodeString writes s as a JSON string; escapeFirst writes its first rune as \u escape.
func encodeString(b *bytes.Buffer, s string, escapeFirst bool) {
	if escapeFirst && s != "" {
		r, n := utf8.DecodeRuneInString(s)
		if r < 0x10000 && r != utf8.RuneError {
			fmt.Fprintf(b, `"\u%04x`, r)
			out, _ := json.Marshal(s[n:])
			b.Write(out[1:])
			return
		}
	}
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	b.Truncate(b.Len() - 1) // the encoder's newline
}

// FuzzValidate: for every schema, the compiled validator (on the tree and from the bytes,
// alone and as a later message over a first one) decides as the library, words the same
// errors, and never panics.
func FuzzValidate(f *testing.F) {
	schemas := allSchemas(f)
	for i, ts := range schemas {
		doc := generate(ts.input, 0)
		f.Add(encode(doc, encOptions{}), []byte(`{"header":{"app_id":"a"}}`), uint8(i))
		f.Add(encode(doc, encOptions{repeat: true, escapeKey: true}), encode(doc, encOptions{}), uint8(i))
	}
	f.Add([]byte(`{"header":{"app_id":"a","status":1},"payload":{"input":{"text":"aGk=","seq":1e10000000}}}`), []byte(`{}`), uint8(0))
	f.Add([]byte(`{"header":{"st\u0061tus":1,"status":"x"},"parameter":{"p":{"n":-1}}}`), []byte(`{"header":{"app_id":"é","uid":7},"parameter":{"p":{"lang":"en"}}}`), uint8(3))
	f.Add([]byte(`[{"a":[1,2,{"b":null}]}, "\ud800", 1.5e-7]`), []byte(`[]`), uint8(5))
	f.Fuzz(func(t *testing.T, data, first []byte, which uint8) {
		ts := schemas[int(which)%len(schemas)]
		ref, err := DecodeJSON(data)
		if err != nil {
			if err := ts.s.ValidateOver(data, nil, nil); err == nil || !strings.HasPrefix(err.Error(), "invalid request json: ") {
				t.Fatalf("%s: invalid JSON %q: %v", ts.name, data, err)
			}
			return
		}
		agree(t, ts, data, ref, nil)
		full, err := DecodeJSON(first)
		fullMap, ok := full.(map[string]any)
		if err != nil || !ok {
			return
		}
		base := DecodeMembers(first, inheritedKeys...)
		for _, k := range inheritedKeys {
			v, ok := fullMap[k]
			if bv, bok := base[k]; ok != bok || !reflect.DeepEqual(v, bv) {
				t.Fatalf("DecodeMembers(%q)[%s] = %v, want %v", first, k, bv, v)
			}
		}
		later, _ := DecodeJSON(data)
		agree(t, ts, data, overlayTop(later, fullMap, inheritedKeys), base)
	})
}
