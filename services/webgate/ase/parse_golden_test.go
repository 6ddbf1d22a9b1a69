package ase

import (
	"encoding/json"
	"testing"

	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
	"github.com/athenaserving/asf/services/webgate/internal/goldentest"
	"github.com/stretchr/testify/require"
)

// frameView is a stable JSON view of a parsed frame for golden files (map keys sort).
type frameView struct {
	Capability string                       `json:"capability"`
	Status     int32                        `json:"status"`
	Header     map[string]string            `json:"header,omitempty"`
	Params     map[string]string            `json:"params,omitempty"`
	Accepts    map[string]map[string]string `json:"accepts,omitempty"`
	Payload    []itemView                   `json:"payload,omitempty"`
}

type itemView struct {
	Name       string            `json:"name"`
	DataType   string            `json:"data_type"`
	Attributes map[string]string `json:"attributes,omitempty"`
	Data       []byte            `json:"data"`
}

func viewOf(f *atompb.Frame) frameView {
	v := frameView{Capability: f.GetCapability(), Status: f.GetStatus(), Header: f.GetHeader(), Params: f.GetParams()}
	for k, a := range f.GetAccepts() {
		if v.Accepts == nil {
			v.Accepts = map[string]map[string]string{}
		}
		v.Accepts[k] = a.GetAttributes()
	}
	for _, it := range f.GetPayload() {
		v.Payload = append(v.Payload, itemView{Name: it.GetName(), DataType: it.GetDataType(), Attributes: it.GetAttributes(), Data: it.GetData()})
	}
	return v
}

// TestParseGolden pins the request → atom frame mapping (testdata/parse_*.golden; -update rewrites).
func TestParseGolden(t *testing.T) {
	cases := map[string]struct {
		in     string
		status int32
	}{
		"parse_spec_first_frame":       {specFirstFrame, StatusBegin},
		"parse_follow_up_payload_only": {`{"header":{"status":1},"payload":{"input":{"encoding":"raw","status":1,"seq":1,"audio":"AAEC"}}}`, StatusContinue},
		"parse_once_two_items_custom_attrs": {`{"header":{"appid":"a1","uid":"u","cid":"c1","res_id":"r"},"parameter":{"ist":{"eos":1000,"dwa":"wpgs","flag":true,"result":{"encoding":"utf8","format":"json"},"vad":{"format":"plain"}}},
			"payload":{"text":{"encoding":"utf8","custom":{"k":[1,2]},"text":"aGk="},"image":{"width":640,"height":480,"image":"\/\/8="}}}`, StatusOnce},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f, err := ParseFrame([]byte(tc.in), "ist", tc.status)
			require.NoError(t, err)
			out, err := json.Marshal(viewOf(f))
			require.NoError(t, err)
			goldentest.JSON(t, name, out)
		})
	}
}
