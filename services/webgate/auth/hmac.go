// Package auth is webgate's access control: ASE HMAC-SHA256 signatures
// (specs/ase-protocol.md §5), the app credentials set (apps.json) and per-app limits
// (QPS token buckets, concurrent sessions). It imports no transport: the HTTP middleware
// in package transport fills a Request and turns an *Error into a response.
//
//	apps, _ := auth.ParseApps(appsJSON)
//	a := auth.NewAuthenticator(300 * time.Second)
//	a.SetApps(apps)
//	app, err := a.Authenticate(auth.Request{Method: "GET", Path: "/v1/private/ist",
//	    Host: host, Date: date, Authorization: authz}, time.Now())
//	var e *auth.Error
//	if errors.As(err, &e) { /* e.Status, e.Message: the exact body text */ }
package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"sync/atomic"
	"time"
)

// Error is an authentication or limit failure with its HTTP status and the exact
// {"message": ...} text of spec §5; Reason is the metric label.
type Error struct {
	Status  int
	Message string
	Reason  string
}

func (e *Error) Error() string { return e.Message }

// Failures (specs/ase-protocol.md §5). Statuses are plain numbers so the package needs no net/http.
var (
	ErrMissing     = &Error{401, "Unauthorized", "missing"}
	ErrUnparsable  = &Error{401, "HMAC signature cannot be verified", "unparsable"}
	ErrUnknownKey  = &Error{401, "HMAC signature cannot be verified", "unknown_key"}
	ErrMismatch    = &Error{401, "HMAC signature does not match", "mismatch"}
	ErrDigest      = &Error{401, "HMAC signature does not match", "digest"}
	ErrDate        = &Error{403, "HMAC signature cannot be verified, a valid date or x-date header is required for HMAC Authentication", "date"}
	ErrIP          = &Error{403, "Your IP address is not allowed", "ip"}
	ErrConnections = &Error{403, "max connections exceeded", "connections"}
	ErrCapability  = &Error{403, "You cannot consume this service", "capability"}
	ErrAppDisabled = &Error{401, "HMAC signature cannot be verified", "disabled"}
	ErrQPS         = &Error{429, "qps limit exceeded", "qps"}
)

// MaxSkew is the clock skew the spec allows.
const MaxSkew = 300 * time.Second

// Params are the fields of an authorization: `api_key="..", algorithm="..", headers="..",
// signature=".."`, optionally after the scheme word "hmac"; `username` is accepted for api_key.
// Values may be in double quotes, in single quotes (`api_key='..'`, as some clients send
// them) or bare up to the next comma.
type Params struct {
	APIKey    string
	Algorithm string
	Headers   []string
	Signature string
}

// ParseParams parses an authorization's fields. The URL form passes the base64-decoded
// authorization parameter, the header form the Authorization header.
func ParseParams(s string) (Params, error) {
	var p Params
	s = strings.TrimSpace(s)
	if len(s) > 5 && strings.EqualFold(s[:5], "hmac ") {
		s = strings.TrimSpace(s[5:])
	}
	headers := "host date request-line"
	for s != "" {
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return Params{}, ErrUnparsable
		}
		key := strings.ToLower(strings.TrimSpace(s[:eq]))
		s = strings.TrimLeft(s[eq+1:], " ")
		var val string
		if s != "" && (s[0] == '"' || s[0] == '\'') {
			// Real clients quote with either character; a value ends at the same one.
			end := strings.IndexByte(s[1:], s[0])
			if end < 0 {
				return Params{}, ErrUnparsable
			}
			val, s = s[1:1+end], s[2+end:]
		} else {
			end := strings.IndexByte(s, ',')
			if end < 0 {
				end = len(s)
			}
			val, s = strings.TrimSpace(s[:end]), s[end:]
		}
		s = strings.TrimSpace(s)
		if s != "" {
			if s[0] != ',' {
				return Params{}, ErrUnparsable
			}
			s = strings.TrimSpace(s[1:])
		}
		switch key {
		case "api_key", "username", "hmac username":
			p.APIKey = val
		case "algorithm":
			p.Algorithm = val
		case "headers":
			headers = val
		case "signature":
			p.Signature = val
		}
	}
	p.Headers = strings.Fields(strings.ToLower(headers))
	if p.APIKey == "" || p.Signature == "" {
		return Params{}, ErrUnparsable
	}
	if p.Algorithm != "" && !strings.EqualFold(p.Algorithm, "hmac-sha256") {
		return Params{}, ErrUnparsable
	}
	return p, nil
}

// Request is what a signature covers.
type Request struct {
	// Method and Path (escaped, without query) form the request line.
	Method, Path string
	// Host and Date are the signed host and date values (URL parameters or headers).
	Host, Date string
	// Digest is the Digest header ("SHA-256=<base64>"), header form only.
	Digest string
	// Authorization is the authorization text: base64 for the URL form, the Authorization
	// header (`hmac api_key=...`) for the header form.
	Authorization string
	// URLForm is true when Authorization came from the URL parameters (base64-encoded).
	URLForm bool
	// Header returns any other signed header (lower-case name); nil means none.
	Header func(name string) string
	// Body is the request body, checked against Digest when digest is signed.
	Body []byte
}

