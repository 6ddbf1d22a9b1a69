// Package webapitest is a client of iFLYTEK's WebAPI 2.0 protocol written from its public
// description alone — the request {"common","business","data"}, the response
// {"code","message","sid","data"}, the HMAC-SHA256 signature in the URL (WebSocket and
// HTTP) or in the Authorization header with a Digest of the body (HTTP) — as a
// third-party client would be. It knows nothing of ASE, of the suite, or of how webgate
// maps the envelope.
//
//	c := webapitest.New(suite.URL(), webapitest.Credentials{AppID: "e2e", APIKey: "k", APISecret: "s"})
//	r, err := c.Post(ctx, "/v2/tts", webapitest.Request{Common: c.Common(), Business: map[string]any{"vcn": "en-us"},
//	    Data: map[string]any{"status": 2, "text": webapitest.B64([]byte("hello"))}}, webapitest.HeaderForm)
//	// r.HTTPStatus == 200, r.Code == 0, r.Field("audio") is the base64 audio
//
//	final, partials, err := webapitest.Recognize(ctx, c, "/v2/iat", pcm, map[string]any{"grammar": g}, nil)
package webapitest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// Credentials are an application's APPID, APIKey and APISecret.
type Credentials struct {
	AppID, APIKey, APISecret string
}

// Form is where a request carries its signature.
type Form int

const (
	// URLForm signs with ?authorization=&date=&host= (headers "host date request-line").
	URLForm Form = iota
	// HeaderForm signs with the Date, Digest and Authorization headers (headers "host date
	// request-line digest").
	HeaderForm
	// Unsigned sends no signature.
	Unsigned
)

// Client sends WebAPI 2.0 requests to one server.
type Client struct {
	// Base is the server, e.g. http://127.0.0.1:8889.
	Base string
	// Creds sign the requests.
	Creds Credentials
	// HTTP sends the HTTP requests.
	HTTP *http.Client
	// Now dates the signatures.
	Now func() time.Time
}

// New returns a Client of base signing with creds.
func New(base string, creds Credentials) *Client {
	return &Client{Base: strings.TrimRight(base, "/"), Creds: creds, HTTP: &http.Client{Timeout: time.Minute}, Now: time.Now}
}

// Request is one WebAPI 2.0 request message.
type Request struct {
	Common   map[string]any `json:"common,omitempty"`
	Business map[string]any `json:"business,omitempty"`
	Data     map[string]any `json:"data,omitempty"`
}

// Response is one WebAPI 2.0 response message.
type Response struct {
	Code    int                        `json:"code"`
	Message string                     `json:"message"`
	Sid     string                     `json:"sid"`
	Cid     string                     `json:"cid,omitempty"`
	Data    map[string]json.RawMessage `json:"data,omitempty"`
	// HTTPStatus is the status of an HTTP response (0 on a WebSocket).
	HTTPStatus int `json:"-"`
	// Raw is the message as received.
	Raw []byte `json:"-"`
}

// Status is data.status (-1 without one).
func (r *Response) Status() int {
	var st int
	if err := json.Unmarshal(r.Data["status"], &st); err != nil {
		return -1
	}
	return st
}

// Field is data.<name> as raw JSON (nil when absent).
func (r *Response) Field(name string) json.RawMessage { return r.Data[name] }

// Bytes decodes data.<name>, a base64 string.
func (r *Response) Bytes(name string) ([]byte, error) {
	var s string
	if err := json.Unmarshal(r.Data[name], &s); err != nil {
		return nil, fmt.Errorf("webapitest: data.%s is not a string: %s", name, r.Data[name])
	}
	return base64.StdEncoding.DecodeString(s)
}

// B64 is the standard base64 of b, as data fields carry it.
func B64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// Common is a common object with the client's app_id.
func (c *Client) Common() map[string]any { return map[string]any{"app_id": c.Creds.AppID} }

