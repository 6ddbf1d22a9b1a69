package transport

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/capability"
	"github.com/athenaserving/asf/services/webgate/auth"
	"github.com/rs/zerolog"
)

// Middleware wraps an http.Handler; webgate's cross-cutting concerns (recovery, routing,
// metrics, and later HMAC auth, per-app limits) are middlewares.
type Middleware func(http.Handler) http.Handler

// Chain wraps h so that mws[0] is the outermost middleware.
func Chain(h http.Handler, mws ...Middleware) http.Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

// RoutePrefix is the path prefix of ASE capability routes.
const RoutePrefix = "/v1/private/"

// RequestInfo is the per-request state shared along the chain: the route middleware creates
// it, the auth middleware sets App, the endpoint fills Code, the observe middleware reads it
// after the endpoint returns.
type RequestInfo struct {
	// Capability is the resolved capability id.
	Capability string
	// Schema is the capability's schema, nil when none is configured for it.
	Schema *capability.Schema
	// App is the authenticated app, nil when authentication is off.
	App *auth.App
	// SID is the session id assigned to this request or WebSocket session.
	SID string
	// Start is when the request entered the gateway.
	Start time.Time
	// Stream is true for a WebSocket session.
	Stream bool
	// Multiplex is true for a WebSocket with ?stream_mode=multiplex.
	Multiplex bool
	// WebAPI is true for a request on a capability's WebAPI 2.0 route: it is decoded and
	// answered in the WebAPI 2.0 envelope through the schema's mapping.
	WebAPI bool
	// OIP is the Open Inference Protocol action (model, ready, infer) or "".
	OIP string
	// Code is the final ASE code of the request or session (or the HTTP status of a
	// gateway-level refusal: 401, 403, 429).
	Code int
	// Log is the request logger; it carries sid and capability.
	Log zerolog.Logger
	// ClientIP is the client's address (the TCP peer).
	ClientIP string

	kick chan error // a lowered app limit ends the connection
}

// Kick asks the request's WebSocket connection to end with err; it does not block.
func (i *RequestInfo) Kick(err error) {
	select {
	case i.kick <- err:
	default:
	}
}

type infoKey struct{}

// InfoFrom returns the RequestInfo of ctx, or nil outside the chain.
func InfoFrom(ctx context.Context) *RequestInfo {
	info, _ := ctx.Value(infoKey{}).(*RequestInfo)
	return info
}

// resolve finds the capability of r: by the schema route, then ?serviceId=, then the last
// path segment of a route under RoutePrefix. Without a schema the capability is passed to
// atom as named unless RequireSchema is set. ok is false for unknown routes.
func (h *Handler) resolve(r *http.Request) (string, *capability.Schema, bool) {
	reg := h.opts.Schemas
	if reg != nil {
		if s, ok := reg.ByRoute(r.URL.Path); ok {
			return s.ID(), s, true
		}
	}
	if !strings.HasPrefix(r.URL.Path, RoutePrefix) {
		return "", nil, false
	}
	c := r.URL.Query().Get("serviceId")
	if c == "" {
		p := strings.TrimSuffix(r.URL.Path, "/")
		if len(p) < len(RoutePrefix) {
			return "", nil, false
		}
		c = p[strings.LastIndexByte(p, '/')+1:]
	}
	if c == "" {
		return "", nil, false
	}
	return h.lookup(c)
}

// lookup resolves a capability id.
func (h *Handler) lookup(c string) (string, *capability.Schema, bool) {
	if h.opts.Schemas != nil {
		if s, ok := h.opts.Schemas.Get(c); ok {
			return c, s, true
		}
	}
	return c, nil, !h.opts.RequireSchema
}

// writeNotFound writes the ASE gateway's unknown-route answer.
func writeNotFound(w http.ResponseWriter) {
	writeMessage(w, http.StatusNotFound, "not found")
}

