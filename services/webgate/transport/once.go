package transport

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
	"github.com/athenaserving/asf/services/webgate/ase"
	"github.com/athenaserving/asf/services/webgate/gate"
	"github.com/athenaserving/asf/services/webgate/transport/httpio"
	"github.com/athenaserving/asf/services/webgate/transport/webapi"
)

// serveOnce serves POST /v1/private/<capability>: one frame, one Atom.Call, one response.
func (h *Handler) serveOnce(w http.ResponseWriter, r *http.Request, info *gate.Request) {
	ctx := r.Context()
	res, err := h.once(ctx, w, r, info)
	if err != nil {
		h.writeOnceError(w, info, err)
		return
	}
	took := time.Since(info.Start)
	h.g.Metrics().Results(h.g.Label(info), gate.KindOnce, took, took)
	res.Sid = info.SID
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json; charset=utf-8")
	hdr.Set("X-Asf-Timing", httpio.TimingHeader(took, res.GetTiming()))
	if res.GetCode() != 0 {
		h.writeOnceError(w, info, aserr.New(int(res.GetCode()), res.GetMessage()))
		return
	}
	info.Code = 0
	buf := getOnceBuf()
	out := webapi.AppendResult(buf.b[:0], info, h.g.Renderer(info.Schema), res, "")
	h.g.Metrics().Sent(len(out))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out) // the writer keeps nothing of out
	putOnceBuf(buf, out)
}

// Once request bodies and answers are read and rendered into reused buffers: nothing that
// outlives the request refers to them (the frame and the schema document hold copies of
// what they take from a body; the response writer copies an answer).
const (
	onceBufSize   = 4096     // a typical body or answer fits
	maxPooledOnce = 64 << 10 // larger buffers are left to the collector
)

type onceBuf struct{ b []byte }

var onceBufs = sync.Pool{New: func() any { return &onceBuf{b: make([]byte, 0, onceBufSize)} }}

func getOnceBuf() *onceBuf { return onceBufs.Get().(*onceBuf) }

// putOnceBuf returns buf to the pool with b, the buffer's last contents (it may have grown).
func putOnceBuf(buf *onceBuf, b []byte) {
	if b == nil { // nothing was read: the buffer is as it was
		b = buf.b
	}
	if cap(b) > maxPooledOnce {
		return
	}
	buf.b = b[:0]
	onceBufs.Put(buf)
}

func (h *Handler) once(ctx context.Context, w http.ResponseWriter, r *http.Request, info *gate.Request) (*atompb.Result, error) {
	buf := getOnceBuf()
	body, err := httpio.ReadBodyTo(w, r, h.opts.MaxBodyBytes, buf.b)
	defer func() { putOnceBuf(buf, body) }()
	if err != nil {
		return nil, err
	}
	h.g.Metrics().Received(len(body))
	data := body
	if info.WebAPI {
		m, err := webapi.Decode(info, body, true)
		if err != nil {
			return nil, err
		}
		data = m.ASE
	}
	f, _, err := h.g.DecodeFrame(ctx, info, data, ase.StatusOnce, true, nil)
	if err != nil {
		return nil, err
	}
	f.Status = ase.StatusOnce // HTTP is always once, whatever the body says
	return h.g.Call(ctx, info, f)
}

// writeOnceError writes err as an ASE error response with the HTTP status of its code;
// an unknown capability gets the gateway's 404 body.
func (h *Handler) writeOnceError(w http.ResponseWriter, info *gate.Request, err error) {
	code, msg := aserr.CodeOf(err), aserr.MessageOf(err)
	info.Code = code
	if errors.Is(err, context.Canceled) {
		info.Log.Debug().Err(err).Msg("client went away")
	} else if code != aserr.ErrBadRequest.Code && code != aserr.ErrNotFound.Code {
		info.Log.Warn().Err(err).Int("code", code).Msg("once request failed")
	}
	if code == aserr.ErrNotFound.Code {
		httpio.WriteNotFound(w)
		return
	}
	st := info.HTTPStatus(code)
	if tl := (*gate.ErrTooLarge)(nil); errors.As(err, &tl) {
		st = http.StatusRequestEntityTooLarge
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(st)
	_, _ = w.Write(webapi.AppendError(nil, info, code, msg, ""))
}
