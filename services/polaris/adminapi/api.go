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
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/services/polaris/adminapi/auth"
	"github.com/athenaserving/asf/services/polaris/config"
	"github.com/athenaserving/asf/services/polaris/registry"
	"github.com/athenaserving/asf/services/polaris/resource"
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
			WriteError(w, err)
			return
		}
		limit := a.o.MaxBody
		if n, ok := a.resourceBodyLimit(r); ok {
			limit = n
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		v, err := h(ctx, r)
		if err != nil {
			WriteError(w, err)
			return
		}
		WriteJSON(w, http.StatusOK, v)
	}
}

// ErrorBody is the JSON body of every error.
type ErrorBody struct {
	Error ErrorInfo `json:"error"`
}

// ErrorInfo is an error's code, HTTP status and message.
type ErrorInfo struct {
	Code    int    `json:"code"`
	Status  int    `json:"status"`
	Message string `json:"message"`
}

// StatusOf maps an error's code to its HTTP status.
func StatusOf(err error) int {
	switch aserr.CodeOf(err) {
	case ErrUnauthorized.Code:
		return http.StatusUnauthorized
	case ErrForbidden.Code:
		return http.StatusForbidden
	case ErrTooLarge.Code, resource.ErrTooLarge.Code:
		return http.StatusRequestEntityTooLarge
	case aserr.ErrRevisionPruned.Code:
		return http.StatusGone
	case aserr.ErrNotFound.Code, aserr.ErrResNotFound.Code:
		return http.StatusNotFound
	case aserr.ErrInvalidParam.Code, aserr.ErrBadRequest.Code:
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// WriteError writes err as an ErrorBody with its status.
func WriteError(w http.ResponseWriter, err error) {
	st := StatusOf(err)
	if st == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="polaris"`)
	}
	msg := err.Error()
	if st == http.StatusInternalServerError {
		msg = aserr.MessageOf(err)
	}
	WriteJSON(w, st, ErrorBody{Error: ErrorInfo{Code: aserr.CodeOf(err), Status: st, Message: msg}})
}

// WriteJSON writes v as indented JSON with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// decode reads exactly one JSON object into dst, refusing unknown fields.
func decode(r *http.Request, dst any) error {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return fmt.Errorf("body over %d bytes: %w", mbe.Limit, ErrTooLarge)
		}
		return fmt.Errorf("read body: %w", aserr.ErrBadRequest)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return fmt.Errorf("malformed JSON body: %v: %w", err, aserr.ErrBadRequest)
	}
	if dec.More() {
		return fmt.Errorf("malformed JSON body: trailing data: %w", aserr.ErrBadRequest)
	}
	return nil
}

func (a *API) whoami(ctx context.Context, _ *http.Request) (any, error) {
	t, err := service.Do[auth.Token](ctx, a.o.Endpoints, service.WhoamiRequest{})
	if err != nil {
		return nil, err
	}
	return map[string]any{"id": t.ID, "name": t.Name, "role": t.Role}, nil
}

// TokenView is a token as the API shows it (never its hash).
type TokenView struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Role    auth.Role `json:"role"`
	Created time.Time `json:"created"`
	// Token is the secret, present only in the answer to its creation.
	Token string `json:"token,omitempty"`
}

func viewOf(t auth.Token) TokenView {
	return TokenView{ID: t.ID, Name: t.Name, Role: t.Role, Created: t.Created}
}

func (a *API) listTokens(ctx context.Context, _ *http.Request) (any, error) {
	ts, err := service.Do[[]auth.Token](ctx, a.o.Endpoints, service.TokensRequest{})
	if err != nil {
		return nil, err
	}
	out := []TokenView{}
	for _, t := range ts {
		out = append(out, viewOf(t))
	}
	return map[string]any{"tokens": out}, nil
}

func (a *API) createToken(ctx context.Context, r *http.Request) (any, error) {
	var req struct {
		Name string    `json:"name"`
		Role auth.Role `json:"role"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	c, err := service.Do[service.TokenCreated](ctx, a.o.Endpoints, service.TokenCreateRequest{Name: req.Name, Role: req.Role})
	if err != nil {
		return nil, err
	}
	v := viewOf(c.Token)
	v.Token = c.Secret
	return v, nil
}

func (a *API) revokeToken(ctx context.Context, r *http.Request) (any, error) {
	id := r.PathValue("id")
	if _, err := service.Do[struct{}](ctx, a.o.Endpoints, service.TokenRevokeRequest{ID: id}); err != nil {
		return nil, err
	}
	return map[string]any{"revoked": id}, nil
}

func (a *API) loginLink(ctx context.Context, _ *http.Request) (any, error) {
	tok, err := service.Do[auth.Token](ctx, a.o.Endpoints, service.WhoamiRequest{})
	if err != nil {
		return nil, err
	}
	if a.o.LoginLink == nil {
		return nil, fmt.Errorf("console not mounted: %w", aserr.ErrNotFound)
	}
	u, err := a.o.LoginLink(tok)
	if err != nil {
		return nil, err
	}
	return map[string]any{"url": u}, nil
}

func (a *API) services(ctx context.Context, _ *http.Request) (any, error) {
	ss, err := service.Do[[]service.ServiceSummary](ctx, a.o.Endpoints, service.ServicesRequest{})
	if err != nil {
		return nil, err
	}
	return map[string]any{"services": ss}, nil
}

func (a *API) instances(ctx context.Context, r *http.Request) (any, error) {
	sts, err := service.Do[[]registry.State](ctx, a.o.Endpoints, service.InstancesRequest{Service: r.PathValue("service"), Kind: r.URL.Query().Get("kind")})
	if err != nil {
		return nil, err
	}
	return map[string]any{"service": r.PathValue("service"), "instances": sts}, nil
}

// AdminRequest is the body of a SetAdmin call; a missing field keeps its value.
type AdminRequest struct {
	Enabled *bool  `json:"enabled"`
	Weight  *int32 `json:"weight"`
}

func (a *API) setAdmin(ctx context.Context, r *http.Request) (any, error) {
	var req AdminRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	k := registry.Key{Service: r.PathValue("service"), Addr: r.PathValue("addr")}
	adm, err := service.Do[registry.Admin](ctx, a.o.Endpoints, service.SetAdminRequest{Key: k, Enabled: req.Enabled, Weight: req.Weight})
	if err != nil {
		return nil, err
	}
	return map[string]any{"key": k, "admin": adm}, nil
}

func (a *API) consumers(ctx context.Context, _ *http.Request) (any, error) {
	cs, err := service.Do[[]registry.State](ctx, a.o.Endpoints, service.ConsumersRequest{})
	if err != nil {
		return nil, err
	}
	return map[string]any{"consumers": cs}, nil
}

func keyOf(r *http.Request) config.Key {
	return config.Key{Project: r.PathValue("project"), Group: r.PathValue("group"), Service: r.PathValue("service"),
		Version: r.PathValue("version"), File: r.PathValue("file")}
}

func (a *API) files(ctx context.Context, r *http.Request) (any, error) {
	q := r.URL.Query()
	fs, err := service.Do[[]service.FileSummary](ctx, a.o.Endpoints, service.FilesRequest{Filter: config.Key{Project: q.Get("project"), Group: q.Get("group"),
		Service: q.Get("service"), Version: q.Get("version")}})
	if err != nil {
		return nil, err
	}
	return map[string]any{"files": fs}, nil
}

// FileView is a config revision as the API shows it: the content as text when it is
// UTF-8, else base64.
type FileView struct {
	Key           config.Key `json:"key"`
	Revision      int64      `json:"revision"`
	Created       time.Time  `json:"created"`
	Comment       string     `json:"comment,omitempty"`
	GrayGroup     string     `json:"gray_group,omitempty"`
	Gray          bool       `json:"gray,omitempty"`
	Content       *string    `json:"content,omitempty"`
	ContentBase64 string     `json:"content_base64,omitempty"`
}

// ViewOf converts a revision to its API view.
func ViewOf(f config.File) FileView {
	v := FileView{Key: f.Key, Revision: f.Revision, Created: f.Created, Comment: f.Comment, GrayGroup: f.GrayGroup, Gray: f.Gray}
	if utf8.Valid(f.Content) {
		s := string(f.Content)
		v.Content = &s
	} else {
		v.ContentBase64 = base64.StdEncoding.EncodeToString(f.Content)
	}
	return v
}

func (a *API) fileView(ctx context.Context, req service.Request) (any, error) {
	f, err := service.Do[config.File](ctx, a.o.Endpoints, req)
	if err != nil {
		return nil, err
	}
	return ViewOf(f), nil
}

func (a *API) getFile(ctx context.Context, r *http.Request) (any, error) {
	caller := config.Caller{}
	if g := r.URL.Query().Get("gray"); g != "" {
		caller.Labels = map[string]string{config.GrayLabel: g}
	}
	return a.fileView(ctx, service.GetConfigRequest{Key: keyOf(r), Caller: caller})
}

// PushRequest is the body of a push.
type PushRequest struct {
	Content       *string `json:"content"`
	ContentBase64 *string `json:"content_base64"`
	Comment       string  `json:"comment"`
	GrayGroup     string  `json:"gray_group"`
}

func (a *API) push(ctx context.Context, r *http.Request) (any, error) {
	var req PushRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	var content []byte
	switch {
	case req.Content != nil && req.ContentBase64 == nil:
		content = []byte(*req.Content)
	case req.ContentBase64 != nil && req.Content == nil:
		b, err := base64.StdEncoding.DecodeString(*req.ContentBase64)
		if err != nil {
			return nil, fmt.Errorf("content_base64: %v: %w", err, aserr.ErrBadRequest)
		}
		content = b
	default:
		return nil, fmt.Errorf("exactly one of content and content_base64 is required: %w", aserr.ErrInvalidParam)
	}
	return a.fileView(ctx, service.PushRequest{Key: keyOf(r), Content: content, Comment: req.Comment, GrayGroup: req.GrayGroup})
}

func (a *API) deleteFile(ctx context.Context, r *http.Request) (any, error) {
	k := keyOf(r)
	if _, err := service.Do[struct{}](ctx, a.o.Endpoints, service.DeleteRequest{Key: k}); err != nil {
		return nil, err
	}
	return map[string]any{"deleted": k}, nil
}

func (a *API) history(ctx context.Context, r *http.Request) (any, error) {
	k := keyOf(r)
	h, err := service.Do[service.HistoryResponse](ctx, a.o.Endpoints, service.HistoryRequest{Key: k})
	if err != nil {
		return nil, err
	}
	out := make([]FileView, 0, len(h.Revisions))
	for _, f := range h.Revisions {
		out = append(out, ViewOf(f))
	}
	return map[string]any{"key": k, "current": h.Summary.Current, "gray": h.Summary.Gray, "revisions": out}, nil
}

func parseRev(s, name string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s %q is not a revision number: %w", name, s, aserr.ErrInvalidParam)
	}
	return n, nil
}

func (a *API) revision(ctx context.Context, r *http.Request) (any, error) {
	n, err := parseRev(r.PathValue("rev"), "rev")
	if err != nil {
		return nil, err
	}
	return a.fileView(ctx, service.RevisionRequest{Key: keyOf(r), Revision: n})
}

func (a *API) diff(ctx context.Context, r *http.Request) (any, error) {
	q := r.URL.Query()
	from, err := parseRev(q.Get("from"), "from")
	if err != nil {
		return nil, err
	}
	to, err := parseRev(q.Get("to"), "to")
	if err != nil {
		return nil, err
	}
	return service.Do[service.DiffView](ctx, a.o.Endpoints, service.DiffRequest{Key: keyOf(r), From: from, To: to})
}

func (a *API) rollback(ctx context.Context, r *http.Request) (any, error) {
	var req struct {
		Revision int64 `json:"revision"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	return a.fileView(ctx, service.RollbackRequest{Key: keyOf(r), Revision: req.Revision})
}

func (a *API) applied(ctx context.Context, r *http.Request) (any, error) {
	k := keyOf(r)
	reps, err := service.Do[[]config.Applied](ctx, a.o.Endpoints, service.AppliedRequest{Key: k})
	if err != nil {
		return nil, err
	}
	return map[string]any{"key": k, "reports": reps}, nil
}
