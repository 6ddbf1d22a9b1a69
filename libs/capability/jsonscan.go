package capability

import (
	"encoding/binary"
	"encoding/json"
	"unicode/utf8"
)

// A JSON scanner and decoder over bytes, for the validator's walk (walk.go). They accept
// exactly the JSON that encoding/json accepts, up to maxDepth levels of nesting; whatever
// they give up on (deeper documents, syntax errors) goes to encoding/json, which also words
// the errors. Every function is linear in its input.

// maxDepth bounds nesting for the scanner, decoder and walker.
const maxDepth = 64

// String flags reported by scanString.
const (
	strEscaped  uint8 = 1 << iota // the text holds a backslash escape
	strNonASCII                   // the text holds a byte ≥ 0x80
)

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

// scanString returns the end (after the closing quote) of the JSON string at b[i] == '"'
// and whether its text has escapes or non-ASCII bytes; ok is false for a control
// character, a bad escape or a missing quote.
func scanString(b []byte, i int) (end int, flags uint8, ok bool) {
	j := i + 1
	for {
		// Eight plain bytes at a time: none a quote, backslash, control or non-ASCII byte.
		for ; j+8 <= len(b); j += 8 {
			if special8(binary.LittleEndian.Uint64(b[j:])) {
				break
			}
		}
		if j >= len(b) {
			return 0, 0, false
		}
		switch c := b[j]; {
		case c == '"':
			return j + 1, flags, true
		case c == '\\':
			flags |= strEscaped
			n, ok := escapeLen(b, j)
			if !ok {
				return 0, 0, false
			}
			j += n
		case c < 0x20:
			return 0, 0, false
		case c >= 0x80:
			flags |= strNonASCII
			j++
		default:
			j++
		}
	}
}

// special8 reports whether one of the eight bytes of x is a quote, a backslash, a control
// character or non-ASCII.
func special8(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	quote := x ^ (ones * '"')
	slash := x ^ (ones * '\\')
	ctl := (x - ones*0x20) &^ x
	return (x|ctl|((quote-ones)&^quote)|((slash-ones)&^slash))&highs != 0
}

// escapeLen is the length of the escape at b[j] == '\\'.
func escapeLen(b []byte, j int) (int, bool) {
	if j+1 >= len(b) {
		return 0, false
	}
	switch b[j+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2, true
	case 'u':
		if j+6 > len(b) {
			return 0, false
		}
		for _, c := range b[j+2 : j+6] {
			if !isHex(c) {
				return 0, false
			}
		}
		return 6, true
	}
	return 0, false
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// scanNumber returns the end of the JSON number at b[i].
func scanNumber(b []byte, i int) (int, bool) {
	_, _, end, ok := numberSyntax(b, i)
	return end, ok
}

// numberSyntax reads the JSON number at b[i]: the ends of its integer digits, of its
// fraction (intEnd when it has none) and of the whole number.
func numberSyntax[T string | []byte](b T, i int) (intEnd, fracEnd, end int, ok bool) {
	j := i
	if j < len(b) && b[j] == '-' {
		j++
	}
	switch {
	case j < len(b) && b[j] == '0':
		j++
	case j < len(b) && b[j] >= '1' && b[j] <= '9':
		j = digits(b, j)
	default:
		return 0, 0, 0, false
	}
	intEnd = j
	if j < len(b) && b[j] == '.' {
		k := digits(b, j+1)
		if k == j+1 {
			return 0, 0, 0, false
		}
		j = k
	}
	fracEnd = j
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		k := digits(b, j)
		if k == j {
			return 0, 0, 0, false
		}
		j = k
	}
	return intEnd, fracEnd, j, true
}

func digits[T string | []byte](b T, j int) int {
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		j++
	}
	return j
}

// scanLiteral returns the end of lit (true, false or null) at b[i].
func scanLiteral(b []byte, i int, lit string) (int, bool) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return 0, false
	}
	return i + len(lit), true
}