// SignatureOrigin builds the signed text for headers (spec §5): one `name: value` line per
// header, the request line as `METHOD path HTTP/1.1`, joined by "\n".
func SignatureOrigin(req Request, headers []string) string {
	var b strings.Builder
	for i, h := range headers {
		if i > 0 {
			b.WriteByte('\n')
		}
		switch h {
		case "request-line":
			b.WriteString(req.Method)
			b.WriteByte(' ')
			b.WriteString(req.Path)
			b.WriteString(" HTTP/1.1")
			continue
		case "host":
			b.WriteString("host: ")
			b.WriteString(req.Host)
			continue
		case "date", "x-date":
			b.WriteString(h)
			b.WriteString(": ")
			b.WriteString(req.Date)
			continue
		case "digest":
			b.WriteString("digest: ")
			b.WriteString(req.Digest)
			continue
		}
		b.WriteString(h)
		b.WriteString(": ")
		if req.Header != nil {
			b.WriteString(req.Header(h))
		}
	}
	return b.String()
}

// Sign returns base64(HMAC-SHA256(secret, origin)).
func Sign(secret, origin string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(origin))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// BodyDigest returns the Digest header value of body: "SHA-256=<base64 sha256>".
func BodyDigest(body []byte) string {
	sum := sha256.Sum256(body)
	return "SHA-256=" + base64.StdEncoding.EncodeToString(sum[:])
}

// Authenticator verifies signatures against the current app set. It is safe for
// concurrent use; SetApps swaps the set atomically.
type Authenticator struct {
	apps atomic.Pointer[AppSet]
	skew time.Duration
}

// NewAuthenticator returns an Authenticator with clock skew allowance skew (≤ 0: MaxSkew)
// and an empty app set.
func NewAuthenticator(skew time.Duration) *Authenticator {
	if skew <= 0 {
		skew = MaxSkew
	}
	a := &Authenticator{skew: skew}
	a.apps.Store(&AppSet{})
	return a
}

// SetApps makes set current.
func (a *Authenticator) SetApps(set *AppSet) { a.apps.Store(set) }

// Apps returns the current app set.
func (a *Authenticator) Apps() *AppSet { return a.apps.Load() }

// Authenticate verifies req at time now and returns the signing app. Checks, in order:
// authorization present (401), date within the skew (403), authorization parsable (401),
// api_key known (401), digest (401), signature (401). Signatures compare in constant time.
func (a *Authenticator) Authenticate(req Request, now time.Time) (*App, error) {
	if req.Authorization == "" {
		return nil, ErrMissing
	}
	if req.Date == "" {
		return nil, ErrDate
	}
	t, err := parseDate(req.Date)
	if err != nil {
		return nil, ErrDate
	}
	if d := now.Sub(t); d > a.skew || d < -a.skew {
		return nil, ErrDate
	}
	text := req.Authorization
	if req.URLForm {
		dec, err := base64.StdEncoding.DecodeString(text)
		if err != nil {
			if dec, err = base64.URLEncoding.DecodeString(text); err != nil {
				return nil, ErrUnparsable
			}
		}
		text = string(dec)
	}
	p, err := ParseParams(text)
	if err != nil {
		return nil, ErrUnparsable
	}
	if !signs(p.Headers, "request-line") || !(signs(p.Headers, "date") || signs(p.Headers, "x-date")) {
		return nil, ErrUnparsable
	}
	app := a.apps.Load().ByKey(p.APIKey)
	if app == nil {
		return nil, ErrUnknownKey
	}
	if app.Disabled {
		return nil, ErrAppDisabled
	}
	if signs(p.Headers, "digest") && (req.Digest == "" || !hmac.Equal([]byte(req.Digest), []byte(BodyDigest(req.Body)))) {
		return nil, ErrDigest
	}
	want, err := base64.StdEncoding.DecodeString(p.Signature)
	if err != nil || len(want) != sha256.Size {
		return nil, ErrMismatch
	}
	var sum [sha256.Size]byte
	if !hmac.Equal(app.mac(SignatureOrigin(req, p.Headers), sum[:0]), want) {
		return nil, ErrMismatch
	}
	return app, nil
}

func signs(headers []string, h string) bool {
	for _, x := range headers {
		if x == h {
			return true
		}
	}
	return false
}

func parseDate(s string) (time.Time, error) {
	for _, layout := range [...]string{time.RFC1123, time.RFC1123Z, "Mon, 2 Jan 2006 15:04:05 MST", time.RFC850, time.ANSIC} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errors.New("bad date")
}
