package transport

import (
	"net/http"
	"strings"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/capability"
	"github.com/athenaserving/asf/services/webgate/gate"
	"github.com/athenaserving/asf/services/webgate/transport/httpio"
	"github.com/athenaserving/asf/services/webgate/transport/oip"
	"github.com/athenaserving/asf/services/webgate/transport/webapi"
	"go.opentelemetry.io/otel/trace"
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
const RoutePrefix = gate.RoutePrefix

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
			info := gate.RequestFrom(r.Context())
			sid := ""
			if info != nil {
				sid = info.SID
				info.Code = aserr.ErrInternal.Code
			}
			h.log.Error().Str("sid", sid).Interface("panic", rec).Msg("handler panic")
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write(webapi.AppendError(nil, info, aserr.ErrInternal.Code, aserr.ErrInternal.Msg, ""))
		}()
		next.ServeHTTP(w, r)
	})
}

// routeMiddleware answers unknown routes with 404 and the OIP health probes, resolves the
// capability, assigns the sid and puts the gate.Request in the request context.
func (h *Handler) routeMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var (
			name   string
			schema *capability.Schema
			ok     bool
			action string
			webapi bool
		)
		if s, found := h.g.WebAPIRoute(r.URL.Path); found {
			name, schema, ok, webapi = s.ID(), s, true, true
		}
		if webapi {
			// A WebAPI 2.0 route (its schema may not take the OIP routes).
		} else if strings.HasPrefix(r.URL.Path, oip.Prefix) {
			if h.oip.ServeHealth(w, r) {
				return
			}
			var model string
			model, action, ok = oip.Route(r.URL.Path)
			if ok {
				name, schema, ok = h.g.Lookup(model)
			}
			if !ok && action != "" {
				h.g.Metrics().NotFound(gate.KindOIP)
				oip.WriteError(w, http.StatusNotFound, "model "+model+" not found")
				return
			}
		} else {
			name, schema, ok = h.g.Resolve(r.URL.Path, httpio.QueryGet(r.URL.RawQuery, "serviceId"))
		}
		if !ok {
			h.g.Metrics().NotFound(kindOf(r))
			httpio.WriteNotFound(w)
			return
		}
		info := h.g.NewRequest(name, schema)
		info.Stream = isWebSocket(r) && action == ""
		info.OIP = action
		info.WebAPI = webapi
		info.ClientIP = httpio.ClientIP(r)
		info.Multiplex = info.Stream && httpio.QueryGet(r.URL.RawQuery, "stream_mode") == "multiplex"
		if webapi {
			info.Log = info.Log.With().Str("envelope", "webapi").Logger()
		}
		ctx := r.Context()
		if h.tracer != nil {
			ctx = h.startTrace(ctx, w, r, info)
		}
		next.ServeHTTP(w, r.WithContext(gate.WithRequest(ctx, info)))
	})
}

// observeMiddleware records request metrics and the access log line after the endpoint.
func (h *Handler) observeMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r)
		info := gate.RequestFrom(r.Context())
		if info == nil {
			return
		}
		took := time.Since(info.Start)
		kind := info.Kind()
		var sc trace.SpanContext
		if info.Span != nil {
			sc = info.Span.SpanContext()
			endTrace(info)
		}
		h.g.Metrics().Finished(h.g.Label(info), kind, info.Code, took, sc)
		ev := info.Log.Debug()
		if info.Code != 0 {
			ev = info.Log.Info()
		}
		ev.Str("kind", kind).Int("code", info.Code).Dur("took", took).Str("client", r.RemoteAddr).Msg("request")
	})
}

func kindOf(r *http.Request) string {
	if isWebSocket(r) {
		return gate.KindStream
	}
	return gate.KindOnce
}
