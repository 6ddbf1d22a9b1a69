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
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/grpcx"
	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
	"github.com/athenaserving/asf/services/webgate/ase"
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
	// result is sent for this long.
	ReadTimeout time.Duration
	// SessionTimeout ends a WebSocket session with 10114 after this lifetime.
	SessionTimeout time.Duration
	// MaxBodyBytes bounds a once request body and a WebSocket message.
	MaxBodyBytes int64
	// SIDs generates session ids.
	SIDs *ase.SIDGen
	// Renderer renders results; zero means ase.DefaultRenderer().
	Renderer ase.Renderer
	// Middlewares run after routing and metrics, before the endpoint (auth, app limits).
	Middlewares []Middleware
	// Filters run on every parsed frame (schema validation, app_id checks).
	Filters []FrameFilter
	// Capabilities are known capability ids, used as metric labels from the start.
	Capabilities []string
	// MaxCapabilityLabels bounds the capability metric label; 0 means 64.
	MaxCapabilityLabels int
}

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
	closing   bool
	goingAway chan struct{} // closed by CloseSessions
	sessions  sync.WaitGroup
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
	mws := append([]Middleware{h.recoverMiddleware, h.routeMiddleware, h.observeMiddleware}, opts.Middlewares...)
	h.chain = Chain(http.HandlerFunc(h.endpoint), mws...)
	return h, nil
}

// ServeHTTP runs the handler chain.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.chain.ServeHTTP(w, r) }

// CloseSessions refuses new WebSocket sessions and closes open ones with 1001 (going away),
// cancelling their atom streams. It is idempotent.
func (h *Handler) CloseSessions() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closing {
		h.closing = true
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
	res.Sid = info.SID
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json; charset=utf-8")
	hdr.Set("X-Asf-Timing", timingHeader(time.Since(info.Start), res.GetTiming()))
	if res.GetCode() != 0 {
		h.writeOnceError(w, info, aserr.New(int(res.GetCode()), res.GetMessage()))
		return
	}
	info.Code = 0
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(h.opts.Renderer.AppendResult(nil, res))
}

func (h *Handler) once(ctx context.Context, w http.ResponseWriter, r *http.Request, info *RequestInfo) (*atompb.Result, error) {
	body, err := readBody(w, r, h.opts.MaxBodyBytes)
	if err != nil {
		return nil, err
	}
	f, err := ase.ParseFrame(body, info.Capability, ase.StatusOnce)
	if err != nil {
		return nil, err
	}
	f.Status = ase.StatusOnce // HTTP is always once, whatever the body says
	f.Sid = info.SID
	setClientIP(f, r)
	for _, filter := range h.opts.Filters {
		if err := filter(ctx, f, true); err != nil {
			return nil, err
		}
	}
	res, err := h.atom.Call(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("atom call: %w", grpcx.FromStatus(err))
	}
	return res, nil
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
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(ase.HTTPStatus(code))
	_, _ = w.Write(ase.AppendError(nil, code, msg, info.SID))
}

// readBody reads the whole body, at most max bytes, into one buffer sized from
// Content-Length when the client sent it.
func readBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, error) {
	if r.ContentLength > max {
		return nil, aserr.Newf(aserr.ErrBadRequest.Code, "request body larger than %d bytes", max)
	}
	body := http.MaxBytesReader(w, r.Body, max)
	if r.ContentLength >= 0 {
		buf := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(body, buf); err != nil {
			return nil, aserr.Newf(aserr.ErrBadRequest.Code, "read request body: %v", err)
		}
		return buf, nil
	}
	buf, err := io.ReadAll(body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, aserr.Newf(aserr.ErrBadRequest.Code, "request body larger than %d bytes", max)
		}
		return nil, aserr.Newf(aserr.ErrBadRequest.Code, "read request body: %v", err)
	}
	return buf, nil
}

func setClientIP(f *atompb.Frame, r *http.Request) {
	ip := r.RemoteAddr
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		ip = host
	}
	if f.Header == nil {
		f.Header = make(map[string]string, 1)
	}
	f.Header["client_ip"] = ip
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
