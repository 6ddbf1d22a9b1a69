package ase

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strconv"
	"unicode/utf8"

	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
)

// AttrType is how an output attribute is written in the response JSON.
type AttrType int

// Attribute types.
const (
	AttrString AttrType = iota // a JSON string
	AttrNumber                 // a JSON number (its text must be a valid JSON number)
	AttrBool                   // a JSON boolean (its text must be "true" or "false")
)

// AttrTyper decides the JSON type of attribute key of output item output. It is the one
// place where response typing is decided, so a schema-driven typer can replace it.
type AttrTyper func(output, key string) AttrType

// numericKeys are the attributes rendered as numbers by defaultAttrType.
var numericKeys = map[string]bool{
	"sample_rate": true, "channels": true, "bit_depth": true, "frame_size": true,
	"frame_rate": true, "status": true, "seq": true, "height": true, "width": true,
}

// defaultAttrType types the well-known numeric attributes as numbers and everything else as
// strings, until capability output schemas say otherwise.
func defaultAttrType(_, key string) AttrType {
	if numericKeys[key] {
		return AttrNumber
	}
	return AttrString
}

// Renderer renders atom results as ASE response JSON. The zero value is not usable; use
// DefaultRenderer or set Typer.
type Renderer struct {
	// Typer types output attributes.
	Typer AttrTyper
}

// DefaultRenderer returns a Renderer with defaultAttrType.
func DefaultRenderer() Renderer { return Renderer{Typer: defaultAttrType} }

// AppendResult appends the ASE response JSON of res to dst. A result with a non-zero code is
// rendered as an error response.
func (r Renderer) AppendResult(dst []byte, res *atompb.Result) []byte {
	return r.AppendResultCID(dst, res, "")
}

// AppendResultCID is AppendResult with header.cid set to cid (multiplexed sub-sessions);
// an empty cid is left out.
func (r Renderer) AppendResultCID(dst []byte, res *atompb.Result, cid string) []byte {
	if res.GetCode() != 0 {
		return AppendErrorCID(dst, int(res.GetCode()), res.GetMessage(), res.GetSid(), cid)
	}
	dst = append(dst, `{"header":{"code":0,"message":"success","sid":`...)
	dst = appendString(dst, res.GetSid())
	if cid != "" {
		dst = append(dst, `,"cid":`...)
		dst = appendString(dst, cid)
	}
	dst = append(dst, `,"status":`...)
	dst = strconv.AppendInt(dst, int64(res.GetStatus()), 10)
	dst = append(dst, '}')
	if len(res.GetPayload()) > 0 {
		dst = append(dst, `,"payload":{`...)
		for i, it := range res.GetPayload() {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, it.GetName())
			dst = append(dst, ':')
			dst = r.appendItem(dst, it)
		}
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

func (r Renderer) appendItem(dst []byte, it *atompb.Item) []byte {
	dataType := it.GetDataType()
	if dataType == "" {
		dataType = "text"
	}
	attrs := it.GetAttributes()
	var small [16]string // the usual attribute count: sorted on the stack
	keys := small[:0]
	for k := range attrs {
		if k != dataType {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	typer := r.Typer
	if typer == nil {
		typer = defaultAttrType
	}
	dst = append(dst, '{')
	for _, k := range keys {
		v := attrs[k]
		dst = appendString(dst, k)
		dst = append(dst, ':')
		switch typer(it.GetName(), k) {
		case AttrNumber:
			if isJSONNumber(v) {
				dst = append(dst, v...)
				break
			}
			dst = appendString(dst, v)
		case AttrBool:
			if v == "true" || v == "false" {
				dst = append(dst, v...)
				break
			}
			dst = appendString(dst, v)
		default:
			dst = appendString(dst, v)
		}
		dst = append(dst, ',')
	}
	dst = appendString(dst, dataType)
	dst = append(dst, ':')
	if attrs["format"] == "json" && len(it.GetData()) > 0 {
		// Compact validates as it copies and writes nothing on error.
		b := bytes.NewBuffer(dst)
		if err := json.Compact(b, it.GetData()); err == nil {
			return append(b.Bytes(), '}')
		}
	}
	dst = append(dst, '"')
	dst = base64.StdEncoding.AppendEncode(dst, it.GetData())
	return append(dst, '"', '}')
}

// appendError appends an ASE error response {"header":{"code":N,"message":"...","sid":"..."}}.
func appendError(dst []byte, code int, message, sid string) []byte {
	return AppendErrorCID(dst, code, message, sid, "")
}

// AppendErrorCID is appendError with header.cid set to cid; an empty cid is left out.
// The message is passed through PublicMessage: clients never see internal detail.
func AppendErrorCID(dst []byte, code int, message, sid, cid string) []byte {
	dst = append(dst, `{"header":{"code":`...)
	dst = strconv.AppendInt(dst, int64(code), 10)
	dst = append(dst, `,"message":`...)
	dst = appendString(dst, PublicMessage(code, message))
	dst = append(dst, `,"sid":`...)
	dst = appendString(dst, sid)
	if cid != "" {
		dst = append(dst, `,"cid":`...)
		dst = appendString(dst, cid)
	}
	return append(dst, '}', '}')
}

// AppendString appends s as a JSON string.
func AppendString(dst []byte, s string) []byte { return appendString(dst, s) }

// isJSONNumber reports whether s follows the JSON number grammar.
func isJSONNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == start {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == start {
			return false
		}
	}
	return i == len(s)
}

const hexDigits = "0123456789abcdef"

// plainASCII holds the bytes a JSON string takes as they are and that are never part of a
// multi-byte rune: printable ASCII but '"' and '\\' (plainPrefix's byte-at-a-time test).
var plainASCII = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendString appends s as a JSON string; invalid UTF-8 becomes U+FFFD, and U+2028/U+2029
// are escaped so the output is safe to embed in JavaScript.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i = plainPrefix(s, i+1)
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
