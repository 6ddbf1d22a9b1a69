// Package gate is webgate's service, whatever front door a request came through (ASE over
// HTTP or WebSocket, the WebAPI 2.0 envelope, OIP v2): it resolves the capability, assigns
// the sid, decides authorisation and per-app limits for an authenticated app, validates
// frames against the capability schema, calls atom through the Atom interface it declares,
// bounds sessions (client inactivity, and a backstop behind atom's capability timeouts)
// and keeps the books of a multiplexed connection's sub-sessions. It imports no transport:
// the adapters under transport/ decode requests into frames and encode results.
//
//	g, err := gate.New(atom, gate.Options{ReadTimeout: 15 * time.Second, SessionTimeout: 3 * time.Minute, SIDs: sids}, log, reg)
//	req := g.NewRequest("ist", schema)
//	f, _, err := g.DecodeFrame(ctx, req, body, ase.StatusOnce, true, nil)
//	res, err := g.Call(ctx, req, f)
package gate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/athenaserving/asf/libs/capability"
	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
	"github.com/athenaserving/asf/services/webgate/ase"
	"github.com/athenaserving/asf/services/webgate/auth"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Atom is what the gate needs from atom: a once call and a session stream. Errors carry
// ASE codes (the adapter turns gRPC statuses into coded errors); a stream's Send and Recv
// return io.EOF when atom ended it.
type Atom interface {
	Call(ctx context.Context, f *atompb.Frame) (*atompb.Result, error)
	Stream(ctx context.Context) (Stream, error)
}

// Stream is one session's stream to atom.
type Stream interface {
	Send(f *atompb.Frame) error
	Recv() (*atompb.Result, error)
	CloseSend() error
}

// FrameFilter checks or amends a parsed frame before it goes to atom; first is true for a
// once request and for the first frame of a WebSocket session. An error (with an aserr code)
// rejects the request or ends the session.
type FrameFilter func(ctx context.Context, f *atompb.Frame, first bool) error

// RoutePrefix is the path prefix of ASE capability routes.
const RoutePrefix = "/v1/private/"

// DefaultBackstopMargin is Options.BackstopMargin when it is not set (docs/contracts.md,
// "One owner per policy").
const DefaultBackstopMargin = time.Second

// DefaultMaxSubSessions is how many sub-sessions one multiplexed socket runs at once when
// Options.MaxSubSessions is not set.
const DefaultMaxSubSessions = 16

// Options configures a Gate.
type Options struct {
	// ReadTimeout ends a WebSocket session with 10200 when neither a frame arrives nor a
	// result is sent for this long; a capability's read_timeout overrides it.
	ReadTimeout time.Duration
	// SessionTimeout ends a WebSocket session with 10114 after this lifetime; for a
	// capability with a session_timeout the lifetime is atom's (see BackstopMargin).
	SessionTimeout time.Duration
	// BackstopMargin is how much longer than a capability's once_timeout and
	// session_timeout webgate waits before it ends the call or session itself: atom owns
	// those timeouts and answers 10102 and 10114 in band, so its code always reaches the
	// client first, and webgate's timer only ends a call or session whose atom does not
	// answer. 0 means DefaultBackstopMargin.
	BackstopMargin time.Duration
	// MaxPayloadBytes bounds the decoded payload data of one frame; 0 means no bound
	// beyond the adapters' body and frame limits.
	MaxPayloadBytes int64
	// SIDs generates session ids.
	SIDs *ase.SIDGen
	// Renderer renders results; zero means ase.DefaultRenderer(). Capability output
	// schemas refine its typing per capability.
	Renderer ase.Renderer
	// Schemas resolves capabilities and their schemas; nil means none.
	Schemas *capability.Registry
	// RequireSchema refuses capabilities without a schema (404); when false they are
	// passed to atom unvalidated (atom answers 10404 for unknown ones).
	RequireSchema bool
	// Authenticated adds the app_id check to the frame filters: a first frame must name
	// the authenticated app (10313).
	Authenticated bool
	// Limiter applies per-app QPS and concurrency limits; nil means none.
	Limiter *auth.Limiter
	// Filters run on every parsed frame (after schema validation and the app_id check).
	Filters []FrameFilter
	// MaxSubSessions bounds the sub-sessions running at once on one multiplexed socket
	// (more are refused with 11204, the socket goes on); 0 means DefaultMaxSubSessions.
	MaxSubSessions int
	// Capabilities are known capability ids, used as metric labels from the start.
	Capabilities []string
	// MaxCapabilityLabels bounds the capability metric label; 0 means 64.
	MaxCapabilityLabels int
}

// Gate is webgate's service. It is safe for concurrent use.
type Gate struct {
	atom     Atom
	opts     Options
	log      zerolog.Logger
	metrics  *Metrics
	sessions Sessions
}

