// Package asetest is an ASE client for cross-service tests, written from
// specs/ase-protocol.md alone: it builds request frames, signs HTTP once requests and
// WebSocket sessions with HMAC-SHA256 (URL-parameter or header form), and reads responses,
// including multiplexed sessions.
//
//	c := asetest.New(suite.URL(), &asetest.Credentials{AppID: "app1", APIKey: "k", APISecret: "s"})
//	resp, err := c.Once(ctx, "echo", asetest.Frame{Status: 3, Payload: map[string]asetest.Data{
//	    "input": asetest.Text("hello")}})
//	// resp.HTTPStatus == 200, resp.Header.Code == 0, resp.Bytes("input") == "hello"
//
//	s, err := c.Stream(ctx, "echo")               // signed WebSocket session
//	defer s.Close()
//	s.Send(asetest.Frame{Status: 0, Payload: ...})
//	all, err := s.RecvUntilEnd(5 * time.Second)   // responses until status 2 or an error
//	s.Abort()                                     // drop the TCP connection, no close frame
package asetest

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

// Credentials are an app's id and HMAC key pair.
type Credentials struct {
	AppID, APIKey, APISecret string
}

// Client talks to a webgate. The zero Client is not usable; use New.
type Client struct {
	// BaseURL is webgate's base URL, e.g. http://127.0.0.1:8889.
	BaseURL string
	// Creds sign every request; nil sends unsigned requests (auth off, or to test 401s).
	Creds *Credentials
	// HeaderForm signs once requests with the Authorization/Date/Digest headers instead
	// of URL parameters.
	HeaderForm bool
	// HTTP is the HTTP client of once requests.
	HTTP *http.Client
	// Now is the clock used for the signature date (tests of clock skew replace it).
	Now func() time.Time
	// RequestHeader holds extra headers sent with every once request and WebSocket
	// handshake (a W3C traceparent, ...).
	RequestHeader http.Header
}

// New returns a Client for baseURL signing with creds (nil: unsigned).
func New(baseURL string, creds *Credentials) *Client {
	return &Client{BaseURL: strings.TrimSuffix(baseURL, "/"), Creds: creds, HTTP: &http.Client{Timeout: 30 * time.Second}, Now: time.Now}
}

// Data is one payload item: its data field Type (text, audio, image, video, other), the
// raw bytes (sent as standard base64) and its attributes.
type Data struct {
	Type  string
	Bytes []byte
	Attrs map[string]any
}

// Text is a text item with encoding utf8.
func Text(s string) Data {
	return Data{Type: "text", Bytes: []byte(s), Attrs: map[string]any{"encoding": "utf8"}}
}

// Audio is a raw 16 kHz 16-bit mono PCM audio item.
func Audio(pcm []byte) Data {
	return Data{Type: "audio", Bytes: pcm, Attrs: map[string]any{"encoding": "raw", "sample_rate": 16000, "channels": 1, "bit_depth": 16}}
}

// Frame is one ASE request frame (spec §1).
type Frame struct {
	// AppID goes into header.app_id; empty uses the client's Credentials.AppID.
	AppID string
	// Status is header.status and the status of every payload item (0 begin, 1 continue,
	// 2 end, 3 once).
	Status int
	// CID is header.cid (multiplexed sub-sessions).
	CID string
	// Header holds any other header fields (uid, did, request_id, ...).
	Header map[string]any
	// Params are the engine parameters, parameter.<capability>.<key>.
	Params map[string]any
	// Accepts are the output descriptors, parameter.<capability>.<output>.
	Accepts map[string]map[string]any
	// Payload items by input name.
	Payload map[string]Data
	// Seq is set as every item's seq attribute when not nil.
	Seq *int
	// OnlyPayload sends a follow-up frame with header.status (and cid) and payload only.
	OnlyPayload bool
}

// JSON renders the frame for capability; appID is used when f.AppID is empty.
func (f Frame) JSON(capability, appID string) []byte {
	if f.AppID != "" {
		appID = f.AppID
	}
	header := map[string]any{"status": f.Status}
	if !f.OnlyPayload {
		for k, v := range f.Header {
			header[k] = v
		}
		if appID != "" {
			header["app_id"] = appID
		}
	}
	if f.CID != "" {
		header["cid"] = f.CID
	}
	doc := map[string]any{"header": header}
	if !f.OnlyPayload && (len(f.Params) > 0 || len(f.Accepts) > 0) {
		p := map[string]any{}
		for k, v := range f.Params {
			p[k] = v
		}
		for k, v := range f.Accepts {
			p[k] = v
		}
		doc["parameter"] = map[string]any{capability: p}
	}
	if len(f.Payload) > 0 {
		payload := map[string]any{}
		for name, d := range f.Payload {
			item := map[string]any{}
			for k, v := range d.Attrs {
				item[k] = v
			}
			item["status"] = f.Status
			if f.Seq != nil {
				item["seq"] = *f.Seq
			}
			typ := d.Type
			if typ == "" {
				typ = "text"
			}
			item[typ] = base64.StdEncoding.EncodeToString(d.Bytes)
			payload[name] = item
		}
		doc["payload"] = payload
	}
	b, _ := json.Marshal(doc)
	return b
}

