package asfbench

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Credentials are an app's API key and secret for ASE HMAC signing.
type Credentials struct {
	APIKey, APISecret string
}

// SignatureOrigin builds the string that is signed (specs/ase-protocol.md §5): host, date and
// request line, joined by newlines, without a trailing newline.
func SignatureOrigin(host, date, method, path string) string {
	return "host: " + host + "\ndate: " + date + "\n" + method + " " + path + " HTTP/1.1"
}

// SignURL returns rawURL with the ASE URL-parameter authorization added (`authorization`,
// `date`, `host`), signed for method (GET for WebSocket, POST for HTTP) at time now. The host
// signed is the URL's host (with port, as a client sends it in the Host header).
func SignURL(rawURL, method string, c Credentials, now time.Time) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	date := now.UTC().Format(http.TimeFormat)
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	mac := hmac.New(sha256.New, []byte(c.APISecret))
	mac.Write([]byte(SignatureOrigin(u.Host, date, method, path)))
	sig := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	authOrigin := fmt.Sprintf(`api_key="%s", algorithm="hmac-sha256", headers="host date request-line", signature="%s"`, c.APIKey, sig)
	q := u.Query()
	q.Set("authorization", base64.StdEncoding.EncodeToString([]byte(authOrigin)))
	q.Set("date", date)
	q.Set("host", u.Host)
	u.RawQuery = q.Encode()
	return u.String(), nil
}
