package capability

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/athenaserving/asf/libs/capability/mapping"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
)

// DataType is an ASE data field name: text, audio, image, video or other.
type DataType string

// Data types (specs/ase-protocol.md §1).
const (
	DataText  DataType = "text"
	DataAudio DataType = "audio"
	DataImage DataType = "image"
	DataVideo DataType = "video"
	DataOther DataType = "other"
)

// Valid reports whether d is one of the five ASE data types.
func (d DataType) Valid() bool {
	switch d {
	case DataText, DataAudio, DataImage, DataVideo, DataOther:
		return true
	}
	return false
}

// AttrType is the JSON type of an output attribute, read from schemaoutput.
type AttrType int

// Attribute types.
const (
	AttrUnknown AttrType = iota // the output schema does not say
	AttrString
	AttrNumber // "number" or "integer"
	AttrBool
)

// RoutePrefix is the prefix of the default route /v1/private/<serviceId>.
const RoutePrefix = "/v1/private/"

// MaxSchemaBytes bounds one schema document.
const MaxSchemaBytes = 1 << 20

// Schema is one parsed and compiled capability schema document (specs/ase-protocol.md §4).
// It is immutable and safe for concurrent use.
type Schema struct {
	id       string
	version  string
	route    string
	services []string
	inputs   map[string]DataType
	accepts  map[string]DataType
	outAttrs map[string]map[string]AttrType
	outJSON  map[string]map[string]string // output → key → JSON schema type (and float format)
	readTO   time.Duration
	sessTO   time.Duration
	onceTO   time.Duration
	codeMap  map[int]int
	// traceRate is meta.trace_sample_rate (0-1), when traceSet.
	traceRate float64
	traceSet  bool
	input     *jsonschema.Schema // nil when the document has no schemainput
	check     *node              // input compiled (validator.go); nil: outside its subset
	webapi    *mapping.Spec      // nil when the document has no webapi block
	raw       []byte
	file      string
	revision  int64
}

// ID is the capability id (meta.serviceId).
func (s *Schema) ID() string { return s.id }

// Version is meta.version.
func (s *Schema) Version() string { return s.version }

// Route is meta.route, by default /v1/private/<serviceId>.
func (s *Schema) Route() string { return s.route }

// Services are the parameter keys of meta.service (at least the capability id).
func (s *Schema) Services() []string { return append([]string(nil), s.services...) }

// WebAPI is the compiled WebAPI 2.0 block (route and mappings), nil when the document
// has none.
func (s *Schema) WebAPI() *mapping.Spec { return s.webapi }

// File is the config file the schema came from ("" when parsed directly).
func (s *Schema) File() string { return s.file }

// Revision is the config revision the schema came from.
func (s *Schema) Revision() int64 { return s.revision }

// Raw is the document's text.
func (s *Schema) Raw() []byte { return s.raw }

// InputType returns the data type of input name; ok is false for inputs the schema does not list.
func (s *Schema) InputType(name string) (DataType, bool) {
	d, ok := s.inputs[name]
	return d, ok
}

// AcceptType returns the data type of output name; ok is false for outputs the schema does not list.
func (s *Schema) AcceptType(name string) (DataType, bool) {
	d, ok := s.accepts[name]
	return d, ok
}

// Inputs returns the input names, sorted.
func (s *Schema) Inputs() []string { return sortedKeys(s.inputs) }

// Accepts returns the output names, sorted.
func (s *Schema) Accepts() []string { return sortedKeys(s.accepts) }

// OutputAttrType returns the JSON type of attribute key of output item output as
// schemaoutput declares it, or AttrUnknown.
func (s *Schema) OutputAttrType(output, key string) AttrType {
	return s.outAttrs[output][key]
}

