// Package console is polaris's web console: server-rendered pages (html/template, inline
// CSS, no scripts) for the registry and the config center, behind a login with an API
// token. A login starts a server-side session (cookie HttpOnly, SameSite=Strict); every
// form carries the session's CSRF token. Every page and form calls the service layer's
// endpoints as the session's token, so the console allows exactly what the admin API
// and gRPC allow that token: viewer sessions read (secrets redacted) and change nothing.
//
//	eps := service.MakeEndpoints(svc, log, promReg)
//	c := console.New(console.Options{Service: svc, Endpoints: eps, Log: log})
//	mux.Handle("/", c.Handler())          // /ui/..., /login
//	url, _ := c.LoginLink(tok)            // one-time login URL, valid LinkTTL
package console

import (
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/services/polaris/adminapi"
	"github.com/athenaserving/asf/services/polaris/adminapi/auth"
	"github.com/athenaserving/asf/services/polaris/config"
	"github.com/athenaserving/asf/services/polaris/service"
	"github.com/rs/zerolog"
)

// Defaults.
const (
	// DefaultSessionTTL is how long a console session lasts.
	DefaultSessionTTL = 8 * time.Hour
	// LinkTTL is how long a one-time login link is valid.
	LinkTTL = 2 * time.Minute
	// CookieName is the session cookie.
	CookieName = "polaris_session"
	// maxSessions bounds live sessions and pending links each.
	maxSessions = 10000
)

//go:embed templates/*.html
var templateFS embed.FS

// Options configure the console.
type Options struct {
	// Service authenticates logins; Endpoints (service.MakeEndpoints) serve every page
	// and form.
	Service   *service.Service
	Endpoints service.Endpoints
	Log       zerolog.Logger
	// MaxBody bounds form bodies; 0 is adminapi.DefaultMaxBody.
	MaxBody int64
	// SessionTTL is a session's life; 0 is DefaultSessionTTL.
	SessionTTL time.Duration
	// Now is the clock; time.Now by default.
	Now func() time.Time
}

type session struct {
	tokenID string
	csrf    string
	expires time.Time
}

type link struct {
	tokenID string
	expires time.Time
}

// Console serves the web console.
type Console struct {
	o     Options
	pages map[string]*template.Template

	mu       sync.Mutex
	sessions map[string]*session
	links    map[string]link
}

// New returns the console; it panics only if its embedded templates do not parse.
func New(o Options) *Console {
	if o.MaxBody <= 0 {
		o.MaxBody = adminapi.DefaultMaxBody
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = DefaultSessionTTL
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	c := &Console{o: o, pages: map[string]*template.Template{}, sessions: map[string]*session{}, links: map[string]link{}}
	funcs := template.FuncMap{
		"keyq": keyQuery,
		// pathseg escapes a name for one path segment: a service named "a/b" links to
		// /ui/services/a%2Fb, which the {service} pattern matches and unescapes.
		"pathseg": url.PathEscape,
		"ago":     func(t time.Time) string { return ago(o.Now(), t) },
		"ts":      func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
		"op":      func(b any) string { return fmt.Sprintf("%c", b) },
		"str":     func(b []byte) string { return string(b) },
	}
	for _, p := range []string{"login", "services", "service", "config", "file", "diff", "tokens", "error"} {
		c.pages[p] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+p+".html"))
	}
	return c
}

func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// LoginLink returns a one-time login URL (path and query) for tok, valid for LinkTTL.
func (c *Console) LoginLink(tok auth.Token) (string, error) {
	code := randomString(32)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.purgeLocked()
	if len(c.links) >= maxSessions {
		return "", fmt.Errorf("too many pending login links: %w", aserr.ErrForbidden)
	}
	c.links[code] = link{tokenID: tok.ID, expires: c.o.Now().Add(LinkTTL)}
	return "/login?code=" + code, nil
}

func (c *Console) purgeLocked() {
	now := c.o.Now()
	for k, s := range c.sessions {
		if now.After(s.expires) {
			delete(c.sessions, k)
		}
	}
	for k, l := range c.links {
		if now.After(l.expires) {
			delete(c.links, k)
		}
	}
}

