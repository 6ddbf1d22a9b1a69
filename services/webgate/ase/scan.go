package ase

import (
	"encoding/json"
	"strings"
)

// The fast path: a strict scanner for the common shape of ASE messages (ASCII text without
// escapes, no duplicate or case-folded envelope keys). Whatever it does not handle it gives
// up on, and the caller falls back to encoding/json, which also words every error, so
// results and errors are the same either way.

// maxScanDepth bounds nesting on the fast path; deeper documents take the slow path.
const maxScanDepth = 32

// kv is one member of a JSON object: its key and the raw text of its value.
type kv struct {
	key string
	raw json.RawMessage
}

// payloadItem is one payload member: the item name and its fields.
type payloadItem struct {
	name   string
	fields []kv
}

func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// scanString returns the end (after the closing quote) of the string starting at b[i] ==
// '"'; ok is false for escapes, control characters and non-ASCII bytes.
func scanString(b []byte, i int) (int, bool) {
	if j := plainPrefix(b, i+1); j < len(b) && b[j] == '"' {
		return j + 1, true
	}
	return 0, false
}

// plainPrefix returns the index of the first byte of b from j on that a JSON string does
// not take as it is (a quote, a backslash, a control character or a non-ASCII byte), or
// len(b). It looks at eight bytes at a time while none is special.
func plainPrefix[T ~string | ~[]byte](b T, j int) int {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	for ; j+8 <= len(b); j += 8 {
		x := uint64(b[j]) | uint64(b[j+1])<<8 | uint64(b[j+2])<<16 | uint64(b[j+3])<<24 |
			uint64(b[j+4])<<32 | uint64(b[j+5])<<40 | uint64(b[j+6])<<48 | uint64(b[j+7])<<56
		q, bs := x^(lo*'"'), x^(lo*'\\')
		if (x|((x-lo*0x20)&^x)|((q-lo)&^q)|((bs-lo)&^bs))&hi != 0 {
			break
		}
	}
	for j < len(b) && plainASCII[b[j]] {
		j++
	}
	return j
}

// scanValue returns the end of the JSON value starting at b[i] (no leading space).
func scanValue(b []byte, i, depth int) (int, bool) {
	if i >= len(b) || depth > maxScanDepth {
		return 0, false
	}
	switch c := b[i]; {
	case c == '"':
		return scanString(b, i)
	case c == '{':
		i = skipWS(b, i+1)
		if i < len(b) && b[i] == '}' {
			return i + 1, true
		}
		for {
			if i >= len(b) || b[i] != '"' {
				return 0, false
			}
			var ok bool
			if i, ok = scanString(b, i); !ok {
				return 0, false
			}
			i = skipWS(b, i)
			if i >= len(b) || b[i] != ':' {
				return 0, false
			}
			if i, ok = scanValue(b, skipWS(b, i+1), depth+1); !ok {
				return 0, false
			}
			i = skipWS(b, i)
			if i >= len(b) {
				return 0, false
			}
			if b[i] == '}' {
				return i + 1, true
			}
			if b[i] != ',' {
				return 0, false
			}
			i = skipWS(b, i+1)
		}
	case c == '[':
		i = skipWS(b, i+1)
		if i < len(b) && b[i] == ']' {
			return i + 1, true
		}
		for {
			var ok bool
			if i, ok = scanValue(b, i, depth+1); !ok {
				return 0, false
			}
			i = skipWS(b, i)
			if i >= len(b) {
				return 0, false
			}
			if b[i] == ']' {
				return i + 1, true
			}
			if b[i] != ',' {
				return 0, false
			}
			i = skipWS(b, i+1)
		}
	case c == '-' || (c >= '0' && c <= '9'):
		j := i
		for j < len(b) && (b[j] == '-' || b[j] == '+' || b[j] == '.' || b[j] == 'e' || b[j] == 'E' || (b[j] >= '0' && b[j] <= '9')) {
			j++
		}
		if !isJSONNumber(string(b[i:j])) {
			return 0, false
		}
		return j, true
	case c == 't':
		return scanLiteral(b, i, "true")
	case c == 'f':
		return scanLiteral(b, i, "false")
	case c == 'n':
		return scanLiteral(b, i, "null")
	}
	return 0, false
}

func scanLiteral(b []byte, i int, lit string) (int, bool) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return 0, false
	}
	return i + len(lit), true
}

