// Package webapi is webgate's WebAPI 2.0 envelope, and the choice between it and ASE's
// for every answer: a WebAPI 2.0 request ({"common","business","data"}) is mapped by the
// capability schema's webapi block into an ASE request document, which then goes through
// ASE parsing, the gate's validation and atom exactly as an ASE request does; a result is
// rendered as ASE and mapped back into {"code","message","sid","data"}. It decodes and
// encodes only.
package webapi

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/athenaserving/asf/libs/aserr"
	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
	"github.com/athenaserving/asf/services/webgate/ase"
	"github.com/athenaserving/asf/services/webgate/gate"
)

// WebAPI 2.0 multiplex commands (common.cmd).
const (
	CmdKeepAlive = "kpal"
	CmdClose     = "close"
	CmdRetry     = "retry"
)

// Msg is one decoded WebAPI 2.0 message.
type Msg struct {
	ASE []byte // the ASE request document
	Cmd string // common.cmd
	Cid string // common.cid
	Sid string // common.sid (the session a retry resumes)
}

// Decode maps one WebAPI 2.0 message of info's capability into ASE request JSON.
// once is true for an HTTP request; the script's "first" conditions apply to it and to a
// WebSocket frame whose data.status is 0.
func Decode(info *gate.Request, data []byte, once bool) (Msg, error) {
	var m Msg
	spec := info.Schema.WebAPI()
	v, ok := ase.DecodeJSON(data)
	if !ok {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			return m, aserr.Newf(aserr.ErrBadRequest.Code, "invalid request json: %v", err)
		}
		if dec.More() {
			return m, aserr.New(aserr.ErrBadRequest.Code, "invalid request json: data after the top-level value")
		}
	}
	doc, ok := v.(map[string]any)
	if !ok {
		return m, aserr.New(aserr.ErrBadRequest.Code, "invalid request json: the request must be an object")
	}
	for _, k := range [...]string{"common", "business", "data"} {
		if x, ok := doc[k]; ok && x != nil {
			if _, ok := x.(map[string]any); !ok {
				return m, aserr.Newf(aserr.ErrBadRequest.Code, "%s must be an object", k)
			}
		}
	}
	if c := common(doc); c != nil {
		m.Cmd, _ = c["cmd"].(string)
		m.Cid, _ = c["cid"].(string)
		m.Sid, _ = c["sid"].(string)
	}
	first := once
	if d, ok := doc["data"].(map[string]any); ok && !once {
		first = isZero(d["status"])
	}
	if first && m.Cmd == "" {
		// As ASF's webgate: a session (or once request) names its app, before anything
		// else is checked.
		if id, _ := common(doc)["app_id"].(string); id == "" {
			return m, aserr.New(aserr.ErrAppID.Code, "app_id cannot be empty")
		}
	}
	out := spec.Request(doc, first)
	if m.Cmd == CmdClose {
		// close ends the sub-session: an end frame without data.
		hdr, _ := out["header"].(map[string]any)
		if hdr == nil {
			hdr = map[string]any{}
			out["header"] = hdr
		}
		hdr["status"] = int(ase.StatusEnd)
		delete(out, "payload")
	}
	b, err := json.Marshal(out)
	if err != nil {
		return m, aserr.Newf(aserr.ErrBadRequest.Code, "invalid request: %v", err)
	}
	m.ASE = b
	return m, nil
}

// common is the request's common object (nil when absent).
func common(doc map[string]any) map[string]any {
	c, _ := doc["common"].(map[string]any)
	return c
}

func isZero(v any) bool {
	switch x := v.(type) {
	case json.Number:
		return x == "0"
	case float64:
		return x == 0
	case string:
		return x == "0"
	}
	return false
}

// AppendResult renders a result in the request's envelope.
func AppendResult(dst []byte, info *gate.Request, r ase.Renderer, res *atompb.Result, cid string) []byte {
	if info.Schema == nil || !info.WebAPI {
		return r.AppendResultCID(dst, res, cid)
	}
	doc := map[string]any{}
	dec := json.NewDecoder(bytes.NewReader(r.AppendResult(nil, res)))
	dec.UseNumber()
	_ = dec.Decode(&doc) // the renderer writes valid JSON
	data := info.Schema.WebAPI().Response(doc)
	body, err := json.Marshal(data)
	if err != nil {
		return appendWebAPIError(dst, aserr.ErrInternal.Code, aserr.ErrInternal.Msg, res.GetSid(), cid)
	}
	dst = append(dst, `{"code":0,"message":"success","sid":`...)
	dst = ase.AppendString(dst, res.GetSid())
	if cid != "" {
		dst = append(dst, `,"cid":`...)
		dst = ase.AppendString(dst, cid)
	}
	dst = append(dst, `,"data":`...)
	dst = append(dst, body...)
	return append(dst, '}')
}

// AppendError renders an error in the request's envelope; cid is left out when empty.
func AppendError(dst []byte, info *gate.Request, code int, msg, cid string) []byte {
	if info != nil && info.WebAPI {
		return appendWebAPIError(dst, code, msg, info.SID, cid)
	}
	sid := ""
	if info != nil {
		sid = info.SID
	}
	return ase.AppendErrorCID(dst, code, msg, sid, cid)
}

// appendWebAPIError appends {"code":N,"message":"...","sid":"..."} (plus cid).
func appendWebAPIError(dst []byte, code int, msg, sid, cid string) []byte {
	dst = append(dst, `{"code":`...)
	dst = strconv.AppendInt(dst, int64(code), 10)
	dst = append(dst, `,"message":`...)
	dst = ase.AppendString(dst, ase.PublicMessage(code, msg))
	dst = append(dst, `,"sid":`...)
	dst = ase.AppendString(dst, sid)
	if cid != "" {
		dst = append(dst, `,"cid":`...)
		dst = ase.AppendString(dst, cid)
	}
	return append(dst, '}')
}

// AppendKeepAlive answers a kpal command.
func AppendKeepAlive(dst []byte, sid, cid string) []byte {
	return appendWebAPIError(dst, 0, "success", sid, cid)
}
