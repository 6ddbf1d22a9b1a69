package oip

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/services/webgate/gate"
)

// TestOIPShapeChecked: an input tensor's data must hold exactly the product of its shape
// in elements (a BYTES string is one element, nested or flat data alike); anything else
// is refused with 10163 and a message naming the tensor, the shape and both counts.
func TestOIPShapeChecked(t *testing.T) {
	for _, c := range []struct {
		name, tensor, err string
	}{
		{"flat", `{"name":"x","shape":[2,3],"datatype":"FP32","data":[1,2,3,4,5,6]}`, ""},
		{"nested", `{"name":"x","shape":[2,2],"datatype":"INT16","data":[[1,2],[3,4]]}`, ""},
		{"scalar", `{"name":"x","shape":[],"datatype":"INT32","data":7}`, ""},
		{"empty", `{"name":"x","shape":[0,4],"datatype":"FP32","data":[]}`, ""},
		{"bytes", `{"name":"x","shape":[2],"datatype":"BYTES","data":["ab","cde"]}`, ""},
		{"bytes base64", `{"name":"x","shape":[1,1],"datatype":"BYTES","parameters":{"content_encoding":"base64"},"data":["aGk="]}`, ""},
		{"too few", `{"name":"x","shape":[2,3],"datatype":"FP32","data":[1,2,3,4,5]}`, "inputs.x: shape (2,3) holds 6 elements, data has 5"},
		{"too many", `{"name":"x","shape":[1],"datatype":"INT8","data":[1,2]}`, "inputs.x: shape (1) holds 1 elements, data has 2"},
		{"bytes count", `{"name":"x","shape":[3],"datatype":"BYTES","data":["abc"]}`, "inputs.x: shape (3) holds 3 elements, data has 1"},
		{"no shape", `{"name":"x","datatype":"BYTES","data":["a"]}`, "inputs.x: shape is required"},
		{"negative", `{"name":"x","shape":[-1],"datatype":"BYTES","data":["a"]}`, "inputs.x: shape (-1) has a negative dimension"},
		{"overflow", `{"name":"x","shape":[9223372036854775807,2],"datatype":"BOOL","data":[true]}`, "inputs.x: shape (9223372036854775807,2) has too many elements"},
		{"null element", `{"name":"x","shape":[2],"datatype":"FP32","data":[1,null]}`, "inputs.x: data holds 1 null elements"},
		{"scalar with two", `{"name":"x","shape":[],"datatype":"INT32","data":[1,2]}`, "inputs.x: a scalar shape holds 1 elements, data has 2"},
		{"no data", `{"name":"x","shape":[1],"datatype":"FP32"}`, "inputs.x: shape (1) holds 1 elements, data has 0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var req oipRequest
			if err := json.Unmarshal([]byte(`{"inputs":[`+c.tensor+`]}`), &req); err != nil {
				t.Fatal(err)
			}
			_, err := oipFrame(&req, &gate.Request{Capability: "m"})
			if c.err == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted, want %q", c.err)
			}
			if aserr.CodeOf(err) != aserr.ErrBadRequest.Code || !strings.Contains(aserr.MessageOf(err), c.err) {
				t.Fatalf("got %d %q, want 10163 %q", aserr.CodeOf(err), aserr.MessageOf(err), c.err)
			}
		})
	}
}
