package forward

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/capability/mapping"
	"github.com/athenaserving/asf/sdk/go/ase"
	"gopkg.in/yaml.v3"
)

// Auth types (Spec auth.type).
const (
	AuthNone   = "none"
	AuthBearer = "bearer"
	AuthHMAC   = "hmac"
)

// Defaults of a Spec.
const (
	DefaultTimeout          = 10 * time.Second
	DefaultRetries          = 2
	DefaultMaxResponseBytes = 16 << 20
)

// Roots of the documents the mapping rules read and write: the engine side is an ASE
// document, the upstream side the upstream's JSON body, URL query and HTTP headers.
var (
	engineRoots      = []string{"header", "parameter", "payload"}
	upstreamReqRoots = []string{"body", "query", "headers"}
	upstreamResRoots = []string{"body", "headers"}
)

// wireSpec is the forward spec file as written (YAML or JSON).
type wireSpec struct {
	Upstreams        []string          `yaml:"upstreams"`
	Method           string            `yaml:"method"`
	Timeout          time.Duration     `yaml:"timeout"`
	Retries          *int              `yaml:"retries"`
	Headers          map[string]string `yaml:"headers"`
	Auth             wireAuth          `yaml:"auth"`
	Text             string            `yaml:"text"`
	MaxResponseBytes int64             `yaml:"max-response-bytes"`
	CA               string            `yaml:"ca"`
	Request          wireMap           `yaml:"request"`
	Response         wireMap           `yaml:"response"`
	Session          struct {
		Upstreams []string `yaml:"upstreams"`
		Request   wireMap  `yaml:"request"`
		Response  wireMap  `yaml:"response"`
	} `yaml:"session"`
}

type wireAuth struct {
	Type      string `yaml:"type"`
	Token     string `yaml:"token"`
	APIKey    string `yaml:"api_key"`
	APISecret string `yaml:"api_secret"`
	AppID     string `yaml:"app_id"`
	Form      string `yaml:"form"`
}

type wireMap struct {
	Mapping any `yaml:"mapping"`
}

// Spec is a parsed, checked forward spec: where the upstream API is, how to call it and
// how to map requests and answers. It is immutable.
type Spec struct {
	// Upstreams are the HTTP(S) URLs of once requests, tried in turn from a rotating start.
	Upstreams []string
	// Method is POST (JSON body) or GET (no body: the query rules carry the request).
	Method string
	// Timeout bounds a once call (every attempt included), a session's handshake, each of
	// its writes and the wait for its last result after its last frame.
	Timeout time.Duration
	// Retries is how many more attempts a call gets on a connect error or a 5xx answer.
	Retries int
	// Headers are added to every upstream request and handshake.
	Headers map[string]string
	Auth    Auth
	// PlainText: text data fields are plain strings in the mapped documents (else base64).
	PlainText bool
	// MaxResponseBytes bounds an upstream answer (HTTP body or WebSocket message).
	MaxResponseBytes int64
	// Roots is the CA pool of https/wss upstreams when the spec names a ca file (else the
	// system's).
	Roots *x509.CertPool
	// Request and Response map once requests; nil is the identity on ASE documents.
	Request, Response *mapping.Rules
	// SessionUpstreams are the ws(s) URLs of sessions.
	SessionUpstreams []string
	// SessionRequest and SessionResponse map session frames and messages (default: the
	// once mappings).
	SessionRequest, SessionResponse *mapping.Rules
}

// Auth says how upstream calls authenticate.
type Auth struct {
	Type  string
	Token string
	// HMAC signs in iFLYTEK's scheme with these credentials; AppID replaces header.app_id
	// in an unmapped (ASE) request body.
	HMAC  ase.Credentials
	AppID string
	// URLForm signs HTTP requests in the URL form instead of the header form (WebSocket
	// handshakes always use the URL form).
	URLForm bool
}

// ReadSpec reads and parses the spec file at path (ParseSpec).
func ReadSpec(path string, getenv func(string) string) (*Spec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("forward spec: %v: %w", err, aserr.ErrInvalidParam)
	}
	s, err := ParseSpec(b, getenv)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// ParseSpec parses a forward spec (YAML, or JSON) and checks it: upstream URLs, method,
