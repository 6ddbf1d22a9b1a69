package ase

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/athenaserving/asf/libs/aserr"
	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
)

// Data and response status values (specs/ase-protocol.md §2).
const (
	StatusBegin    int32 = 0
	StatusContinue int32 = 1
	StatusEnd      int32 = 2
	StatusOnce     int32 = 3
)

// dataFields are the payload item fields that hold the item's data, in base64.
var dataFields = [...]string{"text", "audio", "image", "video", "other"}

// isDataField reports whether name is one of the ASE data field names.
func isDataField(name string) bool {
	return slices.Contains(dataFields[:], name)
}

// wireRequest is the request envelope. Values stay raw until converted: json.RawMessage
// keeps one copy of each value's text, and data fields are base64-decoded straight from it.
type wireRequest struct {
	Header    map[string]json.RawMessage            `json:"header"`
	Parameter map[string]json.RawMessage            `json:"parameter"`
	Payload   map[string]map[string]json.RawMessage `json:"payload"`
}

// ParseFrame parses one ASE request JSON (a whole once request or one WebSocket frame) into a
// Frame for capability. Header fields become text (appid is accepted as app_id; status and sid
// are not copied into the header map); header.status sets Frame.Status, else defaultStatus.
// Scalars of parameter.<capability> become params, nested objects accepts; when the parameter
// object has no capability key but exactly one key, that one is used. Payload items are sorted
// by name. Every failure is a 10163 *aserr.Error whose message names the offending field.
func ParseFrame(data []byte, capability string, defaultStatus int32) (*atompb.Frame, error) {
	return parseFrame(data, capability, defaultStatus, true)
}

// parseFrame is ParseFrame; fast false skips the scanner (tests compare both paths).
func parseFrame(data []byte, capability string, defaultStatus int32, fast bool) (*atompb.Frame, error) {
	var w wireKV
	if !fast || !scanRequest(data, &w) {
		if err := slowRequest(data, &w); err != nil {
			return nil, err
		}
	}
	f := &atompb.Frame{Capability: capability, Status: defaultStatus}
	if err := parseHeader(f, w.header); err != nil {
		return nil, err
	}
	if w.parameter != nil {
		// Already validated by the scanner: only the decoding is left.
		if err := json.Unmarshal(w.parameter, &w.paramMap); err != nil {
			return nil, badRequest("invalid request json: %v", err)
		}
	}
	if err := parseParameter(f, w.paramMap, capability); err != nil {
		return nil, err
	}
	if err := parsePayload(f, w.payload); err != nil {
		return nil, err
	}
	return f, nil
}

// slowRequest decodes the envelope with encoding/json: every message the fast path gives
// up on, valid or not.
func slowRequest(data []byte, w *wireKV) error {
	// JSON text is UTF-8 (RFC 8259). encoding/json would replace invalid bytes in keys
	// with U+FFFD and the raw values keep them; both are the client's error. The fast
	// path takes ASCII-only text, so only messages that come here need the check.
	if !utf8.Valid(data) {
		return badRequest("invalid request json: not valid UTF-8")
	}
	var r wireRequest
	if err := json.Unmarshal(data, &r); err != nil {
		return badRequest("invalid request json: %v", err)
	}
	*w = wireKV{header: mapKVs(r.Header)}
	w.paramMap = r.Parameter
	for name, fields := range r.Payload {
		if fields == nil {
			continue // "name": null
		}
		w.payload = append(w.payload, payloadItem{name: name, fields: mapKVs(fields)})
	}
	return nil
}

func mapKVs(m map[string]json.RawMessage) []kv {
	if len(m) == 0 {
		return nil
	}
	out := make([]kv, 0, len(m))
	for k, v := range m {
		out = append(out, kv{key: k, raw: v})
	}
	return out
}

func badRequest(format string, args ...any) error {
	return aserr.Newf(aserr.ErrBadRequest.Code, format, args...)
}

func parseHeader(f *atompb.Frame, h []kv) error {
	if len(h) == 0 {
		return nil
	}
	f.Header = make(map[string]string, len(h))
	for _, m := range h {
		k, raw := m.key, m.raw
		switch k {
		case "status":
			st, err := parseStatus(raw)
			if err != nil {
				return badRequest("header.status: %v", err)
			}
			f.Status = st
			continue
		case "sid":
			// The gateway owns the sid; a client echoing it on later frames changes nothing.
			continue
		case "appid":
			if hasKey(h, "app_id") {
				continue
			}
			k = "app_id"
		}
		if v, ok := textOf(raw); ok {
			f.Header[k] = v
		}
	}
	return nil
}

