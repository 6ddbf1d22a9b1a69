package oip

import (
	"encoding/json"
	"testing"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/services/webgate/ase"
	"github.com/athenaserving/asf/services/webgate/gate"
)

// FuzzOIPRequest drives the OIP v2 infer request decoder.
func FuzzOIPRequest(f *testing.F) {
	f.Add([]byte(`{"id":"1","inputs":[{"name":"input","shape":[1],"datatype":"BYTES","data":["hi"]}]}`))
	f.Add([]byte(`{"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[[1.5,2],[3,4]]},{"name":"b","shape":[1],"datatype":"BOOL","data":[true]}]}`))
	f.Add([]byte(`{"inputs":[{"name":"x","shape":[1],"datatype":"UINT8","data":[256]}],"parameters":{"a":{"b":1}}}`))
	f.Add([]byte(`{"inputs":[{"name":"x","shape":[2,3],"datatype":"INT16","data":[1,2,3,4,5]}]}`))
	f.Add([]byte(`{"inputs":[{"name":"x","shape":[],"datatype":"INT32","data":7},{"name":"y","shape":[0],"datatype":"FP64","data":[]}]}`))
	f.Add([]byte(`{"inputs":[{"name":"x","shape":[4611686018427387904,4],"datatype":"BYTES","data":["a",null]}]}`))
	info := &gate.Request{Capability: "c"}
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