// scanObject calls member for every member of the object starting at b[i] == '{' with the
// key (without its quotes) and where its value starts; member parses the value and returns
// its end, or false to give up. scanObject returns the object's end. Each value is read
// once, by member.
func scanObject(b []byte, i, depth int, member func(key []byte, start int) (int, bool)) (int, bool) {
	if i >= len(b) || b[i] != '{' || depth > maxScanDepth {
		return 0, false
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, true
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return 0, false
		}
		end, ok := scanString(b, i)
		if !ok {
			return 0, false
		}
		key := b[i+1 : end-1]
		i = skipWS(b, end)
		if i >= len(b) || b[i] != ':' {
			return 0, false
		}
		if i, ok = member(key, skipWS(b, i+1)); !ok {
			return 0, false
		}
		i = skipWS(b, i)
		if i >= len(b) {
			return 0, false
		}
		if b[i] == '}' {
			return i + 1, true
		}
		if b[i] != ',' {
			return 0, false
		}
		i = skipWS(b, i+1)
	}
}

// scanEnd reports whether only white space follows b[i:].
func scanEnd(b []byte, i int) bool { return skipWS(b, i) == len(b) }

// wireKV is the fast-path form of wireRequest.
type wireKV struct {
	header    []kv
	parameter json.RawMessage // the raw parameter object (fast path)
	paramMap  map[string]json.RawMessage
	payload   []payloadItem
	seen      uint8

	// The fast path's members and items go into these arrays while they fit, so that a
	// typical frame's envelope takes no allocation of its own: kvs[:used] are taken.
	kvs   [16]kv
	used  int
	items [2]payloadItem
}

// spareKVs returns the unused part of w.kvs to append an object's members to.
func (w *wireKV) spareKVs() []kv { return w.kvs[w.used:w.used] }

// took records that fields, appended to spareKVs, hold n members: they stay in w.kvs
// unless they outgrew it.
func (w *wireKV) took(n int) {
	if w.used+n <= len(w.kvs) {
		w.used += n
	} else {
		w.used = len(w.kvs)
	}
}

const (
	seenHeader uint8 = 1 << iota
	seenParameter
	seenPayload
)

// hasKey reports whether key is among kvs.
func hasKey(kvs []kv, key string) bool {
	for _, x := range kvs {
		if x.key == key {
			return true
		}
	}
	return false
}

// keySet answers "seen this key before?" for the members of one object: a linear scan
// while the object is small (the common case, no allocation), a map from linearSetMax
// keys on, so that an object with n keys costs O(n) and not O(n²).
type keySet struct {
	m map[string]struct{}
}

// linearSetMax is the member count up to which keySet scans instead of hashing.
const linearSetMax = 16

// seen reports whether key is among the n keys that key(i) returns, and remembers key.
// k is compared in place and copied only into the map.
func (s *keySet) seen(n int, key func(i int) string, k []byte) bool {
	if s.m == nil && n < linearSetMax {
		for i := 0; i < n; i++ {
			if key(i) == string(k) {
				return true
			}
		}
		return false
	}
	if s.m == nil {
		s.m = make(map[string]struct{}, 2*n)
		for i := 0; i < n; i++ {
			s.m[key(i)] = struct{}{}
		}
	}
	if _, dup := s.m[string(k)]; dup {
		return true
	}
	s.m[string(k)] = struct{}{}
	return false
}

// scanKVs collects the members of the object at b[i]; duplicate keys give up.
func scanKVs(b []byte, i, depth int, dst []kv) (int, []kv, bool) {
	base := len(dst)
	var set keySet
	keyAt := func(j int) string { return dst[base+j].key }
	end, ok := scanObject(b, i, depth, func(key []byte, start int) (int, bool) {
		end, ok := scanValue(b, start, depth+1)
		if !ok || set.seen(len(dst)-base, keyAt, key) {
			return 0, false
		}
		dst = append(dst, kv{key: internKey(key), raw: b[start:end]})
		return end, true
	})
	return end, dst, ok
}

// scanRequest is the fast path of the envelope decoding; ok is false when the message
// must take the encoding/json path.
func scanRequest(data []byte, w *wireKV) bool {
	end, ok := scanObject(data, skipWS(data, 0), 0, func(key []byte, start int) (int, bool) {
		var bit uint8
		switch string(key) {
		case "header":
			bit = seenHeader
		case "parameter":
			bit = seenParameter
		case "payload":
			bit = seenPayload
		default:
			k := string(key)
			// encoding/json matches field names without regard to case.
			if strings.EqualFold(k, "header") || strings.EqualFold(k, "parameter") || strings.EqualFold(k, "payload") {
				return 0, false
			}
			return scanValue(data, start, 1)
		}
		if w.seen&bit != 0 || start >= len(data) || data[start] != '{' {
			return 0, false
		}
		w.seen |= bit
		switch bit {
		case seenHeader:
			end, header, ok := scanKVs(data, start, 1, w.spareKVs())
			w.header = header
			w.took(len(header))
			return end, ok
		case seenParameter:
			end, ok := scanValue(data, start, 1)
			if !ok {
				return 0, false
			}
			w.parameter = data[start:end]
			return end, true
		}
		var names keySet
		return scanObject(data, start, 1, func(name []byte, start int) (int, bool) {
			if start >= len(data) || data[start] != '{' {
				return 0, false
			}
			if names.seen(len(w.payload), func(j int) string { return w.payload[j].name }, name) {
				return 0, false
			}
			end, fields, ok := scanKVs(data, start, 2, w.spareKVs())
			w.took(len(fields))
			if w.payload == nil {
				w.payload = w.items[:0]
			}
			w.payload = append(w.payload, payloadItem{name: internKey(name), fields: fields})
			return end, ok
		})
	})
	return ok && scanEnd(data, end)
}

