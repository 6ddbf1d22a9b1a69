// Package transport is webgate's HTTP and WebSocket edge: it routes ASE requests, turns them
// into atom frames with package ase, calls atom over gRPC and writes ASE responses.
//
// The handler chain, outermost first: recover → route (404, capability, sid) → observe
// (metrics, access log) → [HMAC auth → per-app limits, as Options.Middlewares] → endpoint
// (once or WebSocket). Per-frame checks such as schema validation are FrameFilters, applied
// to the once frame and to every WebSocket frame alike.
package transport

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/capability"
	"github.com/athenaserving/asf/libs/grpcx"
	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
	"github.com/athenaserving/asf/services/webgate/ase"
	"github.com/athenaserving/asf/services/webgate/auth"
	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// FrameFilter checks or amends a parsed frame before it goes to atom; first is true for a
// once request and for the first frame of a WebSocket session. An error (with an aserr code)
// rejects the request or ends the session.
type FrameFilter func(ctx context.Context, f *atompb.Frame, first bool) error

// Options configures a Handler.
type Options struct {
	// ReadTimeout ends a WebSocket session with 10200 when neither a frame arrives nor a
	// result is sent for this long; a capability's read_timeout overrides it.
	ReadTimeout time.Duration
	// SessionTimeout ends a WebSocket session with 10114 after this lifetime; a
	// capability's session_timeout overrides it.
	SessionTimeout time.Duration
	// MaxBodyBytes bounds a once request body (and an OIP request body).
	MaxBodyBytes int64
	// MaxFrameBytes bounds one WebSocket message; 0 means MaxBodyBytes.
	MaxFrameBytes int64
	// MaxPayloadBytes bounds the decoded payload data of one frame; 0 means no bound
	// beyond the body and frame limits.
	MaxPayloadBytes int64
	// SIDs generates session ids.
	SIDs *ase.SIDGen
	// Renderer renders results; zero means ase.DefaultRenderer(). Capability output
	// schemas refine its typing per capability.
	Renderer ase.Renderer
	// Schemas resolves capabilities and their schemas; nil means none.
	Schemas *capability.Registry
	// RequireSchema answers 404 for capabilities without a schema; when false they are
	// passed to atom unvalidated (atom answers 10404 for unknown ones).
	RequireSchema bool
	// Auth authenticates requests; nil switches authentication off (local development).
	Auth *auth.Authenticator
	// Limiter applies per-app QPS and concurrency limits; used only with Auth.
	Limiter *auth.Limiter
	// Middlewares run after routing, metrics and auth, before the endpoint.
	Middlewares []Middleware
	// Filters run on every parsed frame (after schema validation and the app_id check).
	Filters []FrameFilter
	// Capabilities are known capability ids, used as metric labels from the start.
	Capabilities []string
	// MaxCapabilityLabels bounds the capability metric label; 0 means 64.
	MaxCapabilityLabels int
	// Ready reports readiness for the OIP /v2/health/ready probe; nil means always ready.
	Ready func() bool
	// BodyReadTimeout bounds reading a request body (once and OIP infer); 0 means no bound
	// beyond the server's.
	BodyReadTimeout time.Duration
	// MaxSubSessions bounds the sub-sessions running at once on one multiplexed socket
	// (more are refused with 11204, the socket goes on); 0 means DefaultMaxSubSessions.
	MaxSubSessions int
	// BackstopMargin is how much longer than a capability's once_timeout and
	// session_timeout webgate waits before it ends the call or session itself: atom owns
	// those timeouts and answers 10102 and 10114 in band, so its code always reaches the
	// client first, and webgate's timer only ends a call or session whose atom does not
	// answer. 0 means DefaultBackstopMargin.
	BackstopMargin time.Duration
	// RetryWait is how long a WebAPI 2.0 session whose capability enables retry outlives
	// its dropped WebSocket, waiting for common.cmd "retry" on a new one; 0 means
	// DefaultRetryWait.
	RetryWait time.Duration
}

