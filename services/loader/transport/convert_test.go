package transport

import (
	"testing"

	loaderpb "github.com/athenaserving/asf/libs/proto/loader/v1"
	"github.com/athenaserving/asf/services/loader/engine"
)

func TestConvertRoundTrip(t *testing.T) {
	in := &loaderpb.LoaderInput{
		Headers: map[string]string{"sid": "s1"}, SyncId: 4, Status: loaderpb.Status_STATUS_CONTINUE,
		Expect: []*loaderpb.MetaDesc{{Name: "out", DataType: loaderpb.DataType_DATA_TYPE_AUDIO}},
		Pl: []*loaderpb.Payload{
			{Meta: &loaderpb.MetaDesc{Name: "a", DataType: loaderpb.DataType_DATA_TYPE_IMAGE, Attribute: map[string]string{"w": "1"}}, Data: []byte("img")},
			{Meta: &loaderpb.MetaDesc{Name: "b", DataType: loaderpb.DataType(42)}},
			{}, // no meta at all
		},
	}
	f := frame(in)
	if f.SyncID != 4 || f.Status != engine.StatusContinue || len(f.Inputs) != 3 {
		t.Fatalf("frame = %+v", f)
	}
	if f.Inputs[0].Type != engine.DataImage || f.Inputs[0].Attrs["w"] != "1" || f.Inputs[1].Type != engine.DataOther {
		t.Fatalf("inputs = %+v", f.Inputs)
	}
	if p := sessionParams(in); p.Tag != "s1" || p.Expect[0].Type != engine.DataAudio {
		t.Fatalf("params = %+v", p)
	}
	pl := pbPayloads(f.Inputs)
	if pl[0].GetMeta().GetDataType() != loaderpb.DataType_DATA_TYPE_IMAGE || string(pl[0].GetData()) != "img" {
		t.Fatalf("payload = %v", pl[0])
	}
	for s := engine.StatusBegin; s <= engine.StatusOnce; s++ {
		if status(pbStatus(s)) != s {
			t.Fatalf("status %v does not round-trip", s)
		}
	}
	if status(loaderpb.Status(9)) != engine.StatusOnce {
		t.Fatal("unknown status should read as once")
	}
}