// skipValue returns the end of the JSON value at b[i], checking its syntax.
func skipValue(b []byte, i, depth int) (int, bool) {
	if i >= len(b) || depth > maxDepth {
		return 0, false
	}
	switch c := b[i]; c {
	case '"':
		end, _, ok := scanString(b, i)
		return end, ok
	case '{':
		return members(b, i, func(_, _ int, _ uint8, j int) (int, bool) { return skipValue(b, j, depth+1) })
	case '[':
		return elements(b, i, func(j int) (int, bool) { return skipValue(b, j, depth+1) })
	case 't':
		return scanLiteral(b, i, "true")
	case 'f':
		return scanLiteral(b, i, "false")
	case 'n':
		return scanLiteral(b, i, "null")
	}
	return scanNumber(b, i)
}

// members calls member for every member of the object at b[i] == '{' with its key's JSON
// string b[ks:ke], the key's string flags and where its value starts; member returns the
// value's end. members returns the object's end.
func members(b []byte, i int, member func(ks, ke int, flags uint8, j int) (int, bool)) (int, bool) {
	return sequence(b, i, '}', func(j int) (int, bool) {
		if j >= len(b) || b[j] != '"' {
			return 0, false
		}
		ke, flags, ok := scanString(b, j)
		if !ok {
			return 0, false
		}
		k := skipWS(b, ke)
		if k >= len(b) || b[k] != ':' {
			return 0, false
		}
		return member(j, ke, flags, skipWS(b, k+1))
	})
}

// elements calls element for every element of the array at b[i] == '[' with where it
// starts; element returns its end. elements returns the array's end.
func elements(b []byte, i int, element func(j int) (int, bool)) (int, bool) {
	return sequence(b, i, ']', element)
}

// sequence calls item for every comma-separated item of the object or array at b[i] up to
// its closing byte, with where the item starts; item returns its end.
func sequence(b []byte, i int, closing byte, item func(j int) (int, bool)) (int, bool) {
	j := skipWS(b, i+1)
	if j < len(b) && b[j] == closing {
		return j + 1, true
	}
	for {
		var ok bool
		if j, ok = item(j); !ok {
			return 0, false
		}
		j = skipWS(b, j)
		if j >= len(b) {
			return 0, false
		}
		switch b[j] {
		case closing:
			return j + 1, true
		case ',':
			j = skipWS(b, j+1)
		default:
			return 0, false
		}
	}
}

// plainText reports whether a string's raw text (flags from scanString) is its decoded
// text: no escapes, and valid UTF-8 (encoding/json replaces invalid bytes).
func plainText(raw []byte, flags uint8) bool {
	return flags&strEscaped == 0 && (flags&strNonASCII == 0 || utf8.Valid(raw))
}

// decodeString decodes the JSON string b[i:end] as encoding/json does.
func decodeString(b []byte, i, end int, flags uint8) (string, bool) {
	if raw := b[i+1 : end-1]; plainText(raw, flags) {
		return string(raw), true
	}
	var s string
	if err := json.Unmarshal(b[i:end], &s); err != nil {
		return "", false
	}
	return s, true
}

// decodeValue decodes the JSON value at b[i] as a json.Decoder with UseNumber does
// (objects as map[string]any, arrays as []any, numbers as json.Number; a repeated key
// keeps its last value) and returns its end.
func decodeValue(b []byte, i, depth int) (any, int, bool) {
	if i >= len(b) || depth > maxDepth {
		return nil, 0, false
	}
	switch c := b[i]; c {
	case '"':
		end, flags, ok := scanString(b, i)
		if !ok {
			return nil, 0, false
		}
		s, ok := decodeString(b, i, end, flags)
		return s, end, ok
	case '{':
		m := map[string]any{}
		end, ok := members(b, i, func(ks, ke int, flags uint8, j int) (int, bool) {
			k, ok := decodeString(b, ks, ke, flags)
			if !ok {
				return 0, false
			}
			v, end, ok := decodeValue(b, j, depth+1)
			m[k] = v
			return end, ok
		})
		return m, end, ok
	case '[':
		a := []any{}
		end, ok := elements(b, i, func(j int) (int, bool) {
			v, end, ok := decodeValue(b, j, depth+1)
			a = append(a, v)
			return end, ok
		})
		return a, end, ok
	case 't':
		end, ok := scanLiteral(b, i, "true")
		return true, end, ok
	case 'f':
		end, ok := scanLiteral(b, i, "false")
		return false, end, ok
	case 'n':
		end, ok := scanLiteral(b, i, "null")
		return nil, end, ok
	}
	end, ok := scanNumber(b, i)
	if !ok {
		return nil, 0, false
	}
	return json.Number(b[i:end]), end, true
}