// DefaultBackstopMargin is Options.BackstopMargin when it is not set (docs/contracts.md,
// "One owner per policy").
const DefaultBackstopMargin = time.Second

// Handler serves ASE once requests and WebSocket sessions. It is safe for concurrent use.
type Handler struct {
	atom     atompb.AtomClient
	opts     Options
	log      zerolog.Logger
	metrics  *metrics
	sids     *ase.SIDGen
	upgrader websocket.Upgrader
	chain    http.Handler

	mu        sync.Mutex
	closing   bool          // new sessions are refused
	goneAway  bool          // goingAway is closed
	goingAway chan struct{} // closed by CloseSessions
	sessions  sync.WaitGroup

	parked parkedSessions // WebAPI 2.0 sessions waiting for a retry
}

// NewHandler returns a Handler that calls atom. reg may be nil.
func NewHandler(atom atompb.AtomClient, opts Options, log zerolog.Logger, reg prometheus.Registerer) (*Handler, error) {
	if atom == nil || opts.SIDs == nil {
		return nil, errors.New("transport: atom client and sid generator are required")
	}
	if opts.ReadTimeout <= 0 || opts.SessionTimeout <= 0 || opts.MaxBodyBytes <= 0 {
		return nil, fmt.Errorf("transport: read timeout %v, session timeout %v and max body %d must be positive",
			opts.ReadTimeout, opts.SessionTimeout, opts.MaxBodyBytes)
	}
	if opts.Renderer.Typer == nil {
		opts.Renderer = ase.DefaultRenderer()
	}
	if opts.MaxFrameBytes <= 0 {
		opts.MaxFrameBytes = opts.MaxBodyBytes
	}
	if opts.BackstopMargin <= 0 {
		opts.BackstopMargin = DefaultBackstopMargin
	}
	h := &Handler{
		atom:      atom,
		opts:      opts,
		log:       log,
		metrics:   newMetrics(reg, opts.MaxCapabilityLabels),
		sids:      opts.SIDs,
		goingAway: make(chan struct{}),
		upgrader: websocket.Upgrader{
			HandshakeTimeout: 10 * time.Second,
			ReadBufferSize:   4096,
			WriteBufferSize:  4096,
			// Browser clients of every origin are allowed; HMAC auth decides access.
			CheckOrigin: func(*http.Request) bool { return true },
		},
	}
	h.metrics.admit(opts.Capabilities)
	mws := []Middleware{h.recoverMiddleware, h.routeMiddleware, h.observeMiddleware}
	if opts.Auth != nil {
		mws = append(mws, h.AuthMiddleware(opts.Auth, opts.Limiter))
		h.opts.Filters = append([]FrameFilter{appIDFilter}, opts.Filters...)
	}
	mws = append(mws, opts.Middlewares...)
	h.chain = Chain(http.HandlerFunc(h.endpoint), mws...)
	return h, nil
}

// ServeHTTP runs the handler chain. A request with a body must deliver it within
// BodyReadTimeout (readBody lifts the deadline once it has it; an unread body keeps it,
// so net/http's discard after the handler is bounded too); a request without one has
// nothing more to read, and its connection's read deadline is lifted so a long answer is
// not cut (a WebSocket is hijacked and keeps its own deadlines).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	if r.Body != nil && r.Body != http.NoBody && h.opts.BodyReadTimeout > 0 {
		_ = rc.SetReadDeadline(time.Now().Add(h.opts.BodyReadTimeout))
	} else {
		_ = rc.SetReadDeadline(time.Time{})
	}
	if h.opts.Auth == nil {
		AdmitConn(r.Context()) // no authentication: a whole request admits its connection
	}
	h.chain.ServeHTTP(w, r)
}

// RefuseSessions refuses new WebSocket sessions (503) and lets open ones go on.
func (h *Handler) RefuseSessions() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closing = true
}

