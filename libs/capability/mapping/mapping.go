// Package mapping is the rule language that maps iFLYTEK's WebAPI 2.0 envelope
// ({"common","business","data"}) to an ASE request document ({"header","parameter",
// "payload"}) and an ASE response document back to the WebAPI 2.0 "data" object.
//
// A capability schema carries the rules as data in its "webapi" block:
//
//	"webapi": {
//	  "route": "/v2/iat",
//	  "request":  {"data": {"mapping": [{"data_type": "audio", "rule": [{"src": "$.data.audio", "dst": "$.payload.input.audio"}]}]}},
//	  "response": {"data": {"mapping": [{"data_type": "text",  "rule": [{"src": "$.payload.result.text", "dst": "$.data.result"}]}]}},
//	  "script": {"first": [{"if": "$.business.dwa == \"wpgs\"", "then": [{"value": 1, "dst": "$.parameter.iat.wpgs"}]}],
//	             "every": []}
//	}
//
// Paths are "$" followed by ".key" segments. A rule copies the value at src (or the
// literal value) to dst, creating objects on the way; a missing src copies nothing.
// Conditions are "<path>" (present and not false, null, 0 or ""), "<path> == <JSON
// literal>" or "<path> != <JSON literal>" on the request's common, business or data.
// The package knows nothing of transports; Compile refuses a bad rule with the rule and
// the reason.
package mapping

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Data field names of an ASE payload item.
var dataFields = map[string]bool{"text": true, "audio": true, "image": true, "video": true, "other": true}

// Wire is the "webapi" block of a capability schema, as written.
type Wire struct {
	Route string `json:"route"`
	// EnableRetry lets a client whose WebSocket dropped resume its session on a new
	// connection with common.cmd "retry" and common.sid (ASF's enable_retry).
	EnableRetry bool    `json:"enable_retry"`
	Request     wireDir `json:"request"`
	Response    wireDir `json:"response"`
	Script      struct {
		First []wireCond `json:"first"`
		Every []wireCond `json:"every"`
	} `json:"script"`
}

type wireDir struct {
	Data struct {
		Mapping blocks `json:"mapping"`
	} `json:"data"`
}

// blocks accepts one block or a list of blocks.
type blocks []wireBlock

func (b *blocks) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if len(data) > 0 && data[0] == '{' {
		var one wireBlock
		if err := json.Unmarshal(data, &one); err != nil {
			return err
		}
		*b = blocks{one}
		return nil
	}
	var many []wireBlock
	if err := json.Unmarshal(data, &many); err != nil {
		return err
	}
	*b = many
	return nil
}

type wireBlock struct {
	DataType string     `json:"data_type"`
	Rule     []wireRule `json:"rule"`
}

type wireRule struct {
	Src   string          `json:"src"`
	Dst   string          `json:"dst"`
	Value json.RawMessage `json:"value"`
}

type wireCond struct {
	If   string     `json:"if"`
	Then []wireRule `json:"then"`
}

// Spec is a compiled "webapi" block. It is immutable and safe for concurrent use.
type Spec struct {
	route   string
	service string
	req     []rule
	resp    []rule
	first   []cond
	every   []cond
	mapsPar bool // a request mapping rule (not a script rule) writes under $.parameter
	retry   bool
}

type rule struct {
	src   []string
	dst   []string
	value any // literal when src is nil
	text  string
}

type cond struct {
	path  []string
	op    string // "", "==", "!="
	value any
	then  []rule
}

// Error is a refused rule: Where names it (request.data.mapping[0].rule[1], ...), Rule
// is its text, Reason why it is refused.
type Error struct {
	Where, Rule, Reason string
}

func (e *Error) Error() string {
	return fmt.Sprintf("webapi.%s %s: %s", e.Where, e.Rule, e.Reason)
}

// Route is the WebAPI 2.0 route of the capability.
func (s *Spec) Route() string { return s.route }

// Retry reports whether a dropped WebSocket session of the capability may be resumed
// with common.cmd "retry" (the block's enable_retry).
func (s *Spec) Retry() bool { return s.retry }

// Compile parses and checks a "webapi" block of capability service (the ASE parameter
// key that business maps to by default).
func Compile(raw []byte, service string) (*Spec, error) {
	var w Wire
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return nil, fmt.Errorf("webapi: %v", err)
	}
	s := &Spec{route: strings.TrimSuffix(w.Route, "/"), service: service, retry: w.EnableRetry}
	if s.route == "" || !strings.HasPrefix(s.route, "/") || strings.ContainsAny(s.route, "?# ") {
		return nil, &Error{Where: "route", Rule: fmt.Sprintf("%q", w.Route), Reason: "must be an absolute path"}
	}
	if s.route == "/v2" || strings.HasPrefix(s.route, "/v2/health") || strings.HasPrefix(s.route, "/v2/models") {
		return nil, &Error{Where: "route", Rule: fmt.Sprintf("%q", w.Route), Reason: "is an Open Inference Protocol route"}
	}
	var err error
	if s.req, err = compileBlocks(w.Request.Data.Mapping, "request.data.mapping", reqSrc, reqDst, true); err != nil {
		return nil, err
	}
	if s.resp, err = compileBlocks(w.Response.Data.Mapping, "response.data.mapping", respSrc, respDst, false); err != nil {
		return nil, err
	}
	if s.first, err = compileConds(w.Script.First, "script.first"); err != nil {
		return nil, err
	}
	if s.every, err = compileConds(w.Script.Every, "script.every"); err != nil {
		return nil, err
	}
	for _, rs := range [][]rule{s.req} {
		for _, r := range rs {
			if r.dst[0] == "parameter" {
				s.mapsPar = true
			}
		}
	}
	return s, nil
}

