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
	"errors"
	"strconv"
	"sync"

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
	v, err := decode(data)
	if err != nil {
		return m, aserr.Newf(aserr.ErrBadRequest.Code, "invalid request json: %v", err)
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
	b, err := marshal(make([]byte, 0, len(data)+256), out)
	if err != nil {
		return m, aserr.Newf(aserr.ErrBadRequest.Code, "invalid request: %v", err)
	}
	m.ASE = b
	return m, nil
}

// decode decodes a JSON document as a json.Decoder with UseNumber does, on ase's fast
// path when the document allows.
func decode(data []byte) (any, error) {
	if v, ok := ase.DecodeJSON(data); ok {
		return v, nil
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("data after the top-level value")
	}
	return v, nil
}

// marshal appends v as JSON: ase.AppendJSON, or encoding/json for what that refuses.
func marshal(dst []byte, v any) ([]byte, error) {
	if out, ok := ase.AppendJSON(dst, v); ok {
		return out, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}

// scratch holds the ASE rendering of a result while AppendResult maps it; a buffer that
// grew past maxScratch (a large result) is left to the collector.
var scratch = sync.Pool{New: func() any { return new([]byte) }}

const maxScratch = 1 << 20

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
	buf := scratch.Get().(*[]byte)
	*buf = r.AppendResult((*buf)[:0], res)
	v, _ := decode(*buf) // the renderer writes valid JSON; decode copies what it keeps
	if cap(*buf) <= maxScratch {
		scratch.Put(buf)
	}
	doc, _ := v.(map[string]any)
	data := info.Schema.WebAPI().Response(doc)
	n := len(dst)
	dst = append(dst, `{"code":0,"message":"success","sid":`...)
	dst = ase.AppendString(dst, res.GetSid())
	if cid != "" {
		dst = append(dst, `,"cid":`...)
		dst = ase.AppendString(dst, cid)
	}
	dst = append(dst, `,"data":`...)
	dst, err := marshal(dst, data)
	if err != nil {
		return appendWebAPIError(dst[:n], aserr.ErrInternal.Code, aserr.ErrInternal.Msg, res.GetSid(), cid)
	}
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
