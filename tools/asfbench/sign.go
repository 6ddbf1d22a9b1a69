package asfbench

import (
	"time"

	"github.com/athenaserving/asf/sdk/go/ase"
)

// Credentials are an app's API key and secret for ASE HMAC signing.
type Credentials struct {
	APIKey, APISecret string
}

// SignatureOrigin builds the string that is signed (specs/ase-protocol.md §5): host, date and
// request line, joined by newlines, without a trailing newline.
func SignatureOrigin(host, date, method, path string) string {
	return ase.SignatureOrigin(host, date, method, path, "")
}

// SignURL returns rawURL with the ASE URL-parameter authorization added (`authorization`,
// `date`, `host`), signed for method (GET for WebSocket, POST for HTTP) at time now. The host
// signed is the URL's host (with port, as a client sends it in the Host header).
func SignURL(rawURL, method string, c Credentials, now time.Time) (string, error) {
	return ase.SignURL(rawURL, method, ase.Credentials{APIKey: c.APIKey, APISecret: c.APISecret}, now)
}