var (
	reqSrc  = []string{"common", "business", "data"}
	reqDst  = []string{"header", "parameter", "payload"}
	respSrc = []string{"header", "payload"}
	respDst = []string{"data"}
)

func compileBlocks(bs []wireBlock, where string, src, dst []string, request bool) ([]rule, error) {
	var out []rule
	for i, b := range bs {
		bw := fmt.Sprintf("%s[%d]", where, i)
		if !dataFields[b.DataType] {
			return nil, &Error{Where: bw + ".data_type", Rule: fmt.Sprintf("%q", b.DataType), Reason: "must be text, audio, image, video or other"}
		}
		for j, wr := range b.Rule {
			rw := fmt.Sprintf("%s.rule[%d]", bw, j)
			r, err := compileRule(wr, rw, src, dst)
			if err != nil {
				return nil, err
			}
			// The data field of a payload item must be of the block's data type.
			side := r.dst
			if !request {
				side = r.src
			}
			if len(side) == 3 && side[0] == "payload" && dataFields[side[2]] && side[2] != b.DataType {
				return nil, &Error{Where: rw, Rule: r.text, Reason: fmt.Sprintf("data field %s does not match data_type %s", side[2], b.DataType)}
			}
			out = append(out, r)
		}
	}
	return out, nil
}

func compileRule(wr wireRule, where string, src, dst []string) (rule, error) {
	text := ruleText(wr)
	r := rule{text: text}
	hasValue := len(bytes.TrimSpace(wr.Value)) > 0
	switch {
	case wr.Src != "" && hasValue:
		return r, &Error{Where: where, Rule: text, Reason: "src and value are exclusive"}
	case wr.Src == "" && !hasValue:
		return r, &Error{Where: where, Rule: text, Reason: "src or value is required"}
	case hasValue:
		if err := json.Unmarshal(wr.Value, &r.value); err != nil {
			return r, &Error{Where: where, Rule: text, Reason: "value: " + err.Error()}
		}
	default:
		p, err := parsePath(wr.Src, src)
		if err != nil {
			return r, &Error{Where: where, Rule: text, Reason: "src: " + err.Error()}
		}
		r.src = p
	}
	p, err := parsePath(wr.Dst, dst)
	if err != nil {
		return r, &Error{Where: where, Rule: text, Reason: "dst: " + err.Error()}
	}
	if len(p) < 2 {
		return r, &Error{Where: where, Rule: text, Reason: "dst: must name a field below $." + p[0]}
	}
	r.dst = p
	return r, nil
}

func ruleText(wr wireRule) string {
	b, _ := json.Marshal(wr)
	return string(b)
}

func compileConds(cs []wireCond, where string) ([]cond, error) {
	out := make([]cond, 0, len(cs))
	for i, wc := range cs {
		cw := fmt.Sprintf("%s[%d]", where, i)
		c, err := parseCond(wc.If)
		if err != nil {
			return nil, &Error{Where: cw + ".if", Rule: fmt.Sprintf("%q", wc.If), Reason: err.Error()}
		}
		if len(wc.Then) == 0 {
			return nil, &Error{Where: cw + ".then", Rule: fmt.Sprintf("%q", wc.If), Reason: "then needs at least one rule"}
		}
		for j, wr := range wc.Then {
			r, err := compileRule(wr, fmt.Sprintf("%s.then[%d]", cw, j), reqSrc, reqDst)
			if err != nil {
				return nil, err
			}
			c.then = append(c.then, r)
		}
		out = append(out, c)
	}
	return out, nil
}

func parseCond(s string) (cond, error) {
	var c cond
	s = strings.TrimSpace(s)
	lhs, rhs := s, ""
	for _, op := range []string{"==", "!="} {
		if i := strings.Index(s, op); i >= 0 {
			c.op = op
			lhs, rhs = strings.TrimSpace(s[:i]), strings.TrimSpace(s[i+2:])
			break
		}
	}
	p, err := parsePath(lhs, reqSrc)
	if err != nil {
		return c, err
	}
	c.path = p
	if c.op != "" {
		if rhs == "" {
			return c, errors.New("a JSON literal is required after " + c.op)
		}
		if err := json.Unmarshal([]byte(rhs), &c.value); err != nil {
			return c, fmt.Errorf("%s is not a JSON literal: %v", rhs, err)
		}
		if _, ok := c.value.(map[string]any); ok {
			return c, errors.New("compare with a scalar, not an object")
		}
		if _, ok := c.value.([]any); ok {
			return c, errors.New("compare with a scalar, not a list")
		}
	}
	return c, nil
}

