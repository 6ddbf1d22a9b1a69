package gate

import (
	"context"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/capability"
	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
	"github.com/athenaserving/asf/services/webgate/ase"
)

// ErrTooLarge is the error of a request body, WebSocket message or decoded payload over
// its limit: code 10163, HTTP 413 on a once request.
type ErrTooLarge struct{ err *aserr.Error }

func (e *ErrTooLarge) Error() string { return e.err.Error() }

// Unwrap returns the coded error.
func (e *ErrTooLarge) Unwrap() error { return e.err }

// TooLarge returns an ErrTooLarge with a formatted message.
func TooLarge(format string, args ...any) error {
	return &ErrTooLarge{err: aserr.Newf(aserr.ErrBadRequest.Code, format, args...)}
}

// DecodeFrame parses one request message of req's capability: ASE parsing, the decoded
// payload bound, schemainput validation (a later WebSocket frame is validated with the
// first frame's header and parameter filled in when it omits them) and the frame filters.
// For a first frame that later frames may follow it returns the decoded header and
// parameter, for those frames' validation.
func (g *Gate) DecodeFrame(ctx context.Context, req *Request, data []byte, defStatus int32, first bool, firstDoc map[string]any) (*atompb.Frame, map[string]any, error) {
	f, err := ase.ParseFrame(data, req.Capability, defStatus)
	if err != nil {
		return nil, nil, err
	}
	return g.CheckFrame(ctx, req, f, data, first, firstDoc)
}

// CheckFrame checks a parsed frame as DecodeFrame does; data is the message it was parsed
// from (nil when it came from another encoding: no schemainput validation then). It sets
// the frame's sid, and the client_ip header of a first frame; a later frame's header is
// dropped (the first frame's applies to the whole session).
func (g *Gate) CheckFrame(ctx context.Context, req *Request, f *atompb.Frame, data []byte, first bool, firstDoc map[string]any) (*atompb.Frame, map[string]any, error) {
	if err := ase.CheckUTF8(f); err != nil {
		return nil, nil, err
	}
	if max := g.opts.MaxPayloadBytes; max > 0 {
		var n int64
		for _, it := range f.GetPayload() {
			n += int64(len(it.GetData()))
		}
		if n > max {
			return nil, nil, TooLarge("decoded payload of %d bytes is larger than %d bytes", n, max)
		}
	}
	var doc map[string]any
	// A later frame that only ends the session (a WebAPI 2.0 close, an empty last frame)
	// carries nothing to validate: its header and parameter do not apply.
	bare := !first && f.Status == ase.StatusEnd && len(f.GetPayload()) == 0
	if s := req.Schema; s != nil && s.HasInputSchema() && data != nil && !bare {
		// A follow-up frame may carry only part of the header (often just status) or
		// parameter: it is validated against the session's merged view, the first
		// frame's fields overlaid with its own. The message is validated from its bytes;
		// only what the schema reads is looked at.
		var base map[string]any
		if !first {
			base = firstDoc
		}
		if err := s.ValidateOver(data, base, inherited[:]); err != nil {
			return nil, nil, aserr.New(aserr.ErrBadRequest.Code, err.Error())
		}
		if first && f.Status != ase.StatusEnd && f.Status != ase.StatusOnce {
			// Later frames follow: keep what they inherit.
			doc = capability.DecodeMembers(data, inherited[:]...)
		}
	}
	f.Sid = req.SID
	if first {
		if f.Header == nil {
			f.Header = make(map[string]string, 1)
		}
		f.Header["client_ip"] = req.ClientIP
	} else {
		f.Header = nil // the first frame's header applies to the whole session
	}
	for _, filter := range g.opts.Filters {
		if err := filter(ctx, f, first); err != nil {
			return nil, nil, err
		}
	}
	return f, doc, nil
}

// inherited are the members of a session's first frame that its later frames inherit.
var inherited = [...]string{"header", "parameter"}
