package ase

import (
	"unicode/utf8"

	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
)

// CheckUTF8 refuses (10163) a frame holding a string that is not valid UTF-8: a header or
// parameter name or value, an output descriptor name or attribute, a payload item name,
// data type or attribute. Protobuf string fields must be UTF-8, so such a frame would
// fail to marshal on the way to atom (11502) instead of being refused as the client's
// error. JSON text must be UTF-8 too (RFC 8259); the parser copies ASCII-only strings
// as they are and leaves the rest to this check. Payload data (bytes) may hold anything.
func CheckUTF8(f *atompb.Frame) error {
	bad := func(where, name string) error {
		return badRequest("%s %q: invalid UTF-8", where, utf8Safe(name))
	}
	for _, s := range [...]string{f.GetSid(), f.GetCapability()} {
		if !utf8.ValidString(s) {
			return bad("frame", "")
		}
	}
	for k, v := range f.GetHeader() {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return bad("header", k)
		}
	}
	for k, v := range f.GetParams() {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return bad("parameter", k)
		}
	}
	for name, acc := range f.GetAccepts() {
		if !utf8.ValidString(name) {
			return bad("parameter", name)
		}
		for k, v := range acc.GetAttributes() {
			if !utf8.ValidString(k) || !utf8.ValidString(v) {
				return bad("parameter "+utf8Safe(name)+" attribute", k)
			}
		}
	}
	for _, it := range f.GetPayload() {
		if !utf8.ValidString(it.GetName()) || !utf8.ValidString(it.GetDataType()) {
			return bad("payload", it.GetName())
		}
		for k, v := range it.GetAttributes() {
			if !utf8.ValidString(k) || !utf8.ValidString(v) {
				return bad("payload "+utf8Safe(it.GetName())+" attribute", k)
			}
		}
	}
	return nil
}

// utf8Safe is s with every invalid byte replaced by U+FFFD, for messages.
func utf8Safe(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	b := make([]rune, 0, len(s))
	for _, r := range s {
		b = append(b, r) // invalid bytes decode as utf8.RuneError
	}
	return string(b)
}
