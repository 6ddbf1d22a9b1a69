package transport

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/capability"
	"github.com/athenaserving/asf/services/webgate/ase"
	"github.com/rs/zerolog"
)

const fuzzSchema = `{"meta":{"serviceId":"c","c":{"input":{"input":{"dataType":"audio"}}}},
 "schemainput":{"type":"object","properties":{"header":{"type":"object","properties":{"app_id":{"type":"string"}}},
   "payload":{"type":"object","properties":{"input":{"type":"object","properties":{"seq":{"type":"integer"}}}}}}}}`

// FuzzDecodeFrame drives the WebSocket frame decoder: cid probing, ASE parsing, payload
// limits and schema validation of first and later frames. Every failure must carry an
// ASE code the client can act on.
func FuzzDecodeFrame(f *testing.F) {
	f.Add([]byte(`{"header":{"app_id":"a","cid":"x","status":0},"payload":{"input":{"seq":1,"audio":"AAEC"}}}`), true)
	f.Add([]byte(`{"header":{"cid":7},"payload":{"input":{"audio":"%%"}}}`), false)
	f.Add([]byte(`{"payload":{"input":{"seq":"x"}}}`), false)
	f.Add([]byte(`[]`), true)
	sch, err := capability.Parse([]byte(fuzzSchema))
	if err != nil {
		f.Fatal(err)
	}
	h := &Handler{opts: Options{MaxPayloadBytes: 64}, log: zerolog.Nop()}
	info := &RequestInfo{Capability: "c", Schema: sch, SID: "s"}
	firstDoc := map[string]any{"header": map[string]any{"app_id": "a"}}
	f.Fuzz(func(t *testing.T, data []byte, first bool) {
		_ = probeCID(data)
		fr, _, err := h.decodeFrame(context.Background(), info, data, statusUnset, first, firstDoc)
		if err != nil {
			if code := aserr.CodeOf(err); code != aserr.ErrBadRequest.Code {
				t.Fatalf("code %d for %q: %v", code, data, err)
			}
			return
		}
		if !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		if fr.GetSid() != "s" || (!first && fr.GetHeader() != nil) {
			t.Fatalf("frame %v", fr)
		}
		n := 0
		for _, it := range fr.GetPayload() {
			n += len(it.GetData())
		}
		if n > 64 {
			t.Fatalf("payload of %d bytes accepted", n)
		}
	})
}

// FuzzOIPRequest drives the OIP v2 infer request decoder.
func FuzzOIPRequest(f *testing.F) {
	f.Add([]byte(`{"id":"1","inputs":[{"name":"input","shape":[1],"datatype":"BYTES","data":["hi"]}]}`))
	f.Add([]byte(`{"inputs":[{"name":"x","datatype":"FP32","data":[[1.5,2],[3,4]]},{"name":"b","datatype":"BOOL","data":[true]}]}`))
	f.Add([]byte(`{"inputs":[{"name":"x","datatype":"UINT8","data":[256]}],"parameters":{"a":{"b":1}}}`))
	info := &RequestInfo{Capability: "c"}
	f.Fuzz(func(t *testing.T, data []byte) {
		var req oipRequest
		if json.Unmarshal(data, &req) != nil {
			return
		}
		fr, err := oipFrame(&req, info)
		if err != nil {
			if aserr.CodeOf(err) != aserr.ErrBadRequest.Code {
				t.Fatalf("code %d: %v", aserr.CodeOf(err), err)
			}
			return
		}
		if fr.GetStatus() != ase.StatusOnce || len(fr.GetPayload()) == 0 {
			t.Fatalf("frame %v", fr)
		}
	})
}