// durations, auth, and every mapping rule (a bad rule is refused with its place, text
// and reason). A value written "env:NAME" (token, api_key, api_secret, a header) is read
// from the environment through getenv. Errors carry 10107.
func ParseSpec(data []byte, getenv func(string) string) (*Spec, error) {
	var w wireSpec
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&w); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, invalid("forward spec: empty")
		}
		return nil, invalid("forward spec: %v", err)
	}
	s := &Spec{
		Method: strings.ToUpper(strings.TrimSpace(w.Method)), Timeout: w.Timeout, Retries: DefaultRetries,
		MaxResponseBytes: w.MaxResponseBytes,
	}
	if s.Method == "" {
		s.Method = "POST"
	}
	if s.Method != "POST" && s.Method != "GET" && s.Method != "PUT" {
		return nil, invalid("forward spec: method %q: want POST, PUT or GET", w.Method)
	}
	if s.Timeout == 0 {
		s.Timeout = DefaultTimeout
	}
	if s.Timeout < 0 {
		return nil, invalid("forward spec: timeout %s: must be positive", w.Timeout)
	}
	if w.Retries != nil {
		if *w.Retries < 0 || *w.Retries > 10 {
			return nil, invalid("forward spec: retries %d: want 0 to 10", *w.Retries)
		}
		s.Retries = *w.Retries
	}
	if s.MaxResponseBytes == 0 {
		s.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if s.MaxResponseBytes < 0 {
		return nil, invalid("forward spec: max-response-bytes %d: must be positive", w.MaxResponseBytes)
	}
	switch w.Text {
	case "", "base64":
	case "plain":
		s.PlainText = true
	default:
		return nil, invalid("forward spec: text %q: want base64 or plain", w.Text)
	}
	var err error
	if s.Upstreams, err = checkURLs("upstreams", w.Upstreams, "http", "https"); err != nil {
		return nil, err
	}
	if s.SessionUpstreams, err = checkURLs("session.upstreams", w.Session.Upstreams, "ws", "wss"); err != nil {
		return nil, err
	}
	if len(s.Upstreams) == 0 && len(s.SessionUpstreams) == 0 {
		return nil, invalid("forward spec: upstreams or session.upstreams: at least one URL is required")
	}
	env := func(v string) (string, error) {
		name, ok := strings.CutPrefix(v, "env:")
		if !ok {
			return v, nil
		}
		if getenv == nil || getenv(name) == "" {
			return "", invalid("forward spec: environment variable %s is empty", name)
		}
		return getenv(name), nil
	}
	s.Headers = make(map[string]string, len(w.Headers))
	for k, v := range w.Headers {
		if k == "" || strings.ContainsAny(k, " :\r\n") || strings.ContainsAny(v, "\r\n") {
			return nil, invalid("forward spec: header %q: not a valid header", k)
		}
		if s.Headers[k], err = env(v); err != nil {
			return nil, err
		}
	}
	if s.Auth, err = parseAuth(w.Auth, env); err != nil {
		return nil, err
	}
	if w.CA != "" {
		pem, err := os.ReadFile(w.CA)
		if err != nil {
			return nil, invalid("forward spec: ca: %v", err)
		}
		s.Roots = x509.NewCertPool()
		if !s.Roots.AppendCertsFromPEM(pem) {
			return nil, invalid("forward spec: ca %s: no PEM certificate", w.CA)
		}
	}
	if s.Request, err = compile(w.Request.Mapping, "request.mapping", engineRoots, upstreamReqRoots); err != nil {
		return nil, err
	}
	if s.Response, err = compile(w.Response.Mapping, "response.mapping", upstreamResRoots, []string{"header", "payload"}); err != nil {
		return nil, err
	}
	if s.SessionRequest, err = compile(w.Session.Request.Mapping, "session.request.mapping", engineRoots, upstreamReqRoots); err != nil {
		return nil, err
	}
	if s.SessionResponse, err = compile(w.Session.Response.Mapping, "session.response.mapping", upstreamResRoots, []string{"header", "payload"}); err != nil {
		return nil, err
	}
	if s.SessionRequest == nil {
		s.SessionRequest = s.Request
	}
	if s.SessionResponse == nil {
		s.SessionResponse = s.Response
	}
	return s, nil
}

func parseAuth(w wireAuth, env func(string) (string, error)) (Auth, error) {
	a := Auth{Type: strings.ToLower(w.Type)}
	var err error
	switch a.Type {
	case "", AuthNone:
		a.Type = AuthNone
		if w.Token != "" || w.APIKey != "" || w.APISecret != "" {
			return a, invalid("forward spec: auth: credentials given without auth.type (bearer or hmac)")
		}
	case AuthBearer:
		if a.Token, err = env(w.Token); err != nil {
			return a, err
		}
		if a.Token == "" {
			return a, invalid("forward spec: auth.type bearer needs auth.token")
		}
	case AuthHMAC:
		if a.HMAC.APIKey, err = env(w.APIKey); err != nil {
			return a, err
		}
		if a.HMAC.APISecret, err = env(w.APISecret); err != nil {
			return a, err
		}
		if a.HMAC.APIKey == "" || a.HMAC.APISecret == "" {
			return a, invalid("forward spec: auth.type hmac needs auth.api_key and auth.api_secret")
		}
		a.AppID = w.AppID
		switch w.Form {
		case "", "header":
		case "url":
			a.URLForm = true
		default:
			return a, invalid("forward spec: auth.form %q: want header or url", w.Form)
		}
	default:
		return a, invalid("forward spec: auth.type %q: want none, bearer or hmac", w.Type)
	}
	return a, nil
}

func checkURLs(key string, urls []string, schemes ...string) ([]string, error) {
	out := make([]string, 0, len(urls))
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil {
			return nil, invalid("forward spec: %s: %v", key, err)
		}
		if u.Scheme != schemes[0] && u.Scheme != schemes[1] {
			return nil, invalid("forward spec: %s: %q: want a %s:// or %s:// URL", key, raw, schemes[0], schemes[1])
		}
		if u.Host == "" {
			return nil, invalid("forward spec: %s: %q: no host", key, raw)
		}
		out = append(out, raw)
	}
	return out, nil
}

// compile compiles a mapping as written in YAML (nil: no mapping).
func compile(m any, where string, src, dst []string) (*mapping.Rules, error) {
	if m == nil {
		return nil, nil
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, invalid("forward spec: %s: %v", where, err)
	}
	r, err := mapping.CompileRules(raw, where, src, dst)
	var me *mapping.Error
	if errors.As(err, &me) {
		return nil, invalid("forward spec: %s %s: %s", me.Where, me.Rule, me.Reason)
	}
	if err != nil {
		return nil, invalid("forward spec: %v", err)
	}
	return r, nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), aserr.ErrInvalidParam)
}
