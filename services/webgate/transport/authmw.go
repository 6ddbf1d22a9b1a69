package transport

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
	"github.com/athenaserving/asf/services/webgate/auth"
)

// Limit codes of the ASE platform for per-app limits.
var (
	// ErrQPSLimit is sent with HTTP 429 when an app exceeds its QPS.
	ErrQPSLimit = aserr.New(11202, "qps limit exceeded")
	// ErrConnLimit ends a connection of an app whose concurrent-session limit was lowered
	// below its open connections.
	ErrConnLimit = aserr.New(11203, "max connections exceeded")
	// ErrShuttingDown ends sessions still open when the gateway's drain bound is reached.
	ErrShuttingDown = aserr.New(10222, "server shutting down")
)

// AuthMiddleware authenticates the request with the ASE HMAC signature (URL-parameter form
// when ?authorization= is present, else the Authorization header form), then applies the
// app's IP allow-list, capability list, QPS and concurrency limits. Failures answer with
// the exact bodies of specs/ase-protocol.md §5. The authenticated app goes into
// RequestInfo.App.
func (h *Handler) AuthMiddleware(a *auth.Authenticator, lim *auth.Limiter) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			info := InfoFrom(r.Context())
			app, err := h.authenticate(a, w, r)
			if err == nil {
				AdmitConn(r.Context()) // its source's cap counts unauthenticated connections only
			}
			if err == nil && !app.AllowsIP(clientIP(r)) {
				err = auth.ErrIP
			}
			if err == nil && !app.Allows(info.Capability) {
				err = auth.ErrCapability
			}
			if err == nil && lim != nil && !lim.Allow(app) {
				err = auth.ErrQPS
			}
			var lease *auth.Lease
			if err == nil && lim != nil {
				var kick func()
				if info.Stream {
					kick = func() { info.Kick(ErrConnLimit) }
				}
				var ok bool
				if lease, ok = lim.Acquire(app, kick); !ok {
					err = auth.ErrConnections
				}
			}
			if err != nil {
				h.refuse(w, info, err)
				return
			}
			defer lim.Release(lease)
			info.App = app
			info.Log = info.Log.With().Str("app_id", app.ID).Logger()
			next.ServeHTTP(w, r)
		})
	}
}

func (h *Handler) authenticate(a *auth.Authenticator, w http.ResponseWriter, r *http.Request) (*auth.App, error) {
	q := r.URL.Query()
	req := auth.Request{Method: r.Method, Path: r.URL.EscapedPath()}
	if authz := q.Get("authorization"); authz != "" {
		req.Authorization, req.Date, req.Host, req.URLForm = authz, q.Get("date"), q.Get("host"), true
		if req.Host == "" {
			req.Host = r.Host
		}
	} else {
		req.Authorization, req.Host = r.Header.Get("Authorization"), r.Host
		req.Date = r.Header.Get("X-Date")
		if req.Date == "" {
			req.Date = r.Header.Get("Date")
		}
		req.Digest = r.Header.Get("Digest")
		req.Header = func(name string) string { return r.Header.Get(name) }
		req.HasBody = r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
	}
	app, err := a.Authenticate(req, time.Now())
	if err != nil || req.URLForm || (!req.HasBody && req.Digest == "") {
		return app, err
	}
	// The signature over the headers holds: only now read the body (bounded) and check it
	// against the signed digest.
	body, err := readBody(w, r, h.opts.MaxBodyBytes)
	if err != nil {
		return nil, err
	}
	if err := auth.VerifyDigest(req.Digest, body); err != nil {
		return nil, err
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	return app, nil
}

// refuse answers a gateway-level refusal: the exact {"message":...} body of an auth
// failure, an ASE error with 429 for the QPS limit, or the ASE error of a body failure.
func (h *Handler) refuse(w http.ResponseWriter, info *RequestInfo, err error) {
	var ae *auth.Error
	if !errors.As(err, &ae) {
		h.writeOnceError(w, info, err)
		return
	}
	h.metrics.authFailures.WithLabelValues(ae.Reason).Inc()
	info.Code = ae.Status
	info.Log.Debug().Str("reason", ae.Reason).Msg("request refused")
	if ae == auth.ErrQPS {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write(appendError(nil, info, ErrQPSLimit.Code, ErrQPSLimit.Msg, ""))
		return
	}
	writeMessage(w, ae.Status, ae.Message)
}

// appIDFilter rejects a first frame whose header.app_id is empty or not the authenticated
// app (10313).
func appIDFilter(ctx context.Context, f *atompb.Frame, first bool) error {
	info := InfoFrom(ctx)
	if !first || info == nil || info.App == nil {
		return nil
	}
	if f.GetHeader()["app_id"] != info.App.ID {
		return aserr.ErrAppID
	}
	return nil
}

func clientIP(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}
