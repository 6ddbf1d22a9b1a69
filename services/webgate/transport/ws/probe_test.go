package ws

import (
	"encoding/json"
	"testing"
)

// FuzzProbeCID drives the cid probe of a message that did not parse as a frame: it never
// panics, and a header.cid string is found as sent.
func FuzzProbeCID(f *testing.F) {
	f.Add([]byte(`{"header":{"app_id":"a","cid":"x","status":0},"payload":{"input":{"seq":1,"audio":"AAEC"}}}`))
	f.Add([]byte(`{"header":{"cid":7},"payload":{"input":{"audio":"%%"}}}`))
	f.Add([]byte(`{"payload":{"input":{"seq":"x"}}}`))
	f.Add([]byte(`[]`))
	f.Add([]byte("{\"header\":{\"app_id\":\"a\",\"uid\":\"\xff\"},\"payload\":{\"input\":{\"audio\":\"AA==\"}}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got := probeCID(data)
		var doc struct {
			Header struct {
				Cid *string `json:"cid"`
			} `json:"header"`
		}
		if json.Unmarshal(data, &doc) == nil && doc.Header.Cid != nil && got != *doc.Header.Cid {
			t.Fatalf("cid %q, sent %q in %q", got, *doc.Header.Cid, data)
		}
	})
}
