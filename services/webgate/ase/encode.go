package ase

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
)

// maxEncodeDepth bounds AppendJSON's recursion; DecodeJSON's documents are at most
// maxScanDepth deep, and a mapping adds a few levels.
const maxEncodeDepth = 2 * maxScanDepth

// AppendJSON appends v as JSON, as encoding/json marshals it with HTML escaping off: v is
// a value as DecodeJSON (or a json.Decoder with UseNumber) returns it — map[string]any
// (its keys sorted), []any, string, json.Number, bool, nil — or an int or a float64. ok
// is false for any other type, a number that is not valid JSON, a NaN or infinity, or a
// value nested deeper than maxEncodeDepth: the slice returned then holds a partial value
// and is to be dropped (dst up to its length is intact), and the caller falls back to
// encoding/json.
//
// It is DecodeJSON's inverse for the WebAPI 2.0 envelope, which maps documents as maps:
// one pass with no reflection and no intermediate buffer.
func AppendJSON(dst []byte, v any) ([]byte, bool) {
	return appendJSON(dst, v, 0)
}

func appendJSON(dst []byte, v any, depth int) ([]byte, bool) {
	if depth > maxEncodeDepth {
		return dst, false
	}
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...), true
	case string:
		return appendString(dst, x), true
	case json.Number:
		if x == "" {
			return append(dst, '0'), true // as encoding/json writes an empty Number
		}
		if !isJSONNumber(string(x)) {
			return dst, false
		}
		return append(dst, x...), true
	case bool:
		return strconv.AppendBool(dst, x), true
	case int:
		return strconv.AppendInt(dst, int64(x), 10), true
	case float64:
		return appendFloat(dst, x)
	case map[string]any:
		if x == nil {
			return append(dst, "null"...), true
		}
		var arr [16]string
		keys := arr[:0]
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		dst = append(dst, '{')
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, k)
			dst = append(dst, ':')
			var ok bool
			if dst, ok = appendJSON(dst, x[k], depth+1); !ok {
				return dst, false
			}
		}
		return append(dst, '}'), true
	case []any:
		if x == nil {
			return append(dst, "null"...), true
		}
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			var ok bool
			if dst, ok = appendJSON(dst, e, depth+1); !ok {
				return dst, false
			}
		}
		return append(dst, ']'), true
	}
	return dst, false
}

// appendFloat writes f as encoding/json does: the shortest representation, in exponent
// form below 1e-6 and from 1e21 on, with a two-digit exponent cut to one ("1e-7").
func appendFloat(dst []byte, f float64) ([]byte, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return dst, false
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst, true
}
