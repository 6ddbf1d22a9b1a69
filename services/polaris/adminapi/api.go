// Package adminapi is polaris's authenticated HTTP admin API (JSON under /api/v1/):
// services and instances with their live load and admin state, config files with
// history, diff, push, gray push, rollback and delete, apply reports, consumers, and
// the API tokens themselves. Every call carries `Authorization: Bearer <token>`; admin
// tokens may write, viewer tokens only read.
//
//	api := adminapi.New(adminapi.Options{Registry: reg, Center: center, Catalog: cat, Tokens: tokens, Log: log})
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
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/services/polaris/adminapi/auth"
	"github.com/athenaserving/asf/services/polaris/adminapi/diff"
	"github.com/athenaserving/asf/services/polaris/config"
	"github.com/athenaserving/asf/services/polaris/registry"
	"github.com/athenaserving/asf/services/polaris/resource"
	"github.com/rs/zerolog"
)

// DefaultMaxBody bounds a request body (a pushed config file included).
const DefaultMaxBody = 4 << 20

// Errors of the admin API, with their codes.
var (
	// ErrUnauthorized is a missing, malformed, unknown or revoked token (HTTP 401).
	ErrUnauthorized = aserr.New(10401, "invalid or missing token")
	// ErrForbidden is a write with a viewer token (HTTP 403).
	ErrForbidden = aserr.New(10403, "token may not write")
	// ErrTooLarge is a body over the limit (HTTP 413).
	ErrTooLarge = aserr.New(10413, "request body too large")
)

// Options configure the API.
type Options struct {
	Registry *registry.Registry
	Center   *config.Center
	Catalog  *Catalog
	Tokens   *auth.Store
	// Resources, when set, serves the personalisation resource routes (resources.go).
	Resources *resource.Service
	Log       zerolog.Logger
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

type handler func(ctx context.Context, tok auth.Token, r *http.Request) (any, error)

// Handler returns the routes, every one authenticated.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	route := func(pattern string, write bool, h handler) {
		mux.HandleFunc(pattern, a.wrap(write, h))
	}
	const file = "/api/v1/config/files/{project}/{group}/{service}/{version}/{file}"
	route("GET /api/v1/whoami", false, a.whoami)
	route("GET /api/v1/tokens", true, a.listTokens)
	route("POST /api/v1/tokens", true, a.createToken)
	route("DELETE /api/v1/tokens/{id}", true, a.revokeToken)
	route("POST /api/v1/login-links", false, a.loginLink)
	route("GET /api/v1/services", false, a.services)
	route("GET /api/v1/services/{service}/instances", false, a.instances)
	route("PUT /api/v1/services/{service}/instances/{addr}/admin", true, a.setAdmin)
	route("GET /api/v1/consumers", false, a.consumers)
	route("GET /api/v1/config/files", false, a.files)
	route("GET "+file, false, a.getFile)
	route("PUT "+file, true, a.push)
	route("DELETE "+file, true, a.deleteFile)
	route("GET "+file+"/history", false, a.history)
	route("GET "+file+"/revisions/{rev}", false, a.revision)
	route("GET "+file+"/diff", false, a.diff)
	route("POST "+file+"/rollback", true, a.rollback)
	route("GET "+file+"/applied", false, a.applied)
	a.resourceRoutes(route)
	route("/api/", false, func(context.Context, auth.Token, *http.Request) (any, error) {
		return nil, fmt.Errorf("no such route or method: %w", aserr.ErrNotFound)
	})
	return mux
}