// OutputJSONType returns the JSON schema type schemaoutput declares for field key of
// output item output: "integer", "number", "float" (a number with format float or
// float32), "boolean" or "string"; "" when it does not say. The first non-null type of a
// type list counts. OIP uses it to type an output's data (INT64, FP64, FP32, BOOL).
func (s *Schema) OutputJSONType(output, key string) string {
	return s.outJSON[output][key]
}

// ReadTimeout is meta.read_timeout, 0 when absent.
func (s *Schema) ReadTimeout() time.Duration { return s.readTO }

// SessionTimeout is meta.session_timeout, 0 when absent.
func (s *Schema) SessionTimeout() time.Duration { return s.sessTO }

// OnceTimeout is meta.once_timeout, 0 when absent.
func (s *Schema) OnceTimeout() time.Duration { return s.onceTO }

// HTTPStatus returns the HTTP status meta.codeMap gives ASE code; ok is false when the map
// does not list it.
func (s *Schema) HTTPStatus(code int) (int, bool) {
	st, ok := s.codeMap[code]
	return st, ok
}

// CodeMap returns a copy of meta.codeMap (ASE code → HTTP status).
func (s *Schema) CodeMap() map[int]int {
	out := make(map[int]int, len(s.codeMap))
	for k, v := range s.codeMap {
		out[k] = v
	}
	return out
}

// HasInputSchema reports whether the document has a schemainput to validate requests with.
func (s *Schema) HasInputSchema() bool { return s.input != nil }

// Validate validates a request document decoded with DecodeJSON (or encoding/json with
// UseNumber) against schemainput. It returns nil when there is no schemainput; otherwise
// the error text is the validator's message, flattened onto one line.
func (s *Schema) Validate(doc any) error {
	if s.input == nil {
		return nil
	}
	if s.check != nil {
		var e evaluator
		err := e.check(s.check, doc)
		if !e.bad {
			if err == nil && !e.outOfRange {
				return nil
			}
			if msg := s.explain(doc); msg != "" {
				return &ValidationError{Msg: msg}
			}
		}
	}
	return s.validateLibrary(doc)
}

// explain returns the flattened error text of an invalid doc, as the library words it
// ("" when the compiled validator leaves doc to the library).
func (s *Schema) explain(doc any) string {
	e := evaluator{explain: true, loc: make([]string, 0, 8)}
	err := e.check(s.check, doc)
	switch {
	case e.bad:
		return ""
	case e.outOfRange:
		if e.rangeMsg != "" {
			return e.rangeMsg
		}
		return errOutOfRange
	case err == nil:
		return ""
	}
	causes := []*jsonschema.ValidationError{err}
	if _, ok := err.ErrorKind.(*kind.Group); ok {
		causes = err.Causes
	}
	top := &jsonschema.ValidationError{
		SchemaURL: s.input.Location,
		ErrorKind: &kind.Schema{Location: s.input.Location},
		Causes:    causes,
	}
	return flatten(top.Error())
}

// errOutOfRange words a document refused for a number big.Rat cannot hold.
const errOutOfRange = "a number is out of range"

// validateLibrary validates doc with the jsonschema library. The library panics on a
// number big.Rat cannot hold under a numeric keyword: such a document is refused.
func (s *Schema) validateLibrary(doc any) (verr error) {
	defer func() {
		if r := recover(); r != nil {
			verr = &ValidationError{Msg: errOutOfRange}
		}
	}()
	if err := s.input.Validate(doc); err != nil {
		var ve *jsonschema.ValidationError
		if errors.As(err, &ve) {
			return &ValidationError{Msg: flatten(ve.Error())}
		}
		return &ValidationError{Msg: flatten(err.Error())}
	}
	return nil
}

// ValidateJSON decodes data and validates it against schemainput.
func (s *Schema) ValidateJSON(data []byte) error {
	return s.ValidateOver(data, nil, nil)
}

