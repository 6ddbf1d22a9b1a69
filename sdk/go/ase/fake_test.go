package ase_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/athenaserving/asf/sdk/go/ase"
	"github.com/gorilla/websocket"
)

// edge is a stand-in for webgate in this package's tests: it checks the URL-form or
// header-form signature with the SDK's own signer (the real edge is exercised by asectl's
// suite tests), echoes every payload item upper-cased as output "result", answers 10110 to
// the first Busy once requests of capability "busy", and serves /v2/echo in the WebAPI
// 2.0 envelope.
type edge struct {
	creds ase.Credentials
	busy  atomic.Int32
}

func startEdge(t testing.TB, creds ase.Credentials) (*httptest.Server, *edge) {
	srv, e := newEdge(creds)
	t.Cleanup(srv.Close)
	return srv, e
}

func newEdge(creds ase.Credentials) (*httptest.Server, *edge) {
	e := &edge{creds: creds}
	return httptest.NewServer(e), e
}

func (e *edge) authorized(r *http.Request, body []byte) bool {
	q := r.URL.Query()
	if a := q.Get("authorization"); a != "" {
		dec, _ := base64.StdEncoding.DecodeString(a)
		want := ase.Signature(e.creds.APISecret, ase.SignatureOrigin(q.Get("host"), q.Get("date"), r.Method, r.URL.EscapedPath(), ""))
		return strings.Contains(string(dec), `signature="`+want+`"`)
	}
	if r.Header.Get("Digest") != ase.Digest(body) {
		return false
	}
	want := ase.Signature(e.creds.APISecret, ase.SignatureOrigin(r.Host, r.Header.Get("Date"), r.Method, r.URL.EscapedPath(),
		r.Header.Get("Digest"), "host", "date", "request-line", "digest"))
	return strings.Contains(r.Header.Get("Authorization"), `signature="`+want+`"`)
}

type frame struct {
	Header  map[string]any            `json:"header"`
	Common  map[string]any            `json:"common"`
	Data    map[string]any            `json:"data"`
	Payload map[string]map[string]any `json:"payload"`
}

func (e *edge) result(f frame, status int) map[string]any {
	out := map[string]any{}
	for _, it := range f.Payload {
		for _, typ := range ase.DataTypes {
			if s, ok := it[typ].(string); ok {
				b, _ := base64.StdEncoding.DecodeString(s)
				out["result"] = map[string]any{"encoding": "utf8", "status": status, "text": base64.StdEncoding.EncodeToString([]byte(strings.ToUpper(string(b))))}
			}
		}
	}
	h := map[string]any{"code": 0, "message": "success", "sid": "ase0001@test", "status": status}
	if cid, ok := f.Header["cid"]; ok {
		h["cid"] = cid
	}
	return map[string]any{"header": h, "payload": out}
}

func (e *edge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body []byte
	if r.Method == http.MethodPost {
		body, _ = io.ReadAll(r.Body)
	}
	if !e.authorized(r, body) {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"message":"HMAC signature does not match"}`))
		return
	}
	webapi := strings.HasPrefix(r.URL.Path, "/v2/")
	if r.Method == http.MethodPost {
		var f frame
		_ = json.Unmarshal(body, &f)
		w.Header().Set("Content-Type", "application/json")
		switch {
		case webapi:
			d, _ := f.Data["text"].(string)
			b, _ := base64.StdEncoding.DecodeString(d)
			_ = json.NewEncoder(w).Encode(map[string]any{"code": 0, "message": "success", "sid": "ase0002@test",
				"data": map[string]any{"result": strings.ToUpper(string(b)), "status": 3}})
		case strings.HasSuffix(r.URL.Path, "/busy") && e.busy.Add(-1) >= 0:
			w.WriteHeader(http.StatusBadGateway)
			_, _ = w.Write([]byte(`{"header":{"code":10110,"message":"licence not enough","sid":"ase0003@test"}}`))
		default:
			_ = json.NewEncoder(w).Encode(e.result(f, ase.StatusOnce))
		}
		return
	}
	c, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer c.Close()
	for {
		var f frame
		if err := c.ReadJSON(&f); err != nil {
			return
		}
		st, _ := f.Header["status"].(float64)
		if err := c.WriteJSON(e.result(f, int(st))); err != nil {
			return
		}
		if int(st) == ase.StatusEnd && r.URL.Query().Get("stream_mode") != "multiplex" {
			_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "session ended"))
			return
		}
	}
}
