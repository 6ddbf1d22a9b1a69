package transport

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/capability"
	"github.com/athenaserving/asf/services/webgate/ase"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"
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
	f.Add([]byte("{\"header\":{\"app_id\":\"a\",\"uid\":\"\xff\"},\"payload\":{\"input\":{\"audio\":\"AA==\"}}}"), true)
	f.Add([]byte("{\"parameter\":{\"c\":{\"r\":{\"f\xc3\":\"x\"}}},\"payload\":{\"in\xe2\x82put\":{\"audio\":\"AA==\"}}}"), false)
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
		// Whatever is accepted reaches atom: it must marshal (protobuf strings are UTF-8).
		if _, err := proto.Marshal(fr); err != nil {
			t.Fatalf("accepted frame does not marshal: %v (%q)", err, data)
		}
	})
}

// FuzzOIPRequest drives the OIP v2 infer request decoder.
func FuzzOIPRequest(f *testing.F) {
	f.Add([]byte(`{"id":"1","inputs":[{"name":"input","shape":[1],"datatype":"BYTES","data":["hi"]}]}`))
	f.Add([]byte(`{"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[[1.5,2],[3,4]]},{"name":"b","shape":[1],"datatype":"BOOL","data":[true]}]}`))
	f.Add([]byte(`{"inputs":[{"name":"x","shape":[1],"datatype":"UINT8","data":[256]}],"parameters":{"a":{"b":1}}}`))
	f.Add([]byte(`{"inputs":[{"name":"x","shape":[2,3],"datatype":"INT16","data":[1,2,3,4,5]}]}`))
	f.Add([]byte(`{"inputs":[{"name":"x","shape":[],"datatype":"INT32","data":7},{"name":"y","shape":[0],"datatype":"FP64","data":[]}]}`))
	f.Add([]byte(`{"inputs":[{"name":"x","shape":[4611686018427387904,4],"datatype":"BYTES","data":["a",null]}]}`))
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
		// Every accepted tensor holds exactly the elements its shape says.
		for _, in := range req.Inputs {
			want := int64(1)
			for _, d := range in.Shape {
				want *= d
			}
			if in.Shape == nil || want != countLeaves(t, in.Data) {
				t.Fatalf("tensor %s: shape %v accepted with %d elements", in.Name, in.Shape, countLeaves(t, in.Data))
			}
		}
	})
}

// countLeaves counts the non-array values of a JSON document (0 for an empty one).
func countLeaves(t *testing.T, raw json.RawMessage) int64 {
	if len(raw) == 0 {
		return 0
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("accepted data %q: %v", raw, err)
	}
	var walk func(any) int64
	walk = func(v any) int64 {
		a, ok := v.([]any)
		if !ok {
			if v == nil {
				return 0
			}
			return 1
		}
		n := int64(0)
		for _, x := range a {
			n += walk(x)
		}
		return n
	}
	return walk(v)
}