// internKey returns common keys without allocating.
func internKey(b []byte) string {
	switch string(b) {
	case "app_id":
		return "app_id"
	case "status":
		return "status"
	case "encoding":
		return "encoding"
	case "seq":
		return "seq"
	case "sample_rate":
		return "sample_rate"
	case "channels":
		return "channels"
	case "bit_depth":
		return "bit_depth"
	case "compress":
		return "compress"
	case "format":
		return "format"
	case "text", "audio", "image", "video", "other":
		return dataFieldName(b)
	case "uid":
		return "uid"
	case "input":
		return "input"
	case "cid":
		return "cid"
	}
	return string(b)
}

func dataFieldName(b []byte) string {
	for _, f := range dataFields {
		if f == string(b) {
			return f
		}
	}
	return string(b)
}

// DecodeJSON decodes a JSON document the way a json.Decoder with UseNumber does (objects as
// map[string]any, arrays as []any, numbers as json.Number); ok is false when the document
// is outside the fast path, and the caller must decode it with encoding/json.
func DecodeJSON(data []byte) (v any, ok bool) {
	i := skipWS(data, 0)
	v, end, ok := decodeValue(data, i, 0)
	if !ok || !scanEnd(data, end) {
		return nil, false
	}
	return v, true
}

// decodeObject decodes the object at b[i] == '{' as scanObject reads it (a loop of its
// own: a member callback would cost an allocation per object).
func decodeObject(b []byte, i, depth int) (any, int, bool) {
	if depth > maxScanDepth {
		return nil, 0, false
	}
	m := map[string]any{}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return m, i + 1, true
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return nil, 0, false
		}
		end, ok := scanString(b, i)
		if !ok {
			return nil, 0, false
		}
		key := b[i+1 : end-1]
		i = skipWS(b, end)
		if i >= len(b) || b[i] != ':' {
			return nil, 0, false
		}
		v, end, ok := decodeValue(b, skipWS(b, i+1), depth+1)
		if !ok {
			return nil, 0, false
		}
		m[internKey(key)] = v
		i = skipWS(b, end)
		if i >= len(b) {
			return nil, 0, false
		}
		if b[i] == '}' {
			return m, i + 1, true
		}
		if b[i] != ',' {
			return nil, 0, false
		}
		i = skipWS(b, i+1)
	}
}

func decodeValue(b []byte, i, depth int) (any, int, bool) {
	if i >= len(b) || depth > maxScanDepth {
		return nil, 0, false
	}
	switch c := b[i]; {
	case c == '"':
		end, ok := scanString(b, i)
		if !ok {
			return nil, 0, false
		}
		return string(b[i+1 : end-1]), end, true
	case c == '{':
		return decodeObject(b, i, depth)
	case c == '[':
		a := []any{}
		i = skipWS(b, i+1)
		if i < len(b) && b[i] == ']' {
			return a, i + 1, true
		}
		for {
			v, end, ok := decodeValue(b, i, depth+1)
			if !ok {
				return nil, 0, false
			}
			a = append(a, v)
			i = skipWS(b, end)
			if i >= len(b) {
				return nil, 0, false
			}
			if b[i] == ']' {
				return a, i + 1, true
			}
			if b[i] != ',' {
				return nil, 0, false
			}
			i = skipWS(b, i+1)
		}
	case c == 't':
		end, ok := scanLiteral(b, i, "true")
		return true, end, ok
	case c == 'f':
		end, ok := scanLiteral(b, i, "false")
		return false, end, ok
	case c == 'n':
		end, ok := scanLiteral(b, i, "null")
		return nil, end, ok
	}
	end, ok := scanValue(b, i, depth)
	if !ok {
		return nil, 0, false
	}
	return json.Number(b[i:end]), end, true
}
