// Package targets holds the protocol clients the bench harness drives: ASE once requests over
// HTTP, ASE WebSocket sessions, OIP v2 infer, and raw gRPC unary calls to any method. Each is an
// asfbench.Target; request bodies are built once and connections are reused.
package targets

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/athenaserving/asf/tools/asfbench"
)

// Error is a failed request with a short kind for the error table ("http 502", "code 10110").
type Error struct {
	kind string
	err  error
}

func (e *Error) Error() string {
	if e.err == nil {
		return e.kind
	}
	return e.kind + ": " + e.err.Error()
}

// Kind returns the error kind.
func (e *Error) Kind() string { return e.kind }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.err }

func errKind(kind string, err error) error { return &Error{kind: kind, err: err} }

// NewHTTPClient returns a keep-alive client for load generation: no idle-connection limit per
// host below maxConns, no compression, HTTP/1.1.
func NewHTTPClient(maxConns int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			MaxIdleConns:        0,
			MaxIdleConnsPerHost: max(maxConns, 2),
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
			ForceAttemptHTTP2:   false,
		},
		Timeout: 30 * time.Second,
	}
}

// signedURL caches the signed URL for the current second (the signature covers only the date).
type signedURL struct {
	raw, method string
	creds       asfbench.Credentials
	cur         atomic.Pointer[signedAt]
}

type signedAt struct {
	sec int64
	url string
}

func (s *signedURL) get(now time.Time) (string, error) {
	sec := now.Unix()
	if c := s.cur.Load(); c != nil && c.sec == sec {
		return c.url, nil
	}
	u, err := asfbench.SignURL(s.raw, s.method, s.creds, now)
	if err != nil {
		return "", err
	}
	s.cur.Store(&signedAt{sec: sec, url: u})
	return u, nil
}

// pattern fills n bytes with a repeating, recognisable pattern.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + i%26)
	}
	return b
}

// aseCode finds header.code in an ASE response without a full decode. Responses put `"code":N`
// in the header; a missing code counts as 0 only if the body looks like an ASE response.
func aseCode(body []byte) (int, error) {
	i := bytes.Index(body, []byte(`"code":`))
	if i < 0 {
		if bytes.Contains(body, []byte(`"header"`)) {
			return 0, nil
		}
		return 0, errors.New("no ASE header")
	}
	j := i + len(`"code":`)
	for j < len(body) && body[j] == ' ' {
		j++
	}
	k := j
	for k < len(body) && (body[k] == '-' || body[k] >= '0' && body[k] <= '9') {
		k++
	}
	n, err := strconv.Atoi(string(body[j:k]))
	if err != nil {
		return 0, fmt.Errorf("bad code: %w", err)
	}
	return n, nil
}

// ASEItem is one ASE payload item; the data field name is its type (text, audio, ...).
type aseItem map[string]any

// BuildASEOnce returns the JSON of an ASE once request for service with one input item named
// input whose data field (text/audio/...) holds base64 of data.
func BuildASEOnce(appID, service, dataField string, data []byte) []byte {
	req := map[string]any{
		"header":    map[string]any{"app_id": appID, "status": 3},
		"parameter": map[string]any{service: map[string]any{}},
		"payload": map[string]any{"input": aseItem{
			"encoding": "utf8", "status": 3, dataField: base64.StdEncoding.EncodeToString(data),
		}},
	}
	b, _ := json.Marshal(req)
	return b
}

// poster sends one JSON body per call on a reused reader and reads the answer into a
// reused buffer: the request path the HTTP targets share.
type poster struct {
	buf bytes.Buffer
	rd  bytes.Reader
}

// post sends body to u with client and returns the response (body already read into
// p.buf and closed).
func (p *poster) post(ctx context.Context, client *http.Client, u string, body []byte) (*http.Response, error) {
	p.rd.Reset(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, &p.rd)
	if err != nil {
		return nil, errKind("request", err)
	}
	req.ContentLength = int64(len(body))
	req.Header["Content-Type"] = []string{"application/json"}
	resp, err := client.Do(req)
	if err != nil {
		return nil, errKind("transport", err)
	}
	p.buf.Reset()
	_, err = p.buf.ReadFrom(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, errKind("transport", err)
	}
	return resp, nil
}