// parseStatus accepts a JSON number or numeric string in 0..3.
func parseStatus(raw json.RawMessage) (int32, error) {
	s, ok := textOf(raw)
	if !ok {
		return 0, strconv.ErrSyntax
	}
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return 0, strconv.ErrSyntax
	}
	if n < int64(StatusBegin) || n > int64(StatusOnce) {
		return 0, strconv.ErrRange
	}
	return int32(n), nil
}

func parseParameter(f *atompb.Frame, p map[string]json.RawMessage, capability string) error {
	if len(p) == 0 {
		return nil
	}
	key := capability
	raw, ok := p[capability]
	if !ok {
		if len(p) != 1 {
			return nil
		}
		for k, v := range p {
			key, raw = k, v
		}
	}
	if isNull(raw) {
		return nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return badRequest("parameter.%s must be an object", key)
	}
	for k, v := range obj {
		if len(v) > 0 && v[0] == '{' {
			var attrs map[string]json.RawMessage
			if err := json.Unmarshal(v, &attrs); err != nil {
				return badRequest("parameter.%s.%s: %v", key, k, err)
			}
			acc := &atompb.Accept{Attributes: make(map[string]string, len(attrs))}
			for ak, av := range attrs {
				if s, ok := textOf(av); ok {
					acc.Attributes[ak] = s
				}
			}
			if f.Accepts == nil {
				f.Accepts = make(map[string]*atompb.Accept)
			}
			f.Accepts[k] = acc
			continue
		}
		if s, ok := textOf(v); ok {
			if f.Params == nil {
				f.Params = make(map[string]string, len(obj))
			}
			f.Params[k] = s
		}
	}
	return nil
}

func parsePayload(f *atompb.Frame, p []payloadItem) error {
	if len(p) == 0 {
		return nil
	}
	f.Payload = make([]*atompb.Item, 0, len(p))
	for _, pi := range p {
		name, fields := pi.name, pi.fields
		it := &atompb.Item{Name: name, Attributes: make(map[string]string, len(fields))}
		for _, m := range fields {
			k, raw := m.key, m.raw
			if !isDataField(k) {
				if s, ok := textOf(raw); ok {
					it.Attributes[k] = s
				}
				continue
			}
			if it.DataType != "" {
				return badRequest("payload.%s has more than one data field (%s, %s)", name, it.DataType, k)
			}
			it.DataType = k
			data, err := decodeBase64(raw)
			if err != nil {
				return badRequest("payload.%s.%s: invalid base64: %v", name, k, err)
			}
			it.Data = data
		}
		f.Payload = append(f.Payload, it)
	}
	slices.SortFunc(f.Payload, func(a, b *atompb.Item) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return nil
}

// decodeBase64 decodes a JSON string holding standard base64 (null decodes to nothing).
// The common case (no JSON escapes) decodes straight from the raw text without a copy.
func decodeBase64(raw json.RawMessage) ([]byte, error) {
	if isNull(raw) {
		return nil, nil
	}
	if len(raw) < 2 || raw[0] != '"' {
		return nil, errNotString
	}
	src := raw[1 : len(raw)-1]
	if bytes.IndexByte(src, '\\') >= 0 {
		// Escaped text, for example "\/" from encoders that escape slashes.
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		src = []byte(s)
	}
	dst := make([]byte, base64.StdEncoding.DecodedLen(len(src)))
	n, err := base64.StdEncoding.Decode(dst, src)
	if err != nil {
		return nil, err
	}
	return dst[:n], nil
}

type parseError string

func (e parseError) Error() string { return string(e) }

const errNotString = parseError("data must be a base64 string")

func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || (len(raw) == 4 && string(raw) == "null")
}

// textOf returns the text form of a JSON value: strings unquoted, numbers with their literal
// text, booleans "true"/"false", objects and arrays as compact JSON; ok is false for null.
// raw comes from a successful json.Unmarshal, so it is valid JSON.
func textOf(raw json.RawMessage) (string, bool) {
	if isNull(raw) {
		return "", false
	}
	switch raw[0] {
	case '"':
		if bytes.IndexByte(raw, '\\') < 0 {
			return string(raw[1 : len(raw)-1]), true
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", false
		}
		return s, true
	case '{', '[':
		var b bytes.Buffer
		if err := json.Compact(&b, raw); err != nil {
			return "", false
		}
		return b.String(), true
	}
	return string(raw), true
}