// sign is base64(HMAC-SHA256(APISecret, lines joined by "\n")).
func (c *Client) sign(lines ...string) string {
	m := hmac.New(sha256.New, []byte(c.Creds.APISecret))
	m.Write([]byte(strings.Join(lines, "\n")))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func (c *Client) date() string { return c.Now().UTC().Format(time.RFC1123) }

// SignedURL is base+path with the URL-form signature of method: authorization is the
// base64 of `api_key="…", algorithm="hmac-sha256", headers="host date request-line",
// signature="…"`, the signature covering "host: …", "date: …" and "<method> <path> HTTP/1.1".
func (c *Client) SignedURL(method, path string) (string, error) {
	u, err := url.Parse(c.Base + path)
	if err != nil {
		return "", fmt.Errorf("webapitest: %w", err)
	}
	date := c.date()
	sig := c.sign("host: "+u.Host, "date: "+date, method+" "+u.EscapedPath()+" HTTP/1.1")
	authz := `api_key="` + c.Creds.APIKey + `", algorithm="hmac-sha256", headers="host date request-line", signature="` + sig + `"`
	q := u.Query()
	q.Set("authorization", base64.StdEncoding.EncodeToString([]byte(authz)))
	q.Set("date", date)
	q.Set("host", u.Host)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// SignHeaders signs an HTTP request and its body with the header form.
func (c *Client) SignHeaders(req *http.Request, body []byte) {
	sum := sha256.Sum256(body)
	digest := "SHA-256=" + base64.StdEncoding.EncodeToString(sum[:])
	date := c.date()
	sig := c.sign("host: "+req.URL.Host, "date: "+date, req.Method+" "+req.URL.EscapedPath()+" HTTP/1.1", "digest: "+digest)
	req.Header.Set("Date", date)
	req.Header.Set("Digest", digest)
	req.Header.Set("Authorization", `api_key="`+c.Creds.APIKey+`", algorithm="hmac-sha256", headers="host date request-line digest", signature="`+sig+`"`)
}

// Post sends req to path as an HTTP request signed in form.
func (c *Client) Post(ctx context.Context, path string, req Request, form Form) (*Response, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("webapitest: %w", err)
	}
	return c.PostRaw(ctx, path, body, form)
}

// PostRaw sends body to path as an HTTP request signed in form.
func (c *Client) PostRaw(ctx context.Context, path string, body []byte, form Form) (*Response, error) {
	target := c.Base + path
	if form == URLForm {
		var err error
		if target, err = c.SignedURL(http.MethodPost, path); err != nil {
			return nil, err
		}
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("webapitest: %w", err)
	}
	hr.Header.Set("Content-Type", "application/json")
	if form == HeaderForm {
		c.SignHeaders(hr, body)
	}
	resp, err := c.HTTP.Do(hr)
	if err != nil {
		return nil, fmt.Errorf("webapitest: POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("webapitest: POST %s: %w", path, err)
	}
	r := &Response{HTTPStatus: resp.StatusCode, Raw: b}
	if err := json.Unmarshal(b, r); err != nil {
		return r, fmt.Errorf("webapitest: POST %s: HTTP %d %q: %w", path, resp.StatusCode, b, err)
	}
	return r, nil
}

// Conn is a WebAPI 2.0 WebSocket.
type Conn struct {
	ws *websocket.Conn
}

// DialError is a refused WebSocket handshake.
type DialError struct {
	HTTPStatus int
	Body       string
}

func (e *DialError) Error() string {
	return fmt.Sprintf("webapitest: handshake HTTP %d: %s", e.HTTPStatus, e.Body)
}

// Dial opens a WebSocket to path (with any query) signed in the URL form (or Unsigned).
func (c *Client) Dial(ctx context.Context, path string, form Form) (*Conn, error) {
	target := c.Base + path
	if form != Unsigned {
		var err error
		if target, err = c.SignedURL(http.MethodGet, path); err != nil {
			return nil, err
		}
	}
	target = "ws" + strings.TrimPrefix(target, "http")
	ws, resp, err := websocket.DefaultDialer.DialContext(ctx, target, nil)
	if err != nil {
		if resp != nil {
			b, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			return nil, &DialError{HTTPStatus: resp.StatusCode, Body: string(b)}
		}
		return nil, fmt.Errorf("webapitest: dial %s: %w", path, err)
	}
	_ = resp.Body.Close()
	return &Conn{ws: ws}, nil
}

// Send writes one request message.
func (s *Conn) Send(req Request) error {
	b, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("webapitest: %w", err)
	}
	return s.SendRaw(b)
}

// SendRaw writes one message as it is.
func (s *Conn) SendRaw(b []byte) error {
	_ = s.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return s.ws.WriteMessage(websocket.TextMessage, b)
}

// Recv reads one response message within timeout; a close frame is a *websocket.CloseError.
func (s *Conn) Recv(timeout time.Duration) (*Response, error) {
	_ = s.ws.SetReadDeadline(time.Now().Add(timeout))
	_, b, err := s.ws.ReadMessage()
	if err != nil {
		return nil, err
	}
	r := &Response{Raw: b}
	if err := json.Unmarshal(b, r); err != nil {
		return r, fmt.Errorf("webapitest: message %q: %w", b, err)
	}
	return r, nil
}

// Close closes the WebSocket with a close frame.
func (s *Conn) Close() error {
	_ = s.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	return s.ws.Close()
}

// Drop closes the TCP connection without a close frame, as a network failure does.
func (s *Conn) Drop() error { return s.ws.UnderlyingConn().Close() }

// FrameBytes is the audio of one frame: 40 ms of 16 kHz 16-bit mono PCM.
const FrameBytes = 1280

// FrameInterval is how often a real-time client sends a frame.
const FrameInterval = 40 * time.Millisecond

// Pacer waits before frame i is sent; nil sends frames as fast as the connection takes
// them. RealTime paces like a microphone.
type Pacer func(ctx context.Context, i int) error

// RealTime is a Pacer that sends a frame every FrameInterval from the first one.
func RealTime() Pacer {
	var start time.Time
	return func(ctx context.Context, i int) error {
		if i == 0 {
			start = time.Now()
			return nil
		}
		t := time.NewTimer(time.Until(start.Add(time.Duration(i) * FrameInterval)))
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Recognition is what a streaming recognition returned.
type Recognition struct {
	Sid      string
	Frames   int               // request frames sent
	Results  []json.RawMessage // data.result of every response, in order
	Statuses []int             // data.status of every response
	Final    json.RawMessage   // data.result of the response with data.status 2
	Raw      [][]byte          // every response as received
}

// Recognize streams pcm to path over a WebSocket in FrameBytes frames — data.status 0
// with business on the first, 1 on the next, 2 on an empty last one; data.format
// "audio/L16;rate=16000", data.encoding "raw" — and reads data.result of every response
// until the one with data.status 2. An error response ends it with an error.
func Recognize(ctx context.Context, c *Client, path string, pcm []byte, business map[string]any, pace Pacer) (*Recognition, error) {
	conn, err := c.Dial(ctx, path, URLForm)
	if err != nil {
		return nil, err
	}
	type recvd struct {
		r   *Response
		err error
	}
	results := make(chan recvd, 1)
	done := make(chan struct{})
	rec := &Recognition{}
	sent := make(chan error, 1)
	// The reader and the sender end with the socket: on return it is closed, and the
	// sender (whose frame count the result reports) is waited for.
	defer func() {
		_ = conn.Close()
		close(done)
		if sent != nil {
			<-sent
		}
	}()
	go func() {
		for {
			r, err := conn.Recv(time.Minute)
			select {
			case results <- recvd{r, err}:
			case <-done:
				return
			}
			if err != nil || r.Code != 0 || r.Status() == 2 {
				return
			}
		}
	}()
	go func() { sent <- sendAudio(ctx, c, conn, pcm, business, pace, &rec.Frames) }()
	for {
		select {
		case err := <-sent:
			if err != nil {
				return rec, err
			}
			sent = nil
		case got := <-results:
			if got.err != nil {
				return rec, fmt.Errorf("webapitest: recognition: %w", got.err)
			}
			r := got.r
			rec.Sid = r.Sid
			rec.Raw = append(rec.Raw, r.Raw)
			if r.Code != 0 {
				return rec, fmt.Errorf("webapitest: recognition error %d: %s", r.Code, r.Message)
			}
			rec.Results = append(rec.Results, r.Field("result"))
			rec.Statuses = append(rec.Statuses, r.Status())
			if r.Status() == 2 {
				rec.Final = r.Field("result")
				if sent != nil {
					err := <-sent
					sent = nil
					if err != nil {
						return rec, err
					}
				}
				return rec, nil
			}
		case <-ctx.Done():
			return rec, ctx.Err()
		}
	}
}

// sendAudio sends the frames of Recognize; n counts them.
func sendAudio(ctx context.Context, c *Client, conn *Conn, pcm []byte, business map[string]any, pace Pacer, n *int) error {
	frames := (len(pcm) + FrameBytes - 1) / FrameBytes
	for i := 0; i <= frames; i++ {
		if pace != nil {
			if err := pace(ctx, i); err != nil {
				return err
			}
		}
		data := map[string]any{"status": 1, "format": "audio/L16;rate=16000", "encoding": "raw", "audio": ""}
		req := Request{Data: data}
		switch {
		case i == 0:
			data["status"] = 0
			req.Common, req.Business = c.Common(), business
		case i == frames:
			data["status"] = 2
		}
		if i < frames {
			data["audio"] = B64(pcm[i*FrameBytes : min((i+1)*FrameBytes, len(pcm))])
		}
		if err := conn.Send(req); err != nil {
			return fmt.Errorf("webapitest: frame %d: %w", i, err)
		}
		*n = i + 1
	}
	return nil
}

// Synthesize sends text to path over a WebSocket in one frame with data.status 2 and
// returns the decoded data.audio of every response, in order, until data.status 2.
func Synthesize(ctx context.Context, c *Client, path, text string, business map[string]any) ([][]byte, error) {
	conn, err := c.Dial(ctx, path, URLForm)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if err := conn.Send(Request{Common: c.Common(), Business: business, Data: map[string]any{"status": 2, "text": B64([]byte(text))}}); err != nil {
		return nil, fmt.Errorf("webapitest: synthesis: %w", err)
	}
	var chunks [][]byte
	for {
		r, err := conn.Recv(time.Minute)
		if err != nil {
			return chunks, fmt.Errorf("webapitest: synthesis: %w", err)
		}
		if r.Code != 0 {
			return chunks, fmt.Errorf("webapitest: synthesis error %d: %s", r.Code, r.Message)
		}
		if r.Field("audio") != nil {
			b, err := r.Bytes("audio")
			if err != nil {
				return chunks, err
			}
			chunks = append(chunks, b)
		}
		if r.Status() == 2 {
			return chunks, nil
		}
		if ctx.Err() != nil {
			return chunks, ctx.Err()
		}
	}
}

// IsClose reports whether err is the server's close frame with code.
func IsClose(err error, code int) bool {
	var ce *websocket.CloseError
	return errors.As(err, &ce) && ce.Code == code
}