// writeMessage writes a gateway-level {"message":"..."} body (the shape of spec §5/§6
// gateway answers, as opposed to ASE error responses).
func writeMessage(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`{"message":` + strconv.Quote(msg) + `}`))
}

// recoverMiddleware turns a panic in the chain into an 11502 response and a log line.
func (h *Handler) recoverMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			rec := recover()
			if rec == nil || rec == http.ErrAbortHandler {
				if rec != nil {
					panic(rec)
				}
				return
			}
			info := InfoFrom(r.Context())
			sid := ""
			if info != nil {
				sid = info.SID
				info.Code = aserr.ErrInternal.Code
			}
			h.log.Error().Str("sid", sid).Interface("panic", rec).Msg("handler panic")
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write(appendError(nil, info, aserr.ErrInternal.Code, aserr.ErrInternal.Msg, ""))
		}()
		next.ServeHTTP(w, r)
	})
}

// routeMiddleware answers unknown routes with 404 and the OIP health probes, resolves the
// capability, assigns the sid and puts the RequestInfo in the request context.
func (h *Handler) routeMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var (
			name   string
			schema *capability.Schema
			ok     bool
			action string
			webapi bool
		)
		if reg := h.opts.Schemas; reg != nil {
			if s, found := reg.ByWebAPIRoute(r.URL.Path); found {
				name, schema, ok, webapi = s.ID(), s, true, true
			}
		}
		if webapi {
			// A WebAPI 2.0 route (its schema may not take the OIP routes).
		} else if strings.HasPrefix(r.URL.Path, oipPrefix) {
			if h.serveOIPHealth(w, r) {
				return
			}
			var model string
			model, action, ok = oipRoute(r.URL.Path)
			if ok {
				name, schema, ok = h.lookup(model)
			}
			if !ok && action != "" {
				h.metrics.requests.WithLabelValues(labelUnknown, kindOIP, strconv.Itoa(aserr.ErrNotFound.Code)).Inc()
				writeOIPError(w, http.StatusNotFound, "model "+model+" not found")
				return
			}
		} else {
			name, schema, ok = h.resolve(r)
		}
		if !ok {
			h.metrics.requests.WithLabelValues(labelUnknown, kindOf(r), strconv.Itoa(aserr.ErrNotFound.Code)).Inc()
			writeNotFound(w)
			return
		}
		info := &RequestInfo{
			Capability: name,
			Schema:     schema,
			SID:        h.sids.Next(),
			Start:      time.Now(),
			Stream:     isWebSocket(r) && action == "",
			OIP:        action,
			WebAPI:     webapi,
			ClientIP:   clientIP(r),
			kick:       make(chan error, 1),
		}
		info.Multiplex = info.Stream && r.URL.Query().Get("stream_mode") == "multiplex"
		lc := h.log.With().Str("sid", info.SID).Str("capability", name)
		if webapi {
			lc = lc.Str("envelope", "webapi")
		}
		info.Log = lc.Logger()
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), infoKey{}, info)))
	})
}

// observeMiddleware records request metrics and the access log line after the endpoint.
func (h *Handler) observeMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r)
		info := InfoFrom(r.Context())
		if info == nil {
			return
		}
		took := time.Since(info.Start)
		kind := info.kind()
		label := h.label(info)
		h.metrics.requests.WithLabelValues(label, kind, strconv.Itoa(info.Code)).Inc()
		h.metrics.latency.WithLabelValues(label, kind).Observe(took.Seconds())
		ev := info.Log.Debug()
		if info.Code != 0 {
			ev = info.Log.Info()
		}
		ev.Str("kind", kind).Int("code", info.Code).Dur("took", took).Str("client", r.RemoteAddr).Msg("request")
	})
}

func (i *RequestInfo) kind() string {
	switch {
	case i.OIP != "":
		return kindOIP
	case i.Multiplex:
		return kindMultiplex
	case i.Stream:
		return kindStream
	}
	return kindOnce
}

func kindOf(r *http.Request) string {
	if isWebSocket(r) {
		return kindStream
	}
	return kindOnce
}