// startSession creates a session for tok and sets its cookie.
func (c *Console) startSession(w http.ResponseWriter, r *http.Request, tok auth.Token) {
	id := randomString(32)
	c.mu.Lock()
	c.purgeLocked()
	if len(c.sessions) >= maxSessions {
		// Drop the oldest-expiring session rather than refuse the login.
		var oldest string
		for k, s := range c.sessions {
			if oldest == "" || s.expires.Before(c.sessions[oldest].expires) {
				oldest = k
			}
		}
		delete(c.sessions, oldest)
	}
	c.sessions[id] = &session{tokenID: tok.ID, csrf: randomString(24), expires: c.o.Now().Add(c.o.SessionTTL)}
	c.mu.Unlock()
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil, MaxAge: int(c.o.SessionTTL.Seconds()),
	})
	c.o.Log.Info().Str("token", tok.ID).Str("role", string(tok.Role)).Msg("console login")
}

// current returns the session of r and its (still existing) token.
func (c *Console) current(r *http.Request) (*session, auth.Token, bool) {
	ck, err := r.Cookie(CookieName)
	if err != nil {
		return nil, auth.Token{}, false
	}
	c.mu.Lock()
	s, ok := c.sessions[ck.Value]
	if ok && c.o.Now().After(s.expires) {
		delete(c.sessions, ck.Value)
		ok = false
	}
	var cp session
	if ok {
		cp = *s
	}
	c.mu.Unlock()
	if !ok {
		return nil, auth.Token{}, false
	}
	tok, ok := c.o.Service.Tokens().Get(cp.tokenID) // a revoked token ends its sessions
	if !ok {
		return nil, auth.Token{}, false
	}
	return &cp, tok, true
}

func (c *Console) endSession(r *http.Request) {
	if ck, err := r.Cookie(CookieName); err == nil {
		c.mu.Lock()
		delete(c.sessions, ck.Value)
		c.mu.Unlock()
	}
}

// page is what every template gets.
type page struct {
	Title string
	Nav   string
	Role  auth.Role
	Token string
	CSRF  string
	Msg   string
	Err   string
	Data  any
}

func securityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}

