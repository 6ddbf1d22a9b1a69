package targets

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
)

// NewWebAPIOnce is NewASEOnce on the capability's WebAPI 2.0 route (route, e.g. /v2/echo):
// the same text, sent as iFLYTEK's WebAPI 2.0 envelope ({"common","business","data"}),
// signed the same way, and checked the same way (top-level code 0, the text echoed, the
// X-Asf-Timing header).
func NewWebAPIOnce(cfg ASEOnceConfig, route string) *ASEOnce {
	t := NewASEOnce(cfg)
	t.body = BuildWebAPIOnce(cfg.AppID, pattern(max(cfg.PayloadSize, 1)))
	t.url = &signedURL{raw: strings.TrimRight(cfg.BaseURL, "/") + route, method: http.MethodPost, creds: cfg.Creds}
	return t
}

// BuildWebAPIOnce returns the JSON of a WebAPI 2.0 once request whose data.text holds
// base64 of text.
func BuildWebAPIOnce(appID string, text []byte) []byte {
	b, _ := json.Marshal(map[string]any{
		"common":   map[string]any{"app_id": appID},
		"business": map[string]any{},
		"data":     map[string]any{"status": 2, "text": base64.StdEncoding.EncodeToString(text)},
	})
	return b
}
