package transport

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/athenaserving/asf/services/webgate/auth"
	"github.com/athenaserving/asf/services/webgate/gate"
	"github.com/athenaserving/asf/services/webgate/transport/httpio"
	"github.com/athenaserving/asf/services/webgate/transport/webapi"
)

// authMiddleware authenticates the request with the ASE HMAC signature (URL-parameter form
// when ?authorization= is present, else the Authorization header form), then has the gate
// decide the app's access (gate.Authorize: IP allow-list, capability list, QPS and
// concurrency limits). Failures answer with the exact bodies of specs/ase-protocol.md §5.
// The authenticated app goes into the gate.Request's App.
func (h *Handler) authMiddleware(a *auth.Authenticator) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			info := gate.RequestFrom(r.Context())
			app, err := h.authenticate(a, w, r)
			if err == nil {
				AdmitConn(r.Context()) // its source's cap counts unauthenticated connections only
			}
			var lease *auth.Lease
			if err == nil {
				lease, err = h.g.Authorize(app, httpio.ClientIP(r), info)
			}
			if err != nil {
				h.refuse(w, info, err)
				return
			}
			defer h.g.Release(lease)
			info.App = app
			info.Log = info.Log.With().Str("app_id", app.ID).Logger()
			next.ServeHTTP(w, r)
		})
	}
}

func (h *Handler) authenticate(a *auth.Authenticator, w http.ResponseWriter, r *http.Request) (*auth.App, error) {
	q := r.URL.RawQuery
	req := auth.Request{Method: r.Method, Path: r.URL.EscapedPath()}
	if authz := httpio.QueryGet(q, "authorization"); authz != "" {
		req.Authorization, req.Date, req.Host, req.URLForm = authz, httpio.QueryGet(q, "date"), httpio.QueryGet(q, "host"), true
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
	body, err := httpio.ReadBody(w, r, h.opts.MaxBodyBytes)
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
func (h *Handler) refuse(w http.ResponseWriter, info *gate.Request, err error) {
	var ae *auth.Error
	if !errors.As(err, &ae) {
		h.writeOnceError(w, info, err)
		return
	}
	h.g.Metrics().AuthFailure(ae.Reason)
	info.Code = ae.Status
	info.Log.Debug().Str("reason", ae.Reason).Msg("request refused")
	if ae == auth.ErrQPS {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write(webapi.AppendError(nil, info, gate.ErrQPSLimit.Code, gate.ErrQPSLimit.Msg, ""))
		return
	}
	httpio.WriteMessage(w, ae.Status, ae.Message)
}
