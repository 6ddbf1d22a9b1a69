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
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"hash"
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
	// ErrReplay refuses a signature already used (with the replay cache on); the body is
	// that of any signature that cannot be verified.
	ErrReplay = &Error{401, "HMAC signature cannot be verified", "replay"}
)

// MaxSkew is the clock skew the spec allows.
const MaxSkew = 300 * time.Second

// Algorithms are the accepted `algorithm` values with their hashes: hmac-sha256 (the one
// ASE documents) and hmac-sha1 and hmac-sha512, which ASF's gateway accepts too.
var algorithms = map[string]func() hash.Hash{
	"hmac-sha256": sha256.New,
	"hmac-sha1":   sha1.New,
	"hmac-sha512": sha512.New,
}

// Params are the fields of an authorization: `api_key="..", algorithm="..", headers="..",
// signature=".."`, optionally after the scheme word "hmac"; `username` is accepted for api_key.
// Values may be in double quotes, in single quotes (`api_key='..'`, as some clients send
// them) or bare up to the next comma.
type Params struct {
	APIKey string
	// Algorithm is one of hmac-sha256, hmac-sha1, hmac-sha512 (lower case).
	Algorithm string
	Headers   []string
	Signature string
}

// parseParams parses an authorization's fields. The URL form passes the base64-decoded
// authorization parameter, the header form the Authorization header. api_key (or
// username), algorithm and signature are required, a field given twice is refused, and a
// missing headers field means "host date request-line".
func parseParams(s string) (Params, error) {
	var p Params
	s = strings.TrimSpace(s)
	if len(s) > 5 && strings.EqualFold(s[:5], "hmac ") {
		s = strings.TrimSpace(s[5:])
	}
	headers := "host date request-line"
	var seen [4]bool
	set := func(i int, dst *string, val string) bool {
		if seen[i] {
			return false
		}
		seen[i], *dst = true, val
		return true
	}
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
		ok := true
		switch key {
		case "api_key", "username", "hmac username":
			ok = set(0, &p.APIKey, val)
		case "algorithm":
			ok = set(1, &p.Algorithm, strings.ToLower(val))
		case "headers":
			ok = set(2, &headers, val)
		case "signature":
			ok = set(3, &p.Signature, val)
		}
		if !ok {
			return Params{}, ErrUnparsable
		}
	}
	p.Headers = strings.Fields(strings.ToLower(headers))
	if p.APIKey == "" || p.Signature == "" || algorithms[p.Algorithm] == nil {
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
	// HasBody is true when a header-form request carries a body: digest must then be
	// signed. The body itself is checked afterwards with VerifyDigest, so it is read only
	// once the signature over the headers holds.
	HasBody bool
	// Header returns any other signed header (lower-case name); nil means none.
	Header func(name string) string
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

// VerifyDigest checks a header-form request's body against its signed Digest header
// (SHA-256=<base64>, as ASF): ErrDigest when they differ or digest is empty.
func VerifyDigest(digest string, body []byte) error {
	if digest == "" || !hmac.Equal([]byte(digest), []byte(BodyDigest(body))) {
		return ErrDigest
	}
	return nil
}

// Authenticator verifies signatures against the current app set. It is safe for
// concurrent use; SetApps swaps the set atomically.
type Authenticator struct {
	apps   atomic.Pointer[AppSet]
	skew   time.Duration
	replay *ReplayCache // nil: replays within the skew are not detected
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

// SetReplayCache makes the Authenticator refuse a second use of a signature while its date
// is within the skew (ErrReplay); nil switches the check off. Call it before serving.
func (a *Authenticator) SetReplayCache(c *ReplayCache) { a.replay = c }

// SetApps makes set current.
func (a *Authenticator) SetApps(set *AppSet) { a.apps.Store(set) }

// Apps returns the current app set.
func (a *Authenticator) Apps() *AppSet { return a.apps.Load() }

// Authenticate verifies req at time now over its headers and returns the signing app.
// Checks, in order: authorization present (401), date RFC 1123 in GMT and within the skew
// (403), authorization parsable with host, date (or x-date) and request-line signed and a
// known algorithm (401), api_key known and enabled (401), digest signed when a header-form
// request has a body (401 "does not match"), signature (401), and with a replay cache, the
// signature not used before (401). Signatures compare in constant time. The body is not
// read here: the caller checks it with VerifyDigest when req.HasBody or req.Digest is set.
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
	p, err := parseParams(text)
	if err != nil {
		return nil, ErrUnparsable
	}
	if !signs(p.Headers, "host") || !signs(p.Headers, "request-line") || !(signs(p.Headers, "date") || signs(p.Headers, "x-date")) {
		return nil, ErrUnparsable
	}
	app := a.apps.Load().ByKey(p.APIKey)
	if app == nil {
		return nil, ErrUnknownKey
	}
	if app.Disabled {
		return nil, ErrAppDisabled
	}
	if signs(p.Headers, "digest") {
		if req.Digest == "" {
			return nil, ErrDigest
		}
	} else if !req.URLForm && req.HasBody {
		// An unsigned body could be swapped by anyone replaying the headers.
		return nil, ErrDigest
	}
	want, err := base64.StdEncoding.DecodeString(p.Signature)
	if err != nil {
		return nil, ErrMismatch
	}
	var sum [sha512.Size]byte
	if !hmac.Equal(app.mac(p.Algorithm, SignatureOrigin(req, p.Headers), sum[:0]), want) {
		return nil, ErrMismatch
	}
	if a.replay != nil && !a.replay.Check(want, t.Add(a.skew), now) {
		return nil, ErrReplay
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

// parseDate reads an RFC 1123 date in GMT ("Wed, 10 Jul 2019 07:35:43 GMT", the day in one
// or two digits). "UTC" is read as GMT, since Go clients formatting time.RFC1123 in UTC (the
// published ASE demos among them) send it; every other zone is refused rather than read as
// offset 0.
func parseDate(s string) (time.Time, error) {
	if z := strings.LastIndexByte(s, ' '); z > 0 && s[z+1:] == "UTC" {
		s = s[:z] + " GMT"
	}
	// The zone is literal text in this layout: only "GMT" parses. "2" reads one or two digits.
	t, err := time.Parse("Mon, 2 Jan 2006 15:04:05 GMT", s)
	if err != nil {
		return time.Time{}, errors.New("date not RFC 1123 in GMT")
	}
	return t, nil
}
