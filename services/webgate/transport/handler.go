// Package transport is webgate's HTTP adapter, the one http.Handler the server mounts:
// the router (ASE, WebAPI 2.0 and OIP routes), the middleware chain, HMAC authentication
// and once requests. It decodes requests into frames and encodes answers; everything it
// decides it asks the gate (package gate), which calls atom. The other front doors are
// packages beneath it, endpoints it routes to: ws (WebSocket sessions), oip (OIP v2),
// webapi (the WebAPI 2.0 envelope, for once requests and sessions alike); httpio holds
// what they share on the wire and atomgrpc gives the gate its atom over gRPC.
//
// The handler chain, outermost first: recover → route (404, capability, sid) → observe
// (metrics, access log) → drain (503 once shutting down) → [HMAC auth → the gate's per-app limits] → Options.Middlewares →
// endpoint (once, WebSocket or OIP). Per-frame checks such as schema validation are the
// gate's, applied to the once frame and to every WebSocket frame alike.
package transport

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/capability"
	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
	"github.com/athenaserving/asf/libs/tracing"
	"github.com/athenaserving/asf/services/webgate/ase"
	"github.com/athenaserving/asf/services/webgate/auth"
	"github.com/athenaserving/asf/services/webgate/gate"
	"github.com/athenaserving/asf/services/webgate/transport/atomgrpc"
	"github.com/athenaserving/asf/services/webgate/transport/httpio"
	"github.com/athenaserving/asf/services/webgate/transport/oip"
	"github.com/athenaserving/asf/services/webgate/transport/ws"
	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"
)

// Options configures a Handler: the gate's options and the edge's own.
type Options struct {
	// ReadTimeout ends a WebSocket session with 10200 when neither a frame arrives nor a
	// result is sent for this long; a capability's read_timeout overrides it.
	ReadTimeout time.Duration
	// SessionTimeout ends a WebSocket session with 10114 after this lifetime; for a
	// capability with a session_timeout the lifetime is atom's (see BackstopMargin).
	SessionTimeout time.Duration
	// BackstopMargin is how much longer than a capability's once_timeout and
	// session_timeout webgate waits before ending the call or session itself
	// (gate.Options.BackstopMargin); 0 means gate.DefaultBackstopMargin.
	BackstopMargin time.Duration
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
	Filters []gate.FrameFilter
	// Capabilities are known capability ids, used as metric labels from the start.
	Capabilities []string
	// MaxCapabilityLabels bounds the capability metric label; 0 means 64.
	MaxCapabilityLabels int
	// Ready reports readiness for the OIP /v2/health/ready probe; nil means always ready.
	Ready func() bool
	// Loaders lists the loaders registered for a capability, for OIP model metadata and
	// readiness (oip.Server.SetLoaders); nil: no registry (a model is known by its schema,
	// every version is taken as served, ready follows Ready).
	Loaders func(ctx context.Context, capability string) ([]oip.Loader, error)
	// BodyReadTimeout bounds reading a request body (once and OIP infer); 0 means no bound
	// beyond the server's.
	BodyReadTimeout time.Duration
	// MaxSubSessions bounds the sub-sessions running at once on one multiplexed socket
	// (more are refused with 11204, the socket goes on); 0 means gate.DefaultMaxSubSessions.
	MaxSubSessions int
	// RetryWait is how long a WebAPI 2.0 session whose capability enables retry outlives
	// its dropped WebSocket, waiting for common.cmd "retry" on a new one; 0 means
	// ws.DefaultRetryWait.
	RetryWait time.Duration
	// Tracing traces requests and sessions (trace.go); nil or off: no spans, no trace
	// headers.
	Tracing *tracing.Provider
	// TraceSampleRate is the share (0-1) of requests and sessions traced when their
	// capability sets no meta.trace_sample_rate.
	TraceSampleRate float64
}

