package forward

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/capability/mapping"
	"github.com/athenaserving/asf/services/loader/engine"
)

// typeNames are the ASE data field names of the engine data types.
var typeNames = map[engine.DataType]string{
	engine.DataText: "text", engine.DataAudio: "audio", engine.DataImage: "image",
	engine.DataVideo: "video", engine.DataOther: "other",
}

var typesByName = map[string]engine.DataType{
	"text": engine.DataText, "audio": engine.DataAudio, "image": engine.DataImage,
	"video": engine.DataVideo, "other": engine.DataOther,
}

// call is the engine-side view of one request or session frame.
type call struct {
	capability string
	headers    map[string]string
	params     map[string]string
	expect     []engine.Meta
	inputs     []engine.Payload
	status     engine.Status
	first      bool // header and parameter are sent (a once request, a session's first frame)
}

// engineDoc builds the ASE request document of c: header (with status), parameter.<capability>
// (scalars and output descriptors) and payload items (data field named after the type,
// base64 or — text with plain — the string itself, and the attributes). A session's later
// frames carry header.status and payload only, as ASE frames do.
func (s *Spec) engineDoc(c call) map[string]any {
	hdr := map[string]any{}
	if c.first {
		for k, v := range c.headers {
			hdr[k] = v
		}
		if s.Auth.Type == AuthHMAC && s.Auth.AppID != "" {
			hdr["app_id"] = s.Auth.AppID
		}
	}
	hdr["status"] = int(c.status)
	doc := map[string]any{"header": hdr}
	if c.first && (len(c.params) > 0 || len(c.expect) > 0) {
		par := make(map[string]any, len(c.params)+len(c.expect))
		for k, v := range c.params {
			par[k] = v
		}
		for _, e := range c.expect {
			attrs := make(map[string]any, len(e.Attrs))
			for k, v := range e.Attrs {
				attrs[k] = v
			}
			par[e.Name] = attrs
		}
		doc["parameter"] = map[string]any{c.capability: par}
	}
	if len(c.inputs) > 0 {
		pl := make(map[string]any, len(c.inputs))
		for _, in := range c.inputs {
			item := make(map[string]any, len(in.Attrs)+1)
			for k, v := range in.Attrs {
				item[k] = v
			}
			field := typeNames[in.Type]
			if field == "" {
				field = "other"
			}
			if field == "text" && s.PlainText {
				item[field] = string(in.Data)
			} else {
				item[field] = base64.StdEncoding.EncodeToString(in.Data)
			}
			pl[in.Name] = item
		}
		doc["payload"] = pl
	}
	return doc
}

// upstreamRequest maps an engine document to the upstream request: JSON body, query and
// headers. Without rules the body is the document itself.
func upstreamRequest(rules *mapping.Rules, doc map[string]any) (body any, query, headers map[string]string) {
	if rules.Len() == 0 {
		return doc, nil, nil
	}
	out := map[string]any{}
	rules.Apply(doc, out)
	return out["body"], scalars(out["query"]), scalars(out["headers"])
}

// scalars turns an object's scalar values into text (nested values are left out).
func scalars(v any) map[string]string {
	m, ok := v.(map[string]any)
	if !ok || len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		if s, ok := text(v); ok {
			out[k] = s
		}
	}
	return out
}

// text renders a JSON scalar as text.
func text(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case int:
		return strconv.Itoa(x), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}

// answer is an upstream answer mapped back: outputs, the status when the answer names
// one, or the coded error it reports.
type answer struct {
	outputs   []engine.Payload
	status    engine.Status
	hasStatus bool
	err       error
}

// parseJSON decodes an upstream JSON body, keeping numbers exact. An empty body is null.
func parseJSON(b []byte) (any, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("upstream answer is not valid JSON: %v: %w", err, aserr.ErrInvalidResult)
	}
	if dec.More() {
		return nil, fmt.Errorf("upstream answer has data after its JSON value: %w", aserr.ErrInvalidResult)
	}
	return v, nil
}

