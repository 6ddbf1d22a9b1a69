package transport

import (
	loaderpb "github.com/athenaserving/asf/libs/proto/loader/v1"
	"github.com/athenaserving/asf/services/loader/engine"
)

func dataType(t loaderpb.DataType) engine.DataType {
	if t < loaderpb.DataType_DATA_TYPE_TEXT || t > loaderpb.DataType_DATA_TYPE_OTHER {
		return engine.DataOther
	}
	return engine.DataType(t)
}

func pbDataType(t engine.DataType) loaderpb.DataType {
	if t < engine.DataText || t > engine.DataOther {
		return loaderpb.DataType_DATA_TYPE_OTHER
	}
	return loaderpb.DataType(t)
}

func status(s loaderpb.Status) engine.Status {
	switch s {
	case loaderpb.Status_STATUS_BEGIN:
		return engine.StatusBegin
	case loaderpb.Status_STATUS_CONTINUE:
		return engine.StatusContinue
	case loaderpb.Status_STATUS_END:
		return engine.StatusEnd
	}
	return engine.StatusOnce
}

func pbStatus(s engine.Status) loaderpb.Status {
	switch s {
	case engine.StatusBegin:
		return loaderpb.Status_STATUS_BEGIN
	case engine.StatusContinue:
		return loaderpb.Status_STATUS_CONTINUE
	case engine.StatusEnd:
		return loaderpb.Status_STATUS_END
	}
	return loaderpb.Status_STATUS_ONCE
}

func meta(m *loaderpb.MetaDesc) engine.Meta {
	return engine.Meta{Name: m.GetName(), Type: dataType(m.GetDataType()), Attrs: m.GetAttribute()}
}

func metas(ms []*loaderpb.MetaDesc) []engine.Meta {
	if len(ms) == 0 {
		return nil
	}
	out := make([]engine.Meta, len(ms))
	for i, m := range ms {
		out[i] = meta(m)
	}
	return out
}

func payloads(pl []*loaderpb.Payload) []engine.Payload {
	out := make([]engine.Payload, len(pl))
	for i, p := range pl {
		out[i] = engine.Payload{Meta: meta(p.GetMeta()), Data: p.GetData()}
	}
	return out
}

func pbPayloads(pl []engine.Payload) []*loaderpb.Payload {
	out := make([]*loaderpb.Payload, len(pl))
	for i, p := range pl {
		out[i] = &loaderpb.Payload{
			Meta: &loaderpb.MetaDesc{Name: p.Name, DataType: pbDataType(p.Type), Attribute: p.Attrs},
			Data: p.Data,
		}
	}
	return out
}

func request(in *loaderpb.LoaderInput) engine.Request {
	return engine.Request{
		Tag: in.GetHeaders()["sid"], Headers: in.GetHeaders(), Params: in.GetParams(),
		Expect: metas(in.GetExpect()), Inputs: payloads(in.GetPl()), PsrIDs: in.GetPsrIds(),
	}
}

func sessionParams(in *loaderpb.LoaderInput) engine.SessionParams {
	return engine.SessionParams{
		Tag: in.GetHeaders()["sid"], Headers: in.GetHeaders(), Params: in.GetParams(),
		Expect: metas(in.GetExpect()), PsrIDs: in.GetPsrIds(),
	}
}

func frame(in *loaderpb.LoaderInput) engine.Frame {
	return engine.Frame{SyncID: in.GetSyncId(), Status: status(in.GetStatus()), Inputs: payloads(in.GetPl())}
}
