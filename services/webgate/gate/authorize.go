package gate

import (
	"context"

	"github.com/athenaserving/asf/libs/aserr"
	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
	"github.com/athenaserving/asf/services/webgate/auth"
)

// Limit codes of the ASE platform for per-app limits, and the gateway's own session ends.
var (
	// ErrQPSLimit is sent with HTTP 429 when an app exceeds its QPS.
	ErrQPSLimit = aserr.New(11202, "qps limit exceeded")
	// ErrConnLimit ends a connection of an app whose concurrent-session limit was lowered
	// below its open connections.
	ErrConnLimit = aserr.New(11203, "max connections exceeded")
	// ErrSubSessionLimit refuses a sub-session beyond the socket's MaxSubSessions; the
	// socket and its other sub-sessions go on.
	ErrSubSessionLimit = aserr.New(11204, "too many sub-sessions on this connection")
	// ErrShuttingDown ends sessions still open when the gateway's drain bound is reached.
	ErrShuttingDown = aserr.New(10222, "server shutting down")
)

// Authorize decides whether app, authenticated by an adapter, may make req from
// clientIP: its IP allow-list, its capability list, its QPS and its concurrency limit
// (a lease, held until Release). A WebSocket session whose app's limit is lowered below
// its open sessions is kicked with ErrConnLimit. Refusals are *auth.Error values.
func (g *Gate) Authorize(app *auth.App, clientIP string, req *Request) (*auth.Lease, error) {
	if !app.AllowsIP(clientIP) {
		return nil, auth.ErrIP
	}
	if !app.Allows(req.Capability) {
		return nil, auth.ErrCapability
	}
	lim := g.opts.Limiter
	if lim == nil {
		return nil, nil
	}
	if !lim.Allow(app) {
		return nil, auth.ErrQPS
	}
	var kick func()
	if req.Stream {
		kick = func() { req.Kick(ErrConnLimit) }
	}
	lease, ok := lim.Acquire(app, kick)
	if !ok {
		return nil, auth.ErrConnections
	}
	return lease, nil
}

// Release releases a lease of Authorize; a nil lease is a no-op.
func (g *Gate) Release(lease *auth.Lease) {
	if g.opts.Limiter != nil {
		g.opts.Limiter.Release(lease)
	}
}

// appIDFilter rejects a first frame whose header.app_id is empty or not the authenticated
// app (10313).
func appIDFilter(ctx context.Context, f *atompb.Frame, first bool) error {
	req := RequestFrom(ctx)
	if !first || req == nil || req.App == nil {
		return nil
	}
	if f.GetHeader()["app_id"] != req.App.ID {
		return aserr.ErrAppID
	}
	return nil
}
