package transport

import (
	"context"
	"errors"
	"net/http"
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
	out := webapi.AppendResult(nil, info, h.g.Renderer(info.Schema), res, "")
	h.g.Metrics().Sent(len(out))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

func (h *Handler) once(ctx context.Context, w http.ResponseWriter, r *http.Request, info *gate.Request) (*atompb.Result, error) {
	body, err := httpio.ReadBody(w, r, h.opts.MaxBodyBytes)
	if err != nil {
		return nil, err
	}
	h.g.Metrics().Received(len(body))
	if info.WebAPI {
		m, err := webapi.Decode(info, body, true)
		if err != nil {
			return nil, err
		}
		body = m.ASE
	}
	f, _, err := h.g.DecodeFrame(ctx, info, body, ase.StatusOnce, true, nil)
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
