package transport

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/services/webgate/ase"
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
// it, the endpoint fills Code, the observe middleware reads it after the endpoint returns.
type RequestInfo struct {
	// Capability is the resolved capability id.
	Capability string
	// SID is the session id assigned to this request or WebSocket session.
	SID string
	// Start is when the request entered the gateway.
	Start time.Time
	// Stream is true for a WebSocket session.
	Stream bool
	// Code is the final ASE code of the request or session.
	Code int
	// Log is the request logger; it carries sid and capability.
	Log zerolog.Logger
}

type infoKey struct{}

// InfoFrom returns the RequestInfo of ctx, or nil outside the chain.
func InfoFrom(ctx context.Context) *RequestInfo {
	info, _ := ctx.Value(infoKey{}).(*RequestInfo)
	return info
}

// capabilityOf resolves the capability of r: ?serviceId= first, else the last path segment
// of a route under RoutePrefix; ok is false for any other route.
func capabilityOf(r *http.Request) (string, bool) {
	if !strings.HasPrefix(r.URL.Path, RoutePrefix) {
		return "", false
	}
	if c := r.URL.Query().Get("serviceId"); c != "" {
		return c, true
	}
	p := strings.TrimSuffix(r.URL.Path, "/")
	c := p[strings.LastIndexByte(p, '/')+1:]
	return c, c != "" && len(p) >= len(RoutePrefix)
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
			sid := ""
			if info := InfoFrom(r.Context()); info != nil {
				sid = info.SID
				info.Code = aserr.ErrInternal.Code
			}
			h.log.Error().Str("sid", sid).Interface("panic", rec).Msg("handler panic")
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write(ase.AppendError(nil, aserr.ErrInternal.Code, aserr.ErrInternal.Msg, sid))
		}()
		next.ServeHTTP(w, r)
	})
}

// routeMiddleware answers unknown routes with 404, resolves the capability, assigns the sid
// and puts the RequestInfo in the request context.
func (h *Handler) routeMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		capability, ok := capabilityOf(r)
		if !ok {
			h.metrics.requests.WithLabelValues(labelUnknown, kindOf(r), strconv.Itoa(aserr.ErrNotFound.Code)).Inc()
			writeNotFound(w)
			return
		}
		info := &RequestInfo{
			Capability: capability,
			SID:        h.sids.Next(),
			Start:      time.Now(),
			Stream:     isWebSocket(r),
		}
		info.Log = h.log.With().Str("sid", info.SID).Str("capability", capability).Logger()
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
		kind := kindOnce
		if info.Stream {
			kind = kindStream
		}
		label := h.metrics.capabilityLabel(info.Capability, info.Code)
		h.metrics.requests.WithLabelValues(label, kind, strconv.Itoa(info.Code)).Inc()
		h.metrics.latency.WithLabelValues(label, kind).Observe(took.Seconds())
		ev := info.Log.Debug()
		if info.Code != 0 {
			ev = info.Log.Info()
		}
		ev.Str("kind", kind).Int("code", info.Code).Dur("took", took).Str("client", r.RemoteAddr).Msg("request")
	})
}

func kindOf(r *http.Request) string {
	if isWebSocket(r) {
		return kindStream
	}
	return kindOnce
}