// wrap authenticates, checks the role, runs h and writes its result or error as JSON.
func (a *API) wrap(write bool, h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, ok := a.authenticate(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="polaris"`)
			WriteError(w, ErrUnauthorized)
			return
		}
		if write && !tok.Role.CanWrite() {
			WriteError(w, fmt.Errorf("%s token %s: %w", tok.Role, tok.ID, ErrForbidden))
			return
		}
		limit := a.o.MaxBody
		if n, ok := a.resourceBodyLimit(r); ok {
			limit = n
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		v, err := h(r.Context(), tok, r)
		if err != nil {
			if r.Method != http.MethodGet {
				a.o.Log.Info().Err(err).Str("method", r.Method).Str("path", r.URL.Path).Str("token", tok.ID).Msg("admin api refused")
			}
			WriteError(w, err)
			return
		}
		if r.Method != http.MethodGet {
			a.o.Log.Info().Str("method", r.Method).Str("path", r.URL.Path).Str("token", tok.ID).Msg("admin api")
		}
		WriteJSON(w, http.StatusOK, v)
	}
}

func (a *API) authenticate(r *http.Request) (auth.Token, bool) {
	h := r.Header.Get("Authorization")
	scheme, secret, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return auth.Token{}, false
	}
	return a.o.Tokens.Authenticate(strings.TrimSpace(secret))
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

func (a *API) whoami(_ context.Context, tok auth.Token, _ *http.Request) (any, error) {
	return map[string]any{"id": tok.ID, "name": tok.Name, "role": tok.Role}, nil
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

func (a *API) listTokens(context.Context, auth.Token, *http.Request) (any, error) {
	out := []TokenView{}
	for _, t := range a.o.Tokens.List() {
		out = append(out, viewOf(t))
	}
	return map[string]any{"tokens": out}, nil
}

func (a *API) createToken(_ context.Context, _ auth.Token, r *http.Request) (any, error) {
	var req struct {
		Name string    `json:"name"`
		Role auth.Role `json:"role"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	secret, t, err := a.o.Tokens.Create(req.Name, req.Role)
	if err != nil {
		return nil, err
	}
	v := viewOf(t)
	v.Token = secret
	return v, nil
}

func (a *API) revokeToken(_ context.Context, _ auth.Token, r *http.Request) (any, error) {
	id := r.PathValue("id")
	if err := a.o.Tokens.Revoke(id); err != nil {
		return nil, err
	}
	return map[string]any{"revoked": id}, nil
}

func (a *API) loginLink(_ context.Context, tok auth.Token, _ *http.Request) (any, error) {
	if a.o.LoginLink == nil {
		return nil, fmt.Errorf("console not mounted: %w", aserr.ErrNotFound)
	}
	u, err := a.o.LoginLink(tok)
	if err != nil {
		return nil, err
	}
	return map[string]any{"url": u}, nil
}

// ServiceSummary counts a service's instances.
type ServiceSummary struct {
	Service   string `json:"service"`
	Providers int    `json:"providers"`
	Consumers int    `json:"consumers"`
	// Routable counts providers that are enabled and live.
	Routable int   `json:"routable"`
	Idle     int64 `json:"idle"`
	Total    int64 `json:"total"`
}

// Services summarises states by service, sorted by name.
func Services(states []registry.State) []ServiceSummary {
	by := map[string]*ServiceSummary{}
	var names []string
	for _, st := range states {
		s := by[st.Instance.Service]
		if s == nil {
			s = &ServiceSummary{Service: st.Instance.Service}
			by[s.Service] = s
			names = append(names, s.Service)
		}
		if st.Instance.Kind == registry.KindConsumer {
			s.Consumers++
			continue
		}
		s.Providers++
		s.Idle += int64(st.Load.Idle)
		s.Total += int64(st.Load.Total)
		if st.Admin.Enabled && st.Load.Live > 0 {
			s.Routable++
		}
	}
	sort.Strings(names)
	out := make([]ServiceSummary, 0, len(names))
	for _, n := range names {
		out = append(out, *by[n])
	}
	return out
}

func (a *API) services(context.Context, auth.Token, *http.Request) (any, error) {
	return map[string]any{"services": Services(a.o.Registry.List(""))}, nil
}

// Instances returns service's states of kind ("" = all); a service with no instance is
// ErrNotFound.
func Instances(reg *registry.Registry, service, kind string) ([]registry.State, error) {
	all := reg.List(service)
	if len(all) == 0 {
		return nil, fmt.Errorf("unknown service %q: %w", service, aserr.ErrNotFound)
	}
	out := all[:0:0]
	for _, st := range all {
		if kind == "" || st.Instance.Kind == kind {
			out = append(out, st)
		}
	}
	return out, nil
}

func (a *API) instances(_ context.Context, _ auth.Token, r *http.Request) (any, error) {
	sts, err := Instances(a.o.Registry, r.PathValue("service"), r.URL.Query().Get("kind"))
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

// MaxWeight bounds an instance weight.
const MaxWeight = 10000

// SetAdmin applies req to the admin state of k, registered or not, and returns the new state.
func SetAdmin(ctx context.Context, reg *registry.Registry, k registry.Key, req AdminRequest) (registry.Admin, error) {
	cur := registry.DefaultAdmin()
	for _, st := range reg.List(k.Service) {
		if st.Instance.Addr == k.Addr {
			cur = st.Admin
		}
	}
	if req.Enabled != nil {
		cur.Enabled = *req.Enabled
	}
	if req.Weight != nil {
		if *req.Weight < 0 || *req.Weight > MaxWeight {
			return registry.Admin{}, fmt.Errorf("weight %d not in 0..%d: %w", *req.Weight, MaxWeight, aserr.ErrInvalidParam)
		}
		cur.Weight = *req.Weight
	}
	if err := reg.SetAdmin(ctx, k, cur); err != nil {
		return registry.Admin{}, err
	}
	return cur, nil
}

func (a *API) setAdmin(ctx context.Context, _ auth.Token, r *http.Request) (any, error) {
	var req AdminRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	k := registry.Key{Service: r.PathValue("service"), Addr: r.PathValue("addr")}
	adm, err := SetAdmin(ctx, a.o.Registry, k, req)
	if err != nil {
		return nil, err
	}
	return map[string]any{"key": k, "admin": adm}, nil
}

func (a *API) consumers(context.Context, auth.Token, *http.Request) (any, error) {
	out := []registry.State{}
	for _, st := range a.o.Registry.List("") {
		if st.Instance.Kind == registry.KindConsumer {
			out = append(out, st)
		}
	}
	return map[string]any{"consumers": out}, nil
}

func keyOf(r *http.Request) config.Key {
	return config.Key{Project: r.PathValue("project"), Group: r.PathValue("group"), Service: r.PathValue("service"),
		Version: r.PathValue("version"), File: r.PathValue("file")}
}

func (a *API) files(ctx context.Context, _ auth.Token, r *http.Request) (any, error) {
	q := r.URL.Query()
	fs, err := a.o.Catalog.Files(ctx, config.Key{Project: q.Get("project"), Group: q.Get("group"),
		Service: q.Get("service"), Version: q.Get("version")})
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

func (a *API) getFile(ctx context.Context, _ auth.Token, r *http.Request) (any, error) {
	caller := config.Caller{}
	if g := r.URL.Query().Get("gray"); g != "" {
		caller.Labels = map[string]string{config.GrayLabel: g}
	}
	f, err := a.o.Center.Get(ctx, keyOf(r), caller)
	if err != nil {
		return nil, err
	}
	return ViewOf(f), nil
}

// PushRequest is the body of a push.
type PushRequest struct {
	Content       *string `json:"content"`
	ContentBase64 *string `json:"content_base64"`
	Comment       string  `json:"comment"`
	GrayGroup     string  `json:"gray_group"`
}

func (a *API) push(ctx context.Context, _ auth.Token, r *http.Request) (any, error) {
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
	f, err := Push(ctx, a.o.Center, a.o.Catalog, keyOf(r), content, req.Comment, req.GrayGroup)
	if err != nil {
		return nil, err
	}
	return ViewOf(f), nil
}

// Push validates and pushes a revision and records it in the catalog.
func Push(ctx context.Context, center *config.Center, cat *Catalog, k config.Key, content []byte, comment, gray string) (config.File, error) {
	if len(comment) > 1024 || len(gray) > 128 || strings.ContainsAny(gray, " \t\r\n") {
		return config.File{}, fmt.Errorf("comment over 1024 bytes or gray group not a single word: %w", aserr.ErrInvalidParam)
	}
	f, err := center.Push(ctx, k, content, comment, gray)
	if err != nil {
		return config.File{}, err
	}
	cat.Add(k)
	return f, nil
}

func (a *API) deleteFile(ctx context.Context, _ auth.Token, r *http.Request) (any, error) {
	k := keyOf(r)
	if err := a.o.Center.Delete(ctx, k); err != nil {
		return nil, err
	}
	a.o.Catalog.Remove(k)
	return map[string]any{"deleted": k}, nil
}

func (a *API) history(ctx context.Context, _ auth.Token, r *http.Request) (any, error) {
	k := keyOf(r)
	revs, err := a.o.Center.History(ctx, k)
	if err != nil {
		return nil, err
	}
	sum, err := Summarize(ctx, a.o.Center, k)
	if err != nil {
		return nil, err
	}
	out := make([]FileView, 0, len(revs))
	for _, f := range revs {
		out = append(out, ViewOf(f))
	}
	return map[string]any{"key": k, "current": sum.Current, "gray": sum.Gray, "revisions": out}, nil
}

// Revision returns revision rev of k.
func Revision(ctx context.Context, center *config.Center, k config.Key, rev int64) (config.File, error) {
	revs, err := center.History(ctx, k)
	if err != nil {
		return config.File{}, err
	}
	for _, f := range revs {
		if f.Revision == rev {
			return f, nil
		}
	}
	return config.File{}, fmt.Errorf("%s revision %d: %w", k, rev, config.ErrNotFound)
}

func parseRev(s, name string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s %q is not a revision number: %w", name, s, aserr.ErrInvalidParam)
	}
	return n, nil
}

func (a *API) revision(ctx context.Context, _ auth.Token, r *http.Request) (any, error) {
	n, err := parseRev(r.PathValue("rev"), "rev")
	if err != nil {
		return nil, err
	}
	f, err := Revision(ctx, a.o.Center, keyOf(r), n)
	if err != nil {
		return nil, err
	}
	return ViewOf(f), nil
}

// DiffView is the diff between two revisions.
type DiffView struct {
	Key     config.Key  `json:"key"`
	From    int64       `json:"from"`
	To      int64       `json:"to"`
	Added   int         `json:"added"`
	Removed int         `json:"removed"`
	Lines   []diff.Line `json:"lines"`
	Unified string      `json:"unified"`
}

// Diff compares revisions from and to of k.
func Diff(ctx context.Context, center *config.Center, k config.Key, from, to int64) (DiffView, error) {
	a, err := Revision(ctx, center, k, from)
	if err != nil {
		return DiffView{}, err
	}
	b, err := Revision(ctx, center, k, to)
	if err != nil {
		return DiffView{}, err
	}
	lines := diff.Lines(string(a.Content), string(b.Content))
	ins, del := diff.Stats(lines)
	return DiffView{Key: k, From: from, To: to, Added: ins, Removed: del, Lines: lines, Unified: diff.Unified(lines)}, nil
}

func (a *API) diff(ctx context.Context, _ auth.Token, r *http.Request) (any, error) {
	q := r.URL.Query()
	from, err := parseRev(q.Get("from"), "from")
	if err != nil {
		return nil, err
	}
	to, err := parseRev(q.Get("to"), "to")
	if err != nil {
		return nil, err
	}
	return Diff(ctx, a.o.Center, keyOf(r), from, to)
}

func (a *API) rollback(ctx context.Context, _ auth.Token, r *http.Request) (any, error) {
	var req struct {
		Revision int64 `json:"revision"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if req.Revision <= 0 {
		return nil, fmt.Errorf("revision must be positive: %w", aserr.ErrInvalidParam)
	}
	f, err := a.o.Center.Rollback(ctx, keyOf(r), req.Revision)
	if err != nil {
		return nil, err
	}
	return ViewOf(f), nil
}

func (a *API) applied(ctx context.Context, _ auth.Token, r *http.Request) (any, error) {
	k := keyOf(r)
	if _, err := a.o.Center.History(ctx, k); err != nil {
		return nil, err
	}
	return map[string]any{"key": k, "reports": a.o.Center.Applied(k)}, nil
}
