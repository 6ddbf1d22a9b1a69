// Package adminapi is polaris's authenticated HTTP admin API (JSON under /api/v1/):
// services and instances with their live load and admin state, config files with
// history, diff, push, gray push, rollback and delete, apply reports, consumers, and
// the API tokens themselves. Every call carries `Authorization: Bearer <token>`; admin
// tokens may write, viewer tokens only read.
//
//	eps := service.MakeEndpoints(svc, log, promReg)        // the one service layer
//	api := adminapi.New(adminapi.Options{Service: svc, Endpoints: eps, Log: log})
//	mux.Handle("/api/", api.Handler())
//
// Errors are JSON: {"error":{"code":10404,"status":404,"message":"unknown service \"x\""}}.
package adminapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/services/polaris/adminapi/auth"
	"github.com/athenaserving/asf/services/polaris/service"
	"github.com/rs/zerolog"
)

// DefaultMaxBody bounds a request body (a pushed config file included).
const DefaultMaxBody = 4 << 20

// Errors of the admin API, with their codes.
var (
	// ErrUnauthorized is a missing, malformed, unknown or revoked token (HTTP 401).
	ErrUnauthorized = aserr.ErrUnauthenticated
	// ErrForbidden is an operation the token's role does not allow (HTTP 403).
	ErrForbidden = aserr.ErrForbidden
	// ErrTooLarge is a body over the limit (HTTP 413).
	ErrTooLarge = aserr.New(10413, "request body too large")
)

// Options configure the API.
type Options struct {
	// Service authenticates tokens; Endpoints are the service layer's operations
	// (service.MakeEndpoints), which every route calls.
	Service   *service.Service
	Endpoints service.Endpoints
	// ResourceMax is the size bound of a resource upload (0: resource uploads are
	// bounded by MaxBody).
	ResourceMax int64
	Log         zerolog.Logger
	// MaxBody bounds request bodies; 0 is DefaultMaxBody.
	MaxBody int64
	// LoginLink, when set, makes a one-time console login URL for a token
	// (POST /api/v1/login-links).
	LoginLink func(tok auth.Token) (string, error)
}

// API serves the admin API.
type API struct{ o Options }

// New returns the API.
func New(o Options) *API {
	if o.MaxBody <= 0 {
		o.MaxBody = DefaultMaxBody
	}
	return &API{o: o}
}

type handler func(ctx context.Context, r *http.Request) (any, error)

// Handler returns the routes, every one authenticated.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	route := func(pattern string, op service.Op, h handler) {
		mux.HandleFunc(pattern, a.wrap(op, h))
	}
	const file = "/api/v1/config/files/{project}/{group}/{service}/{version}/{file}"
	route("GET /api/v1/whoami", service.OpWhoami, a.whoami)
	route("GET /api/v1/tokens", service.OpTokens, a.listTokens)
	route("POST /api/v1/tokens", service.OpTokenCreate, a.createToken)
	route("DELETE /api/v1/tokens/{id}", service.OpTokenRevoke, a.revokeToken)
	route("POST /api/v1/login-links", service.OpWhoami, a.loginLink)
	route("GET /api/v1/services", service.OpServices, a.services)
	route("GET /api/v1/services/{service}/instances", service.OpInstances, a.instances)
	route("PUT /api/v1/services/{service}/instances/{addr}/admin", service.OpSetAdmin, a.setAdmin)
	route("GET /api/v1/consumers", service.OpConsumers, a.consumers)
	route("GET /api/v1/config/files", service.OpFiles, a.files)
	route("GET "+file, service.OpConfigGet, a.getFile)
	route("PUT "+file, service.OpPush, a.push)
	route("DELETE "+file, service.OpDelete, a.deleteFile)
	route("GET "+file+"/history", service.OpHistory, a.history)
	route("GET "+file+"/revisions/{rev}", service.OpRevision, a.revision)
	route("GET "+file+"/diff", service.OpDiff, a.diff)
	route("POST "+file+"/rollback", service.OpRollback, a.rollback)
	route("GET "+file+"/applied", service.OpApplied, a.applied)
	a.resourceRoutes(route)
	route("/api/", service.OpWhoami, func(context.Context, *http.Request) (any, error) {
		return nil, fmt.Errorf("no such route or method: %w", aserr.ErrNotFound)
	})
	return mux
}

// Caller returns the service caller of an HTTP request: its bearer token, if any.
func Caller(svc *service.Service, r *http.Request, entrance string) service.Caller {
	c := service.Caller{Entrance: entrance}
	h := r.Header.Get("Authorization")
	if h == "" {
		return c
	}
	scheme, secret, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		c.BadToken = true
		return c
	}
	return svc.Authenticate(c, strings.TrimSpace(secret))
}

// wrap authenticates the caller, checks that its token may make op before the body is
// read, runs h (which calls the endpoints, where authorization is decided) and writes
// its result or error as JSON.
func (a *API) wrap(op service.Op, h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c := Caller(a.o.Service, r, service.EntranceHTTP)
		ctx := service.WithCaller(r.Context(), c)
		if _, err := a.o.Service.Authorize(ctx, c, service.OpOnly(op)); err != nil {
			writeError(w, err)
			return
		}
		limit := a.o.MaxBody
		if n, ok := a.resourceBodyLimit(r); ok {
			limit = n
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		v, err := h(ctx, r)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	}
}
