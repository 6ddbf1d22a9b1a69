// Package asesign signs HTTP requests and WebSocket URLs with iFLYTEK's HMAC scheme
// (specs/ase-protocol.md §5), as an ASE or WebAPI 2.0 client does: the URL form
// (?authorization=&date=&host=, for WebSocket handshakes and HTTP) and the header form
// (Date, Digest, Authorization). webgate's verifier (services/webgate/auth) accepts both.
//
//	c := asesign.Credentials{APIKey: "key", APISecret: "secret"}
//	u, _ := asesign.SignURL("ws://host:8080/v1/private/iat", "GET", c, time.Now())
//	req, _ := http.NewRequest("POST", "http://host:8080/v1/private/echo", bytes.NewReader(body))
//	asesign.SignRequest(req, body, c, time.Now())
package asesign

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Credentials are an app's API key and secret.
type Credentials struct {
	APIKey, APISecret string
}

// Origin is the signed text: one line per signed header — host, date, the request line
// and, when digest is not empty, the digest — joined by newlines, without a trailing one.
func Origin(host, date, method, path, digest string) string {
	s := "host: " + host + "\ndate: " + date + "\n" + method + " " + path + " HTTP/1.1"
	if digest != "" {
		s += "\ndigest: " + digest
	}
	return s
}

// Signature is base64(HMAC-SHA256(secret, origin)).
func Signature(secret, origin string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(origin))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Digest is the Digest header of body: SHA-256=<base64 sha256(body)>.
func Digest(body []byte) string {
	sum := sha256.Sum256(body)
	return "SHA-256=" + base64.StdEncoding.EncodeToString(sum[:])
}

// Date is now in the RFC 1123 GMT form the scheme signs.
func Date(now time.Time) string { return now.UTC().Format(http.TimeFormat) }

// SignURL returns rawURL with the URL-form authorization added (authorization, date,
// host), signed for method (GET for a WebSocket handshake, POST for HTTP) at now. The
// host signed is the URL's host, with its port, as the client sends it in Host.
func SignURL(rawURL, method string, c Credentials, now time.Time) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("asesign: %w", err)
	}
	date := Date(now)
	sig := Signature(c.APISecret, Origin(u.Host, date, method, escapedPath(u), ""))
	authz := fmt.Sprintf(`api_key="%s", algorithm="hmac-sha256", headers="host date request-line", signature="%s"`, c.APIKey, sig)
	q := u.Query()
	q.Set("authorization", base64.StdEncoding.EncodeToString([]byte(authz)))
	q.Set("date", date)
	q.Set("host", u.Host)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// SignRequest signs req with the header form: Date, Digest of body and Authorization
// over host, date, request-line and digest. body must be what req sends.
func SignRequest(req *http.Request, body []byte, c Credentials, now time.Time) {
	date := Date(now)
	digest := Digest(body)
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	sig := Signature(c.APISecret, Origin(host, date, req.Method, escapedPath(req.URL), digest))
	req.Header.Set("Date", date)
	req.Header.Set("Digest", digest)
	req.Header.Set("Authorization", fmt.Sprintf(`hmac api_key="%s", algorithm="hmac-sha256", headers="host date request-line digest", signature="%s"`, c.APIKey, sig))
}

func escapedPath(u *url.URL) string {
	if p := u.EscapedPath(); p != "" {
		return p
	}
	return "/"
}
