package forward

import (
	"net/http"
	"testing"

	"github.com/athenaserving/asf/libs/aserr"
)

// FuzzDecodeAnswer feeds arbitrary upstream answers through the default (ASE) decoding
// and a mapped one: every answer gives outputs or an error with a code, never a panic.
func FuzzDecodeAnswer(f *testing.F) {
	plain := &Spec{PlainText: true}
	mapped, err := ParseSpec([]byte(`{upstreams: [http://h], response: {mapping: [{data_type: text, rule: [
		{src: $.body.code, dst: $.header.code}, {src: $.body.message, dst: $.header.message},
		{src: $.body.data.status, dst: $.header.status}, {src: $.body.data.result, dst: $.payload.result.text},
		{src: $.body.data, dst: $.payload.all}, {src: $.headers.X-Id, dst: $.payload.result.id}]}]}}`), nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(`{"header":{"code":0,"status":2},"payload":{"r":{"text":"aGk=","seq":1}}}`))
	f.Add([]byte(`{"code":0,"data":{"status":1,"result":{"ws":[1]}}}`))
	f.Add([]byte(`{"header":{"code":"x"}}`))
	f.Add([]byte(`{"payload":{"r":{"text":"a","audio":"b"}}}`))
	f.Add([]byte(`{"code":10222,"message":"down"}`))
	f.Add([]byte(`[1] 2`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := parseJSON(b)
		if err != nil {
			if aserr.CodeOf(err) != aserr.ErrInvalidResult.Code {
				t.Fatalf("parse error without 10160: %v", err)
			}
			return
		}
		for _, s := range []*Spec{plain, mapped} {
			a := s.decodeAnswer(s.Response, v, http.Header{"X-Id": {"7"}})
			if a.err != nil && aserr.CodeOf(a.err) == aserr.ErrInternal.Code {
				t.Fatalf("error without a code: %v", a.err)
			}
			if a.hasStatus && (a.status < 0 || a.status > 3) {
				t.Fatalf("status %d", a.status)
			}
		}
	})
}
