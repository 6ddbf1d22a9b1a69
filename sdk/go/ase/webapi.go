package ase

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
)

// WebAPIRequest is a request in the WebAPI 2.0 envelope: common (app_id is filled in,
// uid, cid, ...), business (the engine parameters) and data (status is filled in;
// format, encoding and the base64 data field named by its type: audio, text, ...).
type WebAPIRequest struct {
	Common   map[string]any
	Business map[string]any
	Data     map[string]any
}

func (r WebAPIRequest) encode(appID, cid string, status int, first bool) ([]byte, error) {
	common := map[string]any{}
	for k, v := range r.Common {
		common[k] = v
	}
	common["app_id"] = appID
	if cid != "" {
		common["cid"] = cid
	}
	data := map[string]any{}
	for k, v := range r.Data {
		data[k] = v
	}
	data["status"] = status
	doc := map[string]any{"common": common, "data": data}
	if first && r.Business != nil {
		doc["business"] = r.Business
	}
	return json.Marshal(doc)
}

// WebAPIResponse is a result in the WebAPI 2.0 envelope: code, message, sid, cid
// (multiplex), data.status and the other data fields.
type WebAPIResponse struct {
	Code    int
	Message string
	Sid     string
	Cid     string
	Status  int
	Data    map[string]json.RawMessage
	Raw     json.RawMessage
}

// ParseWebAPIResponse decodes a WebAPI 2.0 response; a non-zero code is returned with an
// *Error, a gateway refusal ({"message": ...}) is an *Error with code 0.
func ParseWebAPIResponse(b []byte) (*WebAPIResponse, error) {
	var w struct {
		Code    *int                       `json:"code"`
		Message string                     `json:"message"`
		Sid     string                     `json:"sid"`
		Cid     string                     `json:"cid"`
		Data    map[string]json.RawMessage `json:"data"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&w); err != nil {
		return nil, fmt.Errorf("ase: WebAPI response is not JSON: %w", err)
	}
	if w.Code == nil {
		if w.Message != "" {
			return nil, &Error{Message: w.Message}
		}
		return nil, fmt.Errorf("ase: WebAPI response without code: %.200s", b)
	}
	r := &WebAPIResponse{Code: *w.Code, Message: w.Message, Sid: w.Sid, Cid: w.Cid, Data: w.Data, Raw: append(json.RawMessage(nil), b...)}
	if st, ok := w.Data["status"]; ok {
		_ = json.Unmarshal(st, &r.Status)
	}
	if r.Code != 0 {
		return r, &Error{Code: r.Code, Message: r.Message, Sid: r.Sid, Cid: r.Cid}
	}
	return r, nil
}

// WebAPIOnce posts req in the WebAPI 2.0 envelope to route (a schema's webapi.route, e.g.
// /v2/iat) as a once request; 10110 is retried as for Once.
func (c *Client) WebAPIOnce(ctx context.Context, route string, req WebAPIRequest) (*WebAPIResponse, error) {
	body, err := req.encode(c.Credentials.AppID, "", StatusEnd, true)
	if err != nil {
		return nil, err
	}
	var resp *WebAPIResponse
	err = c.retry(ctx, func() error {
		b, status, err := c.post(ctx, route, body)
		if err != nil {
			return err
		}
		resp, err = ParseWebAPIResponse(b)
		return withStatus(err, status)
	})
	return resp, err
}

// WebAPIStream is a WebAPI 2.0 session over a WebSocket (see Stream).
type WebAPIStream struct {
	appID string
	sock  *socket
	mu    sync.Mutex
	sent  bool
}

// WebAPIStream opens a WebAPI 2.0 session on route.
func (c *Client) WebAPIStream(ctx context.Context, route string) (*WebAPIStream, error) {
	conn, err := c.dial(ctx, route, "")
	if err != nil {
		return nil, err
	}
	return &WebAPIStream{appID: c.Credentials.AppID, sock: &socket{conn: conn}}, nil
}

// Send sends one frame with data.status status; business goes with the first only.
func (s *WebAPIStream) Send(status int, req WebAPIRequest) error {
	s.mu.Lock()
	first := !s.sent
	s.sent = true
	s.mu.Unlock()
	b, err := req.encode(s.appID, "", status, first)
	if err != nil {
		return err
	}
	return s.sock.write(b)
}

// Recv returns the next result; io.EOF once the edge closed the session.
func (s *WebAPIStream) Recv() (*WebAPIResponse, error) {
	b, err := s.sock.read()
	if err != nil {
		return nil, err
	}
	return ParseWebAPIResponse(b)
}

// Close closes the socket.
func (s *WebAPIStream) Close() error { return s.sock.close() }
