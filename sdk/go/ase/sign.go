package ase

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Credentials are an app's id and its HMAC key pair.
type Credentials struct {
	AppID, APIKey, APISecret string
}

// Algorithm is the signature algorithm the client uses.
const Algorithm = "hmac-sha256"

// SignatureOrigin builds the text that is signed: one line per entry of headers ("host",
// "date", "request-line", "digest"), joined by "\n" without a trailing newline. The
// request line is `METHOD path HTTP/1.1`, path escaped and without query.
func SignatureOrigin(host, date, method, path, digest string, headers ...string) string {
	if len(headers) == 0 {
		headers = []string{"host", "date", "request-line"}
	}
	lines := make([]string, 0, len(headers))
	for _, h := range headers {
		switch h {
		case "host":
			lines = append(lines, "host: "+host)
		case "date":
			lines = append(lines, "date: "+date)
		case "request-line":
			lines = append(lines, method+" "+path+" HTTP/1.1")
		case "digest":
			lines = append(lines, "digest: "+digest)
		}
	}
	return strings.Join(lines, "\n")
}

// Signature returns base64(HMAC-SHA256(secret, origin)).
func Signature(secret, origin string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(origin))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Digest returns the Digest header value of body: "SHA-256=<base64 sha256(body)>".
func Digest(body []byte) string {
	sum := sha256.Sum256(body)
	return "SHA-256=" + base64.StdEncoding.EncodeToString(sum[:])
}

// Date formats t as the signed date: RFC 1123 in GMT.
func Date(t time.Time) string { return t.UTC().Format(http.TimeFormat) }

// signedPath is the escaped path of u as the request line carries it.
func signedPath(u *url.URL) string {
	if p := u.EscapedPath(); p != "" {
		return p
	}
	return "/"
}

// SignURL returns rawURL with the URL-form authorization added (`authorization`, `date`,
// `host` query parameters), signed for method — GET for a WebSocket upgrade, POST for a
// once request — at time now. The host signed is the URL's host (with its port, as the
// client sends it in the Host header). Existing query parameters are kept.
func SignURL(rawURL, method string, c Credentials, now time.Time) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("sign %q: %w", rawURL, err)
	}
	if u.Host == "" {
		return "", fmt.Errorf("sign %q: the URL has no host", rawURL)
	}
	date := Date(now)
	sig := Signature(c.APISecret, SignatureOrigin(u.Host, date, method, signedPath(u), ""))
	origin := fmt.Sprintf(`api_key="%s", algorithm="%s", headers="host date request-line", signature="%s"`, c.APIKey, Algorithm, sig)
	q := u.Query()
	q.Set("authorization", base64.StdEncoding.EncodeToString([]byte(origin)))
	q.Set("date", date)
	q.Set("host", u.Host)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// SignRequest signs req in the header form at time now: it sets the Date and Digest
// headers (the digest of body, which must be the bytes req sends) and an Authorization
// header `hmac api_key="..", algorithm="hmac-sha256", headers="host date request-line
// digest", signature=".."`. The host signed is req.Host, else the URL's host.
func SignRequest(req *http.Request, body []byte, c Credentials, now time.Time) {
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	date, digest := Date(now), Digest(body)
	hs := []string{"host", "date", "request-line", "digest"}
	sig := Signature(c.APISecret, SignatureOrigin(host, date, req.Method, signedPath(req.URL), digest, hs...))
	req.Header.Set("Date", date)
	req.Header.Set("Digest", digest)
	req.Header.Set("Authorization", fmt.Sprintf(`hmac api_key="%s", algorithm="%s", headers="%s", signature="%s"`,
		c.APIKey, Algorithm, strings.Join(hs, " "), sig))
}