// decodeAnswer maps an upstream answer (body parsed with parseJSON, HTTP headers or nil)
// to an engine answer. Without rules the body must be an ASE response document
// ({"header":{"code","message","status"},"payload":{...}}); with rules, the rules build
// that document from $.body and $.headers. header.code other than 0 is the answer's
// error (10222 and 10223, which mean "this loader is unavailable" inside the suite,
// become 10226); payload items become outputs: the data field names the type and holds
// base64 (text with plain: the string; a JSON object, list or number: its JSON text,
// with format=json), every other field is an attribute.
func (s *Spec) decodeAnswer(rules *mapping.Rules, body any, hdr http.Header) answer {
	var doc map[string]any
	if rules.Len() == 0 {
		m, ok := body.(map[string]any)
		if !ok {
			return answer{err: fmt.Errorf("upstream answer is %s, not an ASE response object: %w", kind(body), aserr.ErrInvalidResult)}
		}
		doc = m
	} else {
		src := map[string]any{"body": body}
		if len(hdr) > 0 {
			h := make(map[string]any, len(hdr))
			for k, v := range hdr {
				h[k] = v[0]
			}
			src["headers"] = h
		}
		doc = map[string]any{}
		rules.Apply(src, doc)
	}
	var a answer
	if h, ok := doc["header"].(map[string]any); ok {
		if c, ok := h["code"]; ok {
			code, ok := number(c)
			if !ok {
				return answer{err: fmt.Errorf("upstream answer: header.code %v is not a number: %w", c, aserr.ErrInvalidResult)}
			}
			if code != 0 {
				msg, _ := text(h["message"])
				return answer{err: upstreamCode(code, msg)}
			}
		}
		if st, ok := h["status"]; ok {
			n, ok := number(st)
			if !ok || n < int(engine.StatusBegin) || n > int(engine.StatusOnce) {
				return answer{err: fmt.Errorf("upstream answer: status %v is not 0, 1, 2 or 3: %w", st, aserr.ErrInvalidResult)}
			}
			a.status, a.hasStatus = engine.Status(n), true
		}
	}
	if pl, ok := doc["payload"]; ok {
		items, ok := pl.(map[string]any)
		if !ok {
			return answer{err: fmt.Errorf("upstream answer: payload is %s, not an object: %w", kind(pl), aserr.ErrInvalidResult)}
		}
		outs, err := s.outputs(items)
		if err != nil {
			return answer{err: err}
		}
		a.outputs = outs
	}
	return a
}

func (s *Spec) outputs(items map[string]any) ([]engine.Payload, error) {
	names := make([]string, 0, len(items))
	for n := range items {
		names = append(names, n)
	}
	slices.Sort(names)
	outs := make([]engine.Payload, 0, len(items))
	for _, name := range names {
		item, ok := items[name].(map[string]any)
		if !ok {
			return nil, fmt.Errorf("upstream answer: payload.%s is %s, not an object: %w", name, kind(items[name]), aserr.ErrInvalidResult)
		}
		p := engine.Payload{Meta: engine.Meta{Name: name, Type: engine.DataText}}
		field := ""
		for k, v := range item {
			t, isData := typesByName[k]
			if !isData {
				sv, ok := text(v)
				if !ok {
					b, _ := json.Marshal(v)
					sv = string(b)
				}
				if p.Attrs == nil {
					p.Attrs = map[string]string{}
				}
				p.Attrs[k] = sv
				continue
			}
			if field != "" {
				return nil, fmt.Errorf("upstream answer: payload.%s has two data fields, %s and %s: %w", name, min(field, k), max(field, k), aserr.ErrInvalidResult)
			}
			field, p.Type = k, t
			switch x := v.(type) {
			case string:
				if k == "text" && s.PlainText {
					p.Data = []byte(x)
					break
				}
				b, err := base64.StdEncoding.DecodeString(x)
				if err != nil {
					return nil, fmt.Errorf("upstream answer: payload.%s.%s is not base64: %w", name, k, aserr.ErrInvalidResult)
				}
				p.Data = b
			case nil:
			default:
				b, err := json.Marshal(x)
				if err != nil {
					return nil, fmt.Errorf("upstream answer: payload.%s.%s: %v: %w", name, k, err, aserr.ErrInvalidResult)
				}
				p.Data = b
				if p.Attrs == nil {
					p.Attrs = map[string]string{}
				}
				if _, ok := item["format"]; !ok {
					p.Attrs["format"] = "json"
				}
			}
		}
		outs = append(outs, p)
	}
	return outs, nil
}

// upstreamCode is the error of an answer reporting code: kept, except 10222 and 10223.
func upstreamCode(code int, msg string) error {
	if msg == "" {
		msg = "no message"
	}
	if code == aserr.ErrNetwork.Code || code == aserr.ErrNoEngine.Code {
		return fmt.Errorf("upstream answered code %d (%s): %w", code, msg, aserr.ErrUpstreamStatus)
	}
	return aserr.Received(code, "upstream: "+msg)
}

func number(v any) (int, bool) {
	switch x := v.(type) {
	case json.Number:
		n, err := strconv.Atoi(x.String())
		return n, err == nil
	case float64:
		if x == float64(int(x)) {
			return int(x), true
		}
	case int:
		return x, true
	case string:
		n, err := strconv.Atoi(x)
		return n, err == nil
	}
	return 0, false
}

func kind(v any) string {
	switch v.(type) {
	case nil:
		return "empty"
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	case string:
		return "a string"
	case json.Number, float64:
		return "a number"
	case bool:
		return "a boolean"
	}
	return fmt.Sprintf("%T", v)
}