func (c *Console) render(w http.ResponseWriter, status int, name string, p page) {
	securityHeaders(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	var sb strings.Builder
	if err := c.pages[name].Execute(&sb, p); err != nil {
		c.o.Log.Error().Err(err).Str("page", name).Msg("console render")
		http.Error(w, "render error", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(status)
	_, _ = w.Write([]byte(sb.String()))
}

// Handler returns the console's routes: /login, /logout and /ui/....
func (c *Console) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ui/", http.StatusSeeOther) })
	mux.HandleFunc("GET /login", c.loginPage)
	mux.HandleFunc("POST /login", c.loginPost)
	mux.HandleFunc("POST /logout", c.authed(true, false, c.logout))
	mux.HandleFunc("GET /ui/{$}", c.authed(false, false, c.servicesPage))
	mux.HandleFunc("GET /ui/services/{service}", c.authed(false, false, c.servicePage))
	mux.HandleFunc("POST /ui/services/{service}/admin", c.authed(true, true, c.setAdmin))
	mux.HandleFunc("GET /ui/config", c.authed(false, false, c.configPage))
	mux.HandleFunc("GET /ui/config/file", c.authed(false, false, c.filePage))
	mux.HandleFunc("GET /ui/config/diff", c.authed(false, false, c.diffPage))
	mux.HandleFunc("POST /ui/config/push", c.authed(true, true, c.push))
	mux.HandleFunc("POST /ui/config/rollback", c.authed(true, true, c.rollback))
	mux.HandleFunc("POST /ui/config/delete", c.authed(true, true, c.deleteFile))
	mux.HandleFunc("GET /ui/tokens", c.authed(false, false, c.tokensPage))
	mux.HandleFunc("POST /ui/tokens", c.authed(true, true, c.createToken))
	mux.HandleFunc("POST /ui/tokens/revoke", c.authed(true, true, c.revokeToken))
	return mux
}

type consoleHandler func(w http.ResponseWriter, r *http.Request, p page)

// authed requires a session; post handlers check the CSRF token. The handler runs as
// the session's token: the endpoints it calls decide what that token may do.
func (c *Console) authed(post, _ bool, h consoleHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, tok, ok := c.current(r)
		if !ok {
			if post {
				c.render(w, http.StatusUnauthorized, "error", page{Title: "Not logged in", Err: "Your session ended: log in again."})
				return
			}
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		p := page{Role: tok.Role, Token: tok.Name, CSRF: s.csrf, Msg: r.URL.Query().Get("msg")}
		if post {
			r.Body = http.MaxBytesReader(w, r.Body, c.o.MaxBody)
			if err := r.ParseForm(); err != nil {
				c.render(w, http.StatusBadRequest, "error", page{Title: "Bad request", Err: "The form could not be read (too large?)."})
				return
			}
			if subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(s.csrf)) != 1 {
				c.render(w, http.StatusForbidden, "error", page{Title: "Forbidden", Err: "The form's CSRF token is missing or stale: reload the page and try again."})
				return
			}
		}
		caller := service.Caller{Entrance: service.EntranceConsole, Token: tok, HasToken: true}
		h(w, r.WithContext(service.WithCaller(r.Context(), caller)), p)
	}
}

func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/ui/"
	}
	return next
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if code := q.Get("code"); code != "" {
		c.mu.Lock()
		l, ok := c.links[code]
		delete(c.links, code) // one use only
		c.mu.Unlock()
		tok, tokOK := c.o.Service.Tokens().Get(l.tokenID)
		if !ok || !tokOK || c.o.Now().After(l.expires) {
			c.render(w, http.StatusUnauthorized, "login", page{Title: "Log in", Err: "This login link is invalid, used or expired.", Data: "/ui/"})
			return
		}
		c.startSession(w, r, tok)
		http.Redirect(w, r, safeNext(q.Get("next")), http.StatusSeeOther)
		return
	}
	c.render(w, http.StatusOK, "login", page{Title: "Log in", Data: safeNext(q.Get("next"))})
}

func (c *Console) loginPost(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		c.render(w, http.StatusBadRequest, "login", page{Title: "Log in", Err: "The form could not be read.", Data: "/ui/"})
		return
	}
	next := safeNext(r.PostForm.Get("next"))
	tok, ok := c.o.Service.Tokens().Authenticate(strings.TrimSpace(r.PostForm.Get("token")))
	if !ok {
		c.o.Log.Info().Str("remote", r.RemoteAddr).Msg("console login refused")
		c.render(w, http.StatusUnauthorized, "login", page{Title: "Log in", Err: "Unknown or revoked token.", Data: next})
		return
	}
	c.startSession(w, r, tok)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, _ page) {
	c.endSession(r)
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// fail renders an error page for err with its status; the X-Asf-Code header carries
// its code, as the admin API's JSON does.
func (c *Console) fail(w http.ResponseWriter, p page, err error) {
	p.Title, p.Err = "Error", err.Error()
	w.Header().Set("X-Asf-Code", fmt.Sprint(aserr.CodeOf(err)))
	c.render(w, adminapi.StatusOf(err), "error", p)
}

func redirectMsg(w http.ResponseWriter, r *http.Request, to, msg string) {
	sep := "?"
	if strings.Contains(to, "?") {
		sep = "&"
	}
	http.Redirect(w, r, to+sep+"msg="+url.QueryEscape(msg), http.StatusSeeOther)
}

func keyQuery(k config.Key) template.URL {
	v := url.Values{}
	v.Set("project", k.Project)
	v.Set("group", k.Group)
	v.Set("service", k.Service)
	v.Set("version", k.Version)
	v.Set("file", k.File)
	return template.URL(v.Encode())
}

func keyFrom(v url.Values) config.Key {
	return config.Key{Project: v.Get("project"), Group: v.Get("group"), Service: v.Get("service"), Version: v.Get("version"), File: v.Get("file")}
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t).Round(100 * time.Millisecond)
	if d < 0 {
		d = 0
	}
	return d.String() + " ago"
}