// CloseSessions refuses new WebSocket sessions and ends open ones with an error frame
// (10222 "server shutting down") and close 1001 (going away), cancelling their atom
// streams. It is idempotent.
func (h *Handler) CloseSessions() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closing = true
	if !h.goneAway {
		h.goneAway = true
		close(h.goingAway)
	}
}

// Wait waits until every WebSocket session has ended or ctx ends.
func (h *Handler) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { // ends with the last session, even if ctx ends first
		h.sessions.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for websocket sessions: %w", ctx.Err())
	}
}

func isWebSocket(r *http.Request) bool { return websocket.IsWebSocketUpgrade(r) }

func (h *Handler) endpoint(w http.ResponseWriter, r *http.Request) {
	info := InfoFrom(r.Context())
	switch {
	case info.OIP != "":
		h.serveOIP(w, r, info)
	case info.Stream:
		h.serveWebSocket(w, r, info)
	case r.Method == http.MethodPost:
		h.serveOnce(w, r, info)
	default:
		info.Code = aserr.ErrBadRequest.Code
		w.Header().Set("Allow", http.MethodPost)
		writeMessage(w, http.StatusMethodNotAllowed, "method not allowed")
	}
}

// serveOnce serves POST /v1/private/<capability>: one frame, one Atom.Call, one response.
func (h *Handler) serveOnce(w http.ResponseWriter, r *http.Request, info *RequestInfo) {
	ctx := r.Context()
	res, err := h.once(ctx, w, r, info)
	if err != nil {
		h.writeOnceError(w, info, err)
		return
	}
	took := time.Since(info.Start)
	h.metrics.observeResults(h.label(info), kindOnce, took, took)
	res.Sid = info.SID
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json; charset=utf-8")
	hdr.Set("X-Asf-Timing", timingHeader(took, res.GetTiming()))
	if res.GetCode() != 0 {
		h.writeOnceError(w, info, aserr.New(int(res.GetCode()), res.GetMessage()))
		return
	}
	info.Code = 0
	out := h.appendResult(nil, info, h.renderer(info.Schema), res, "")
	h.metrics.bytesOut.Add(float64(len(out)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

func (h *Handler) once(ctx context.Context, w http.ResponseWriter, r *http.Request, info *RequestInfo) (*atompb.Result, error) {
	body, err := readBody(w, r, h.opts.MaxBodyBytes)
	if err != nil {
		return nil, err
	}
	h.metrics.bytesIn.Add(float64(len(body)))
	if info.WebAPI {
		m, err := decodeWebAPI(info, body, true)
		if err != nil {
			return nil, err
		}
		body = m.ase
	}
	f, _, err := h.decodeFrame(ctx, info, body, ase.StatusOnce, true, nil)
	if err != nil {
		return nil, err
	}
	f.Status = ase.StatusOnce // HTTP is always once, whatever the body says
	return h.call(ctx, info, f)
}

// call sends a once frame to atom. A capability's once_timeout is atom's to enforce
// (10102, in band); the call is bounded only by a backstop of once_timeout plus
// BackstopMargin, which ends a call to an atom that does not answer.
func (h *Handler) call(ctx context.Context, info *RequestInfo, f *atompb.Frame) (*atompb.Result, error) {
	if info.Schema != nil && info.Schema.OnceTimeout() > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, info.Schema.OnceTimeout()+h.opts.BackstopMargin)
		defer cancel()
	}
	res, err := h.atom.Call(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("atom call: %w", grpcx.FromStatus(err))
	}
	return res, nil
}

// decodeFrame parses one request message of info's capability: ASE parsing, the decoded
// payload bound, schemainput validation (a later WebSocket frame is validated with the
// first frame's header and parameter filled in when it omits them) and the frame filters.
// It returns the decoded document of a first frame for later frames' validation.
func (h *Handler) decodeFrame(ctx context.Context, info *RequestInfo, data []byte, defStatus int32, first bool, firstDoc map[string]any) (*atompb.Frame, map[string]any, error) {
	f, err := ase.ParseFrame(data, info.Capability, defStatus)
	if err != nil {
		return nil, nil, err
	}
	return h.checkFrame(ctx, info, f, data, first, firstDoc)
}

func (h *Handler) checkFrame(ctx context.Context, info *RequestInfo, f *atompb.Frame, data []byte, first bool, firstDoc map[string]any) (*atompb.Frame, map[string]any, error) {
	if err := ase.CheckUTF8(f); err != nil {
		return nil, nil, err
	}
	if max := h.opts.MaxPayloadBytes; max > 0 {
		var n int64
		for _, it := range f.GetPayload() {
			n += int64(len(it.GetData()))
		}
		if n > max {
			return nil, nil, tooLarge("decoded payload of %d bytes is larger than %d bytes", n, max)
		}
	}
	var doc map[string]any
	// A later frame that only ends the session (a WebAPI 2.0 close, an empty last frame)
	// carries nothing to validate: its header and parameter do not apply.
	bare := !first && f.Status == ase.StatusEnd && len(f.GetPayload()) == 0
	if s := info.Schema; s != nil && s.HasInputSchema() && data != nil && !bare {
		v, ok := ase.DecodeJSON(data) // the common shape without encoding/json
		if !ok {
			var err error
			if v, err = capability.DecodeJSON(data); err != nil {
				return nil, nil, aserr.Newf(aserr.ErrBadRequest.Code, "invalid request json: %v", err)
			}
		}
		doc, _ = v.(map[string]any)
		if !first && doc != nil && firstDoc != nil {
			// A follow-up frame may carry only part of the header (often just status) or
			// parameter: it is validated against the session's merged view, the first
			// frame's fields overlaid with its own.
			for _, k := range [...]string{"header", "parameter"} {
				if m := overlayDoc(firstDoc[k], doc[k]); m != nil {
					doc[k] = m
				}
			}
		}
		if err := s.Validate(v); err != nil {
			return nil, nil, aserr.New(aserr.ErrBadRequest.Code, err.Error())
		}
	}
	f.Sid = info.SID
	if first {
		if f.Header == nil {
			f.Header = make(map[string]string, 1)
		}
		f.Header["client_ip"] = info.ClientIP
	} else {
		f.Header = nil // the first frame's header applies to the whole session
	}
	for _, filter := range h.opts.Filters {
		if err := filter(ctx, f, first); err != nil {
			return nil, nil, err
		}
	}
	return f, doc, nil
}

// overlayDoc returns over laid on base: objects merge key by key (recursively), anything
// else in over replaces base; base is never modified. A missing over is base.
func overlayDoc(base, over any) any {
	if over == nil {
		return base
	}
	b, ok1 := base.(map[string]any)
	o, ok2 := over.(map[string]any)
	if !ok1 || !ok2 {
		return over
	}
	m := make(map[string]any, len(b)+len(o))
	for k, v := range b {
		m[k] = v
	}
	for k, v := range o {
		m[k] = overlayDoc(b[k], v)
	}
	return m
}

// renderer returns the renderer of a capability: the schema's schemaoutput types the
// attributes it declares, the default typing the rest.
func (h *Handler) renderer(s *capability.Schema) ase.Renderer {
	if s == nil {
		return h.opts.Renderer
	}
	base := h.opts.Renderer.Typer
	return ase.Renderer{Typer: func(output, key string) ase.AttrType {
		switch s.OutputAttrType(output, key) {
		case capability.AttrNumber:
			return ase.AttrNumber
		case capability.AttrBool:
			return ase.AttrBool
		case capability.AttrString:
			return ase.AttrString
		}
		return base(output, key)
	}}
}

// httpStatus maps an ASE code to the HTTP status of a once response, the capability's
// codeMap first.
func httpStatus(info *RequestInfo, code int) int {
	if info.Schema != nil {
		if st, ok := info.Schema.HTTPStatus(code); ok {
			return st
		}
	}
	return ase.HTTPStatus(code)
}

func timeSince(info *RequestInfo) time.Duration { return time.Since(info.Start) }

func (h *Handler) label(info *RequestInfo) string {
	return h.metrics.capabilityLabel(info.Capability, info.Code, info.Schema != nil)
}

// writeOnceError writes err as an ASE error response with the HTTP status of its code;
// an unknown capability gets the gateway's 404 body.
func (h *Handler) writeOnceError(w http.ResponseWriter, info *RequestInfo, err error) {
	code, msg := aserr.CodeOf(err), aserr.MessageOf(err)
	info.Code = code
	if errors.Is(err, context.Canceled) {
		info.Log.Debug().Err(err).Msg("client went away")
	} else if code != aserr.ErrBadRequest.Code && code != aserr.ErrNotFound.Code {
		info.Log.Warn().Err(err).Int("code", code).Msg("once request failed")
	}
	if code == aserr.ErrNotFound.Code {
		writeNotFound(w)
		return
	}
	st := httpStatus(info, code)
	if tl := (*ErrTooLarge)(nil); errors.As(err, &tl) {
		st = http.StatusRequestEntityTooLarge
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(st)
	_, _ = w.Write(appendError(nil, info, code, msg, ""))
}

// ErrTooLarge is the error of a request body, WebSocket message or decoded payload over
// its limit: code 10163, HTTP 413 on a once request.
type ErrTooLarge struct{ err *aserr.Error }

func (e *ErrTooLarge) Error() string { return e.err.Error() }

// Unwrap returns the coded error.
func (e *ErrTooLarge) Unwrap() error { return e.err }

func tooLarge(format string, args ...any) error {
	return &ErrTooLarge{err: aserr.Newf(aserr.ErrBadRequest.Code, format, args...)}
}

// bodyChunk is the first allocation for a body: a buffer grows with the bytes that
// arrive, never ahead of them to the announced Content-Length, so a client that announces
// a large body and sends little holds little memory.
const bodyChunk = 32 << 10

// readBody reads the whole body, at most max bytes, within the body read timeout (the
// connection's read deadline, set by ServeHTTP), then lifts the deadline so the call that
// follows is not cut by it. The buffer grows as bytes arrive, up to Content-Length when
// the client sent it. A body over max is ErrTooLarge (HTTP 413), before anything is read
// when Content-Length says so.
func readBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, error) {
	if r.ContentLength > max {
		return nil, tooLarge("request body larger than %d bytes", max)
	}
	rc := http.NewResponseController(w)
	limit := max
	if r.ContentLength >= 0 {
		limit = r.ContentLength
	}
	buf, err := readLimited(r.Body, limit+1, make([]byte, 0, min(limit+1, bodyChunk)))
	if err != nil {
		return nil, aserr.Newf(aserr.ErrBadRequest.Code, "read request body: %v", err)
	}
	if int64(len(buf)) > max {
		return nil, tooLarge("request body larger than %d bytes", max)
	}
	if r.ContentLength >= 0 && int64(len(buf)) != r.ContentLength {
		return nil, aserr.Newf(aserr.ErrBadRequest.Code, "read request body: %d of %d bytes", len(buf), r.ContentLength)
	}
	_ = rc.SetReadDeadline(time.Time{})
	return buf, nil
}

// timingHeader formats X-Asf-Timing: webgate=..;atom=..;loader=..;engine=.. in microseconds.
func timingHeader(webgate time.Duration, timing map[string]int64) string {
	b := make([]byte, 0, 64)
	b = append(b, "webgate="...)
	b = strconv.AppendInt(b, webgate.Microseconds(), 10)
	for _, k := range [...]struct{ name, key string }{{"atom", "atom_ns"}, {"loader", "loader_ns"}, {"engine", "engine_ns"}} {
		b = append(b, ';')
		b = append(b, k.name...)
		b = append(b, '=')
		b = strconv.AppendInt(b, timing[k.key]/1000, 10)
	}
	return string(b)
}