// Header is a response header (spec §1); Status is nil on error responses.
type Header struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Sid     string `json:"sid"`
	Cid     string `json:"cid,omitempty"`
	Status  *int   `json:"status,omitempty"`
}

// Response is one ASE response, or a gateway refusal ({"message": ...}) in Message.
type Response struct {
	Header  Header                                `json:"header"`
	Payload map[string]map[string]json.RawMessage `json:"payload"`
	// Message is the body of a gateway-level refusal (401, 403, 404).
	Message string `json:"message"`
	// HTTPStatus is the HTTP status of a once request (0 for WebSocket frames).
	HTTPStatus int `json:"-"`
	// HTTPHeader holds the response headers of a once request.
	HTTPHeader http.Header `json:"-"`
	// Raw is the response text.
	Raw []byte `json:"-"`
}

// StatusValue is header.status, or -1 on an error response.
func (r *Response) StatusValue() int {
	if r.Header.Status == nil {
		return -1
	}
	return *r.Header.Status
}

var dataFields = [...]string{"text", "audio", "image", "video", "other"}

// Bytes returns the data of output item name: base64 decoded, or the inline JSON text
// (format json).
func (r *Response) Bytes(name string) ([]byte, error) {
	item, ok := r.Payload[name]
	if !ok {
		return nil, fmt.Errorf("asetest: no output %q in %s", name, r.Raw)
	}
	for _, f := range dataFields {
		raw, ok := item[f]
		if !ok {
			continue
		}
		var s string
		if json.Unmarshal(raw, &s) == nil {
			if b, err := base64.StdEncoding.DecodeString(s); err == nil {
				return b, nil
			}
		}
		return raw, nil
	}
	return nil, fmt.Errorf("asetest: output %q has no data field", name)
}

// Attr returns attribute key of output item name as raw JSON ("" when absent).
func (r *Response) Attr(name, key string) string { return string(r.Payload[name][key]) }

func parseResponse(b []byte) (*Response, error) {
	r := &Response{Raw: b}
	if err := json.Unmarshal(b, r); err != nil {
		return r, fmt.Errorf("asetest: response %q: %w", b, err)
	}
	return r, nil
}

// SignatureOrigin is the signed text of spec §5 (no trailing newline); digest, when not
// empty, adds the header form's fourth line.
func SignatureOrigin(host, date, method, path, digest string) string {
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

// SignURL adds ?authorization=&date=&host= for method (GET for WebSocket, POST for HTTP).
func SignURL(rawURL, method string, c Credentials, now time.Time) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("asetest: %w", err)
	}
	date := now.UTC().Format(http.TimeFormat)
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	sig := Signature(c.APISecret, SignatureOrigin(u.Host, date, method, path, ""))
	authz := fmt.Sprintf(`api_key="%s", algorithm="hmac-sha256", headers="host date request-line", signature="%s"`, c.APIKey, sig)
	q := u.Query()
	q.Set("authorization", base64.StdEncoding.EncodeToString([]byte(authz)))
	q.Set("date", date)
	q.Set("host", u.Host)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// SignHeaders signs req with the header form: Date, Digest (SHA-256 of body) and
// Authorization: hmac api_key=..., headers="host date request-line digest".
func SignHeaders(req *http.Request, body []byte, c Credentials, now time.Time) {
	date := now.UTC().Format(http.TimeFormat)
	sum := sha256.Sum256(body)
	digest := "SHA-256=" + base64.StdEncoding.EncodeToString(sum[:])
	sig := Signature(c.APISecret, SignatureOrigin(req.URL.Host, date, req.Method, req.URL.EscapedPath(), digest))
	req.Header.Set("Date", date)
	req.Header.Set("Digest", digest)
	req.Header.Set("Authorization", fmt.Sprintf(`hmac api_key="%s", algorithm="hmac-sha256", headers="host date request-line digest", signature="%s"`, c.APIKey, sig))
}

func (c *Client) appID() string {
	if c.Creds == nil {
		return ""
	}
	return c.Creds.AppID
}

// Route is the default route of capability.
func Route(capability string) string { return "/v1/private/" + capability }

// Once sends f as a once request to capability's default route.
func (c *Client) Once(ctx context.Context, capability string, f Frame) (*Response, error) {
	return c.Post(ctx, Route(capability), f.JSON(capability, c.appID()))
}