// ValidateOver validates data, one JSON message, against schemainput. With base non-nil
// data is a later message of a session, validated as the session's merged view: each
// top-level member named in keys is base's member (the first message's, see
// DecodeMembers) with data's laid over it — objects merge key by key, recursively, and
// data's values win; a member data lacks or sets to null is base's. An invalid document
// gives "invalid request json: ..." as ValidateJSON does.
//
// With a compiled schemainput the message is validated from its bytes (the decoding is
// left to a message the walker cannot pass); otherwise it is decoded and validated by the
// library.
func (s *Schema) ValidateOver(data []byte, base map[string]any, keys []string) error {
	if s.input == nil {
		return nil
	}
	view := baseView{}
	if base != nil {
		view = baseView{m: base, keys: keys, top: true}
	}
	if s.check != nil && walk(s.check, data, view) {
		return nil
	}
	doc, err := decodeDocument(data)
	if err != nil {
		return &ValidationError{Msg: "invalid request json: " + err.Error()}
	}
	if base != nil {
		doc = view.apply(doc)
	}
	return s.Validate(doc)
}

// DecodeMembers decodes the top-level members keys of the JSON object data as DecodeJSON
// would, skipping the others (a large payload is only scanned): what a session's later
// messages inherit (ValidateOver). It returns nil when data is not an object or has none
// of them.
func DecodeMembers(data []byte, keys ...string) map[string]any {
	var out map[string]any
	i := skipWS(data, 0)
	if i >= len(data) || data[i] != '{' {
		return nil
	}
	slow := false
	_, ok := members(data, i, func(ks, ke int, flags uint8, j int) (int, bool) {
		key := data[ks+1 : ke-1]
		if !plainText(key, flags) {
			slow = true
			return 0, false
		}
		at := slices.Index(keys, unsafeString(key))
		if at < 0 {
			return skipValue(data, j, 1)
		}
		v, end, ok := decodeValue(data, j, 1)
		if ok {
			if out == nil {
				out = make(map[string]any, len(keys))
			}
			out[keys[at]] = v
		}
		return end, ok
	})
	if ok && !slow {
		return out
	}
	doc, err := decodeDocument(data)
	m, isMap := doc.(map[string]any)
	if err != nil || !isMap {
		return nil
	}
	out = nil
	for _, k := range keys {
		if v, ok := m[k]; ok {
			if out == nil {
				out = make(map[string]any, len(keys))
			}
			out[k] = v
		}
	}
	return out
}

// decodeDocument decodes data as DecodeJSON does, with the scanner of jsonscan.go first.
func decodeDocument(data []byte) (any, error) {
	v, end, ok := decodeValue(data, skipWS(data, 0), 0)
	if ok && skipWS(data, end) == len(data) {
		return v, nil
	}
	return DecodeJSON(data)
}

// ValidationError is a schemainput validation failure; Msg is the validator's message.
type ValidationError struct{ Msg string }

func (e *ValidationError) Error() string { return e.Msg }

// DecodeJSON decodes data the way the validator expects (numbers as json.Number).
func DecodeJSON(data []byte) (any, error) {
	return jsonschema.UnmarshalJSON(bytes.NewReader(data))
}