// parsePath parses "$.a.b" into [a b]; the first segment must be one of roots.
func parsePath(p string, roots []string) ([]string, error) {
	if !strings.HasPrefix(p, "$.") {
		return nil, fmt.Errorf("path %q must start with $.<root>", p)
	}
	segs := strings.Split(p[2:], ".")
	for _, s := range segs {
		if s == "" {
			return nil, fmt.Errorf("path %q has an empty segment", p)
		}
		for _, r := range s {
			if !(r == '_' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
				return nil, fmt.Errorf("path %q: segment %q may hold only letters, digits, _ and -", p, s)
			}
		}
	}
	for _, r := range roots {
		if segs[0] == r {
			return segs, nil
		}
	}
	return nil, fmt.Errorf("path %q must start with $.%s", p, strings.Join(roots, " or $."))
}

// Request maps a WebAPI 2.0 request document to an ASE request document. common's
// scalar fields become header fields (all but cmd), data.status becomes header.status,
// business becomes parameter.<service> unless a request mapping rule writes under
// $.parameter (script rules only add to it); then the
// request rules run, then the script: "first" conditions on the first frame of a session,
// "every" conditions on every frame.
func (s *Spec) Request(doc map[string]any, first bool) map[string]any {
	out := map[string]any{}
	hdr := map[string]any{}
	if common, ok := doc["common"].(map[string]any); ok {
		for k, v := range common {
			if k == "cmd" {
				continue
			}
			switch v.(type) {
			case map[string]any, []any, nil:
				continue
			}
			hdr[k] = v
		}
	}
	if data, ok := doc["data"].(map[string]any); ok {
		if st, ok := data["status"]; ok {
			hdr["status"] = st
		}
	}
	if len(hdr) > 0 {
		out["header"] = hdr
	}
	if b, ok := doc["business"].(map[string]any); ok && !s.mapsPar && s.service != "" {
		out["parameter"] = map[string]any{s.service: cloneObject(b)}
	}
	apply(s.req, doc, out)
	if first {
		for _, c := range s.first {
			if c.holds(doc) {
				apply(c.then, doc, out)
			}
		}
	}
	for _, c := range s.every {
		if c.holds(doc) {
			apply(c.then, doc, out)
		}
	}
	return out
}

// Response maps an ASE response document to the WebAPI 2.0 "data" object: header.status
// becomes data.status, then the response rules run.
func (s *Spec) Response(doc map[string]any) map[string]any {
	out := map[string]any{}
	if hdr, ok := doc["header"].(map[string]any); ok {
		if st, ok := hdr["status"]; ok {
			out["data"] = map[string]any{"status": st}
		}
	}
	apply(s.resp, doc, out)
	data, _ := out["data"].(map[string]any)
	if data == nil {
		data = map[string]any{}
	}
	return data
}

func apply(rules []rule, src, dst map[string]any) {
	for _, r := range rules {
		v := r.value
		if r.src != nil {
			var ok bool
			if v, ok = lookup(src, r.src); !ok {
				continue
			}
		}
		set(dst, r.dst, v)
	}
}

func (c cond) holds(doc map[string]any) bool {
	v, ok := lookup(doc, c.path)
	switch c.op {
	case "==":
		return ok && equal(v, c.value)
	case "!=":
		return !ok || !equal(v, c.value)
	}
	if !ok {
		return false
	}
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case string:
		return x != ""
	case json.Number:
		f, err := x.Float64()
		return err != nil || f != 0
	case float64:
		return x != 0
	}
	return true
}

// equal compares a document value with a literal; numbers compare by value.
func equal(v, lit any) bool {
	if n, ok := v.(json.Number); ok {
		f, err := n.Float64()
		if err != nil {
			return false
		}
		v = f
	}
	switch l := lit.(type) {
	case float64:
		f, ok := v.(float64)
		return ok && f == l
	case string:
		s, ok := v.(string)
		return ok && s == l
	case bool:
		b, ok := v.(bool)
		return ok && b == l
	case nil:
		return v == nil
	}
	return false
}

func lookup(doc map[string]any, path []string) (any, bool) {
	var cur any = doc
	for _, k := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[k]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func set(doc map[string]any, path []string, v any) {
	m := doc
	for _, k := range path[:len(path)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	if o, ok := v.(map[string]any); ok {
		v = cloneObject(o) // later rules may write into it; the source stays as it was
	}
	m[path[len(path)-1]] = v
}

func cloneObject(o map[string]any) map[string]any {
	c := make(map[string]any, len(o))
	for k, v := range o {
		if m, ok := v.(map[string]any); ok {
			v = cloneObject(m)
		}
		c[k] = v
	}
	return c
}