// Post sends body to path (with any query) as a signed once request.
func (c *Client) Post(ctx context.Context, path string, body []byte) (*Response, error) {
	target := c.BaseURL + path
	if c.Creds != nil && !c.HeaderForm {
		var err error
		if target, err = SignURL(target, http.MethodPost, *c.Creds, c.Now()); err != nil {
			return nil, err
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("asetest: %w", err)
	}
	for k, v := range c.RequestHeader {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	if c.Creds != nil && c.HeaderForm {
		SignHeaders(req, body, *c.Creds, c.Now())
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("asetest: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("asetest: %w", err)
	}
	r, err := parseResponse(b)
	r.HTTPStatus, r.HTTPHeader = resp.StatusCode, resp.Header
	return r, err
}

// Session is one WebSocket connection: a stream session, or a multiplexed socket.
type Session struct {
	// Header holds the handshake's response headers (X-Asf-Trace-Id, ...).
	Header     http.Header
	conn       *websocket.Conn
	capability string
	appID      string
}

// DialError is a refused WebSocket handshake: the HTTP status and body.
type DialError struct {
	Status int
	Body   string
}

func (e *DialError) Error() string {
	return fmt.Sprintf("asetest: handshake refused: %d %s", e.Status, e.Body)
}

// Stream opens a signed WebSocket session on capability's default route.
func (c *Client) Stream(ctx context.Context, capability string) (*Session, error) {
	return c.Dial(ctx, Route(capability), capability)
}

// Multiplex opens a signed multiplexed WebSocket (?stream_mode=multiplex).
func (c *Client) Multiplex(ctx context.Context, capability string) (*Session, error) {
	return c.Dial(ctx, Route(capability)+"?stream_mode=multiplex", capability)
}

// Dial opens a signed WebSocket on path (with any query); capability names the
// parameter key of frames sent with Send. A refused handshake returns a *DialError.
func (c *Client) Dial(ctx context.Context, path, capability string) (*Session, error) {
	target := "ws" + strings.TrimPrefix(c.BaseURL, "http") + path
	if c.Creds != nil {
		var err error
		if target, err = SignURL(target, http.MethodGet, *c.Creds, c.Now()); err != nil {
			return nil, err
		}
	}
	conn, resp, err := websocket.DefaultDialer.DialContext(ctx, target, c.RequestHeader)
	if err != nil {
		if resp != nil {
			b, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			return nil, &DialError{Status: resp.StatusCode, Body: string(b)}
		}
		return nil, fmt.Errorf("asetest: dial: %w", err)
	}
	ss := &Session{conn: conn, capability: capability, appID: c.appID()}
	if resp != nil {
		ss.Header = resp.Header
		if resp.Body != nil {
			_ = resp.Body.Close()
		}
	}
	return ss, nil
}

// Send sends f.
func (s *Session) Send(f Frame) error { return s.SendRaw(f.JSON(s.capability, s.appID)) }

// SendRaw sends one text message.
func (s *Session) SendRaw(b []byte) error {
	_ = s.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return s.conn.WriteMessage(websocket.TextMessage, b)
}

// Recv waits up to timeout for the next response. When the server closes the socket it
// returns a *websocket.CloseError (Code, Text: the close reason).
func (s *Session) Recv(timeout time.Duration) (*Response, error) {
	_ = s.conn.SetReadDeadline(time.Now().Add(timeout))
	_, b, err := s.conn.ReadMessage()
	if err != nil {
		return nil, err
	}
	return parseResponse(b)
}

// RecvUntilEnd collects responses until one has status 2, or is an error response; the
// timeout applies to each. The last response is the final one.
func (s *Session) RecvUntilEnd(timeout time.Duration) ([]*Response, error) {
	var out []*Response
	for {
		r, err := s.Recv(timeout)
		if err != nil {
			return out, err
		}
		out = append(out, r)
		if r.Header.Code != 0 || r.StatusValue() == 2 {
			return out, nil
		}
	}
}

// ThreeFrameSession opens a session of capability, sends three frames (statuses 0, 1, 2,
// seq 0..2) each carrying audio as payload "input", and returns the responses until the
// end (RecvUntilEnd with timeout per response); the session is closed.
func (c *Client) ThreeFrameSession(ctx context.Context, capability string, audio []byte, timeout time.Duration) ([]*Response, error) {
	ss, err := c.Stream(ctx, capability)
	if err != nil {
		return nil, fmt.Errorf("stream: %w", err)
	}
	defer func() { _ = ss.Close() }()
	for i, st := range []int{0, 1, 2} {
		f := Frame{Status: st, Seq: Int(i), OnlyPayload: i > 0, Payload: map[string]Data{"input": Audio(audio)}}
		if err := ss.Send(f); err != nil {
			return nil, fmt.Errorf("send: %w", err)
		}
	}
	return ss.RecvUntilEnd(timeout)
}

// WaitClose reads until the server closes the socket and returns its close frame.
func (s *Session) WaitClose(timeout time.Duration) (*websocket.CloseError, error) {
	deadline := time.Now().Add(timeout)
	for {
		_ = s.conn.SetReadDeadline(deadline)
		_, _, err := s.conn.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce, nil
		}
		return nil, err
	}
}

// Close sends a normal close frame and closes the connection.
func (s *Session) Close() error {
	_ = s.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	return s.conn.Close()
}

// Abort drops the TCP connection without a close frame (an abnormal close).
func (s *Session) Abort() error { return s.conn.UnderlyingConn().Close() }

// Conn is the underlying WebSocket connection.
func (s *Session) Conn() *websocket.Conn { return s.conn }

// Int returns a pointer to i, for Frame.Seq.
func Int(i int) *int { return &i }