func flatten(msg string) string {
	lines := strings.Split(msg, "\n")
	out := lines[:0]
	for _, l := range lines {
		l = strings.TrimSpace(l)
		l = strings.TrimPrefix(l, "- ")
		if l == "" || strings.HasPrefix(l, "jsonschema validation failed with") {
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "; ")
}

// wireDoc is the document's outer shape.
type wireDoc struct {
	Meta         map[string]json.RawMessage `json:"meta"`
	SchemaInput  json.RawMessage            `json:"schemainput"`
	SchemaOutput json.RawMessage            `json:"schemaoutput"`
	WebAPI       json.RawMessage            `json:"webapi"`
}

type wireService struct {
	Input  map[string]wireItem `json:"input"`
	Accept map[string]wireItem `json:"accept"`
}

type wireItem struct {
	DataType string `json:"dataType"`
}

// Parse parses and compiles one capability schema document. Errors name the offending
// field; the document is rejected as a whole.
func Parse(data []byte) (*Schema, error) {
	if len(data) > MaxSchemaBytes {
		return nil, fmt.Errorf("capability schema: %d bytes, larger than %d", len(data), MaxSchemaBytes)
	}
	var w wireDoc
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, fmt.Errorf("capability schema: invalid json: %w", err)
	}
	if w.Meta == nil {
		return nil, errors.New("capability schema: meta is required")
	}
	s := &Schema{
		inputs:   map[string]DataType{},
		accepts:  map[string]DataType{},
		outAttrs: map[string]map[string]AttrType{},
		outJSON:  map[string]map[string]string{},
		codeMap:  map[int]int{},
		raw:      append([]byte(nil), data...),
	}
	// In this order: later steps name the schema by the id the first one reads.
	for _, step := range []func(*Schema, *wireDoc) error{
		(*Schema).parseIdentity,
		(*Schema).parseSections,
		(*Schema).parseTimeouts,
		(*Schema).parseCodeMap,
		(*Schema).parseTraceRate,
		(*Schema).parseSchemas,
		(*Schema).parseWebAPI,
	} {
		if err := step(s, &w); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// parseIdentity reads meta.serviceId, version, route and service.
func (s *Schema) parseIdentity(w *wireDoc) error {
	if err := metaString(w.Meta, "serviceId", &s.id); err != nil {
		return err
	}
	if s.id == "" || strings.ContainsAny(s.id, "/?# ") {
		return fmt.Errorf("capability schema: meta.serviceId %q must be a non-empty path segment", s.id)
	}
	if err := metaString(w.Meta, "version", &s.version); err != nil {
		return err
	}
	if err := metaString(w.Meta, "route", &s.route); err != nil {
		return err
	}
	if s.route == "" {
		s.route = RoutePrefix + s.id
	}
	if !strings.HasPrefix(s.route, "/") || strings.ContainsAny(s.route, "?# ") {
		return fmt.Errorf("capability schema %s: meta.route %q must be an absolute path", s.id, s.route)
	}
	s.route = strings.TrimSuffix(s.route, "/")
	if raw, ok := w.Meta["service"]; ok && !isNull(raw) {
		if err := json.Unmarshal(raw, &s.services); err != nil {
			return fmt.Errorf("capability schema %s: meta.service must be a list of strings", s.id)
		}
	}
	if len(s.services) == 0 {
		s.services = []string{s.id}
	}
	return nil
}

// parseSections reads the input and accept items of the per-service sections; a section
// at meta level (meta.input/meta.accept) is accepted too.
func (s *Schema) parseSections(w *wireDoc) error {
	sections := map[string]json.RawMessage{}
	for _, svc := range s.services {
		if raw, ok := w.Meta[svc]; ok {
			sections["meta."+svc] = raw
		}
	}
	if _, ok := w.Meta["input"]; ok {
		sections["meta"] = mustObject(w.Meta)
	} else if _, ok := w.Meta["accept"]; ok {
		sections["meta"] = mustObject(w.Meta)
	}
	for _, where := range sortedKeys(sections) {
		var ws wireService
		if err := json.Unmarshal(sections[where], &ws); err != nil {
			return fmt.Errorf("capability schema %s: %s: %v", s.id, where, err)
		}
		if err := addItems(s.inputs, ws.Input, s.id, where+".input"); err != nil {
			return err
		}
		if err := addItems(s.accepts, ws.Accept, s.id, where+".accept"); err != nil {
			return err
		}
	}
	return nil
}

// parseTimeouts reads meta.read_timeout, session_timeout and once_timeout.
func (s *Schema) parseTimeouts(w *wireDoc) error {
	var err error
	if s.readTO, err = metaSeconds(w.Meta, "read_timeout", s.id); err != nil {
		return err
	}
	if s.sessTO, err = metaSeconds(w.Meta, "session_timeout", s.id); err != nil {
		return err
	}
	s.onceTO, err = metaSeconds(w.Meta, "once_timeout", s.id)
	return err
}

// parseCodeMap reads meta.codeMap: ASE code → HTTP status.
func (s *Schema) parseCodeMap(w *wireDoc) error {
	raw, ok := w.Meta["codeMap"]
	if !ok || isNull(raw) {
		return nil
	}
	var cm map[string]json.RawMessage
	if err := json.Unmarshal(raw, &cm); err != nil {
		return fmt.Errorf("capability schema %s: meta.codeMap must be an object", s.id)
	}
	for k, v := range cm {
		code, err1 := strconv.Atoi(k)
		st, err2 := strconv.Atoi(strings.Trim(string(v), `"`))
		if err1 != nil || err2 != nil || st < 100 || st > 599 {
			return fmt.Errorf("capability schema %s: meta.codeMap[%q] = %s: want an ASE code and an HTTP status", s.id, k, v)
		}
		s.codeMap[code] = st
	}
	return nil
}

// parseSchemas compiles schemainput and schemaoutput and reads the output attribute types.
func (s *Schema) parseSchemas(w *wireDoc) error {
	if !isNull(w.SchemaInput) {
		var err error
		if s.input, err = compile(w.SchemaInput); err != nil {
			return fmt.Errorf("capability schema %s: schemainput: %w", s.id, err)
		}
		// The library has checked the document; the compiled validator takes it when it
		// stays within its subset.
		if doc, err := DecodeJSON(w.SchemaInput); err == nil {
			s.check, _ = compileNode(doc)
		}
	}
	if !isNull(w.SchemaOutput) {
		var out any
		if err := json.Unmarshal(w.SchemaOutput, &out); err != nil {
			return fmt.Errorf("capability schema %s: schemaoutput: %w", s.id, err)
		}
		if _, err := compile(w.SchemaOutput); err != nil {
			return fmt.Errorf("capability schema %s: schemaoutput: %w", s.id, err)
		}
		readOutputTypes(s.outAttrs, s.outJSON, out)
	}
	return nil
}

// parseWebAPI compiles the WebAPI 2.0 block, whose route must differ from meta.route.
func (s *Schema) parseWebAPI(w *wireDoc) error {
	if isNull(w.WebAPI) {
		return nil
	}
	var err error
	if s.webapi, err = mapping.Compile(w.WebAPI, s.services[0]); err != nil {
		return fmt.Errorf("capability schema %s: %w", s.id, err)
	}
	if s.webapi.Route() == s.route {
		return fmt.Errorf("capability schema %s: webapi.route %s is meta.route too", s.id, s.route)
	}
	return nil
}

func mustObject(m map[string]json.RawMessage) json.RawMessage {
	b, _ := json.Marshal(m)
	return b
}

func addItems(dst map[string]DataType, items map[string]wireItem, id, where string) error {
	for name, it := range items {
		d := DataType(it.DataType)
		if d == "" {
			d = DataText
		}
		if !d.Valid() {
			return fmt.Errorf("capability schema %s: %s.%s.dataType %q is not text, audio, image, video or other", id, where, name, it.DataType)
		}
		dst[name] = d
	}
	return nil
}

func metaString(meta map[string]json.RawMessage, key string, dst *string) error {
	raw, ok := meta[key]
	if !ok || isNull(raw) {
		return nil
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return fmt.Errorf("capability schema: meta.%s must be a string", key)
	}
	return nil
}

// parseTraceRate reads meta.trace_sample_rate, the share (0-1) of the capability's
// requests and sessions traced (ASF's name for it), as a number or a numeric string.
func (s *Schema) parseTraceRate(w *wireDoc) error {
	raw, ok := w.Meta["trace_sample_rate"]
	if !ok || isNull(raw) {
		return nil
	}
	f, err := strconv.ParseFloat(strings.Trim(string(raw), `"`), 64)
	if err != nil || f < 0 || f > 1 || math.IsNaN(f) {
		return fmt.Errorf("capability schema %s: meta.trace_sample_rate = %s: want a number from 0 to 1", s.id, raw)
	}
	s.traceRate, s.traceSet = f, true
	return nil
}

// TraceSampleRate is meta.trace_sample_rate, the share (0-1) of the capability's requests
// and sessions traced; ok is false when the schema does not set it (the edge's
// trace-sample-rate applies).
func (s *Schema) TraceSampleRate() (rate float64, ok bool) {
	if s == nil || !s.traceSet {
		return 0, false
	}
	return s.traceRate, true
}

// metaSeconds reads a duration in seconds given as a number or a numeric string.
func metaSeconds(meta map[string]json.RawMessage, key, id string) (time.Duration, error) {
	raw, ok := meta[key]
	if !ok || isNull(raw) {
		return 0, nil
	}
	f, err := strconv.ParseFloat(strings.Trim(string(raw), `"`), 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || f > 86400*365 {
		return 0, fmt.Errorf("capability schema %s: meta.%s = %s: want seconds", id, key, raw)
	}
	return time.Duration(f * float64(time.Second)), nil
}

// refuseLoader keeps schema compilation offline: external $refs are errors.
type refuseLoader struct{}

func (refuseLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("external schema %q not allowed", url)
}

func compile(raw json.RawMessage) (*jsonschema.Schema, error) {
	doc, err := DecodeJSON(raw)
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.UseLoader(refuseLoader{})
	const loc = "mem://capability/schema.json"
	if err := c.AddResource(loc, doc); err != nil {
		return nil, err
	}
	sch, err := c.Compile(loc)
	if err != nil {
		return nil, errors.New(flatten(err.Error()))
	}
	return sch, nil
}

// readOutputTypes reads properties.<output>.properties.<key>.type from schemaoutput,
// descending into properties.payload first when the schema describes a whole response.
func readOutputTypes(dst map[string]map[string]AttrType, jsonTypes map[string]map[string]string, doc any) {
	props := propsOf(doc)
	if p, ok := props["payload"]; ok {
		if inner := propsOf(p); inner != nil {
			props = inner
		}
	}
	for output, osch := range props {
		for key, ksch := range propsOf(osch) {
			if t := typeOf(ksch); t != AttrUnknown {
				if dst[output] == nil {
					dst[output] = map[string]AttrType{}
				}
				dst[output][key] = t
			}
			if t := jsonTypeOf(ksch); t != "" {
				if jsonTypes[output] == nil {
					jsonTypes[output] = map[string]string{}
				}
				jsonTypes[output][key] = t
			}
		}
	}
}

func propsOf(v any) map[string]any {
	m, _ := v.(map[string]any)
	p, _ := m["properties"].(map[string]any)
	return p
}

// typeNames are the JSON type names schema v declares ("type": a name or a list).
func typeNames(v any) (m map[string]any, names []string) {
	m, _ = v.(map[string]any)
	switch t := m["type"].(type) {
	case string:
		names = []string{t}
	case []any:
		for _, x := range t {
			if s, ok := x.(string); ok {
				names = append(names, s)
			}
		}
	}
	return m, names
}

func typeOf(v any) AttrType {
	_, names := typeNames(v)
	for _, n := range names {
		switch n {
		case "integer", "number":
			return AttrNumber
		case "boolean":
			return AttrBool
		case "string":
			return AttrString
		}
	}
	return AttrUnknown
}

// jsonTypeOf is the first non-null JSON type of schema v (see OutputJSONType).
func jsonTypeOf(v any) string {
	m, names := typeNames(v)
	for _, n := range names {
		switch n {
		case "number":
			if f, _ := m["format"].(string); f == "float" || f == "float32" {
				return "float"
			}
			return n
		case "integer", "boolean", "string":
			return n
		}
	}
	return ""
}

func isNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || string(t) == "null"
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