// New returns a Gate that calls atom. reg may be nil.
func New(atom Atom, opts Options, log zerolog.Logger, reg prometheus.Registerer) (*Gate, error) {
	if atom == nil || opts.SIDs == nil {
		return nil, errors.New("gate: atom client and sid generator are required")
	}
	if opts.ReadTimeout <= 0 || opts.SessionTimeout <= 0 {
		return nil, fmt.Errorf("gate: read timeout %v and session timeout %v must be positive", opts.ReadTimeout, opts.SessionTimeout)
	}
	if opts.Renderer.Typer == nil {
		opts.Renderer = ase.DefaultRenderer()
	}
	if opts.BackstopMargin <= 0 {
		opts.BackstopMargin = DefaultBackstopMargin
	}
	if opts.MaxSubSessions <= 0 {
		opts.MaxSubSessions = DefaultMaxSubSessions
	}
	if opts.Authenticated {
		opts.Filters = append([]FrameFilter{appIDFilter}, opts.Filters...)
	}
	g := &Gate{atom: atom, opts: opts, log: log, metrics: newMetrics(reg, opts.MaxCapabilityLabels), sessions: newSessions()}
	g.metrics.admit(opts.Capabilities)
	return g, nil
}

// Metrics are the gate's request metrics, written by the adapters too.
func (g *Gate) Metrics() *Metrics { return g.metrics }

// Sessions are the gate's open WebSocket sessions.
func (g *Gate) Sessions() *Sessions { return &g.sessions }

// Lookup resolves a capability id; ok is false for a capability without a schema when
// RequireSchema is set.
func (g *Gate) Lookup(c string) (string, *capability.Schema, bool) {
	if g.opts.Schemas != nil {
		if s, ok := g.opts.Schemas.Get(c); ok {
			return c, s, true
		}
	}
	return c, nil, !g.opts.RequireSchema
}

// Resolve finds the capability of a request path: by the schema route, then serviceID
// (the ?serviceId= parameter), then the last path segment of a route under RoutePrefix.
// ok is false for unknown routes.
func (g *Gate) Resolve(path, serviceID string) (string, *capability.Schema, bool) {
	if reg := g.opts.Schemas; reg != nil {
		if s, ok := reg.ByRoute(path); ok {
			return s.ID(), s, true
		}
	}
	if !strings.HasPrefix(path, RoutePrefix) {
		return "", nil, false
	}
	c := serviceID
	if c == "" {
		p := strings.TrimSuffix(path, "/")
		if len(p) < len(RoutePrefix) {
			return "", nil, false
		}
		c = p[strings.LastIndexByte(p, '/')+1:]
	}
	if c == "" {
		return "", nil, false
	}
	return g.Lookup(c)
}

// WebAPIRoute finds the capability whose WebAPI 2.0 route is path.
func (g *Gate) WebAPIRoute(path string) (*capability.Schema, bool) {
	if g.opts.Schemas == nil {
		return nil, false
	}
	return g.opts.Schemas.ByWebAPIRoute(path)
}

// NewRequest starts a request (or WebSocket session) of a capability: it assigns the sid
// and the request's logger.
func (g *Gate) NewRequest(capability string, schema *capability.Schema) *Request {
	req := &Request{
		Capability: capability,
		Schema:     schema,
		SID:        g.opts.SIDs.Next(),
		Start:      time.Now(),
		kick:       make(chan error, 1),
	}
	req.Log = g.log.With().Str("sid", req.SID).Str("capability", capability).Logger()
	return req
}

// SubRequest is the request of one sub-session of a multiplexed connection: the
// connection's, with a sid of its own.
func (g *Gate) SubRequest(conn *Request, cid string) *Request {
	cp := *conn
	cp.SID = g.opts.SIDs.Next()
	cp.Log = conn.Log.With().Str("sid", cp.SID).Str("cid", cid).Logger()
	return &cp
}

// Call sends a once frame to atom. A capability's once_timeout is atom's to enforce
// (10102, in band); the call is bounded only by a backstop of once_timeout plus
// BackstopMargin, which ends a call to an atom that does not answer.
func (g *Gate) Call(ctx context.Context, req *Request, f *atompb.Frame) (*atompb.Result, error) {
	if req.Schema != nil && req.Schema.OnceTimeout() > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, req.Schema.OnceTimeout()+g.opts.BackstopMargin)
		defer cancel()
	}
	res, err := g.atom.Call(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("atom call: %w", err)
	}
	return res, nil
}

// OpenStream opens a session's stream to atom; it ends with ctx.
func (g *Gate) OpenStream(ctx context.Context) (Stream, error) {
	return g.atom.Stream(ctx)
}

// Timeouts are a session's client inactivity bound (webgate's own policy: the
// capability's read_timeout, else ReadTimeout) and its lifetime: a capability's
// session_timeout is atom's to enforce (10114, in band), so webgate's lifetime for it is a
// backstop of session_timeout plus BackstopMargin; without one it is SessionTimeout.
func (g *Gate) Timeouts(req *Request) (read, life time.Duration) {
	read, life = g.opts.ReadTimeout, g.opts.SessionTimeout
	if s := req.Schema; s != nil {
		if s.ReadTimeout() > 0 {
			read = s.ReadTimeout()
		}
		if s.SessionTimeout() > 0 {
			life = s.SessionTimeout() + g.opts.BackstopMargin
		}
	}
	return read, life
}

// Renderer returns the renderer of a capability: the schema's schemaoutput types the
// attributes it declares, the default typing the rest.
func (g *Gate) Renderer(s *capability.Schema) ase.Renderer {
	if s == nil {
		return g.opts.Renderer
	}
	base := g.opts.Renderer.Typer
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

// Label is the bounded capability metric label of a request.
func (g *Gate) Label(req *Request) string {
	return g.metrics.Label(req.Capability, req.Code, req.Schema != nil)
}