// Handler serves ASE once requests, WebSocket sessions and OIP requests. It is safe for
// concurrent use.
type Handler struct {
	g     *gate.Gate
	opts  Options
	log   zerolog.Logger
	chain http.Handler
	oip   *oip.Server
	ws    *ws.Server
	// tracer starts the requests' spans; nil when tracing is off.
	tracer trace.Tracer
	// requests counts the once and OIP requests in flight for the drain (Drain, Wait).
	requests requests
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
	if opts.MaxFrameBytes <= 0 {
		opts.MaxFrameBytes = opts.MaxBodyBytes
	}
	g, err := gate.New(atomgrpc.New(atom), gate.Options{
		ReadTimeout:         opts.ReadTimeout,
		SessionTimeout:      opts.SessionTimeout,
		BackstopMargin:      opts.BackstopMargin,
		MaxPayloadBytes:     opts.MaxPayloadBytes,
		SIDs:                opts.SIDs,
		Renderer:            opts.Renderer,
		Schemas:             opts.Schemas,
		RequireSchema:       opts.RequireSchema,
		Authenticated:       opts.Auth != nil,
		Limiter:             opts.Limiter,
		Filters:             opts.Filters,
		MaxSubSessions:      opts.MaxSubSessions,
		Capabilities:        opts.Capabilities,
		MaxCapabilityLabels: opts.MaxCapabilityLabels,
	}, log, reg)
	if err != nil {
		return nil, fmt.Errorf("transport: %w", err)
	}
	h := &Handler{
		g:    g,
		opts: opts,
		log:  log,
	}
	h.oip = oip.New(g, opts.MaxBodyBytes, opts.Ready)
	h.oip.SetLoaders(opts.Loaders)
	if opts.Tracing.On() {
		h.tracer = opts.Tracing.Tracer("webgate")
	}
	h.ws = ws.New(g, ws.Options{MaxFrameBytes: opts.MaxFrameBytes, RetryWait: opts.RetryWait, Tracer: h.tracer})
	mws := []Middleware{h.recoverMiddleware, h.routeMiddleware, h.observeMiddleware, h.drainMiddleware}
	if opts.Auth != nil {
		mws = append(mws, h.authMiddleware(opts.Auth))
	}
	mws = append(mws, opts.Middlewares...)
	h.chain = Chain(http.HandlerFunc(h.endpoint), mws...)
	return h, nil
}

// ServeHTTP runs the handler chain. A request with a body must deliver it within
// BodyReadTimeout (httpio.ReadBody lifts the deadline once it has it; an unread body keeps it,
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

// RefuseSessions refuses new WebSocket sessions (503) and lets open ones go on; Drain
// refuses new once and OIP requests as well.
func (h *Handler) RefuseSessions() { h.g.Sessions().Refuse() }

// CloseSessions refuses new WebSocket sessions and ends open ones with an error frame
// (10222 "server shutting down") and close 1001 (going away), cancelling their atom
// streams. It is idempotent.
func (h *Handler) CloseSessions() { h.g.Sessions().Close() }

// Wait waits until every WebSocket session and every once and OIP request has ended, or
// ctx ends. Requests may still begin while it waits unless Drain was called first.
func (h *Handler) Wait(ctx context.Context) error {
	if err := h.g.Sessions().Wait(ctx); err != nil {
		return err
	}
	if h.requests.isDraining() {
		return h.requests.wait(ctx)
	}
	return nil
}

// Parked returns how many WebAPI 2.0 sessions wait for a retry.
func (h *Handler) Parked() int { return h.ws.Parked() }

func isWebSocket(r *http.Request) bool { return websocket.IsWebSocketUpgrade(r) }

func (h *Handler) endpoint(w http.ResponseWriter, r *http.Request) {
	info := gate.RequestFrom(r.Context())
	switch {
	case info.OIP != "":
		h.oip.Serve(w, r, info)
	case info.Stream:
		h.ws.Serve(w, r, info)
	case r.Method == http.MethodPost:
		h.serveOnce(w, r, info)
	default:
		info.Code = aserr.ErrBadRequest.Code
		w.Header().Set("Allow", http.MethodPost)
		httpio.WriteMessage(w, http.StatusMethodNotAllowed, "method not allowed")
	}
}
