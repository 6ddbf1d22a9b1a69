package ase

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// Client calls one edge (webgate) as one app. It is safe for concurrent use.
type Client struct {
	// BaseURL is the edge's base URL, e.g. http://127.0.0.1:8889.
	BaseURL string
	// Credentials sign every request; an empty APIKey sends unsigned requests (an edge
	// running with --auth off).
	Credentials Credentials
	// HTTP sends once requests (default http.DefaultClient).
	HTTP *http.Client
	// Dialer opens WebSocket sessions (default websocket.DefaultDialer).
	Dialer *websocket.Dialer
	// HeaderAuth signs once requests in the header form (Authorization, Date and Digest
	// headers) instead of the URL form.
	HeaderAuth bool
	// Retries is how many times Once repeats a request refused with 10110 (licence not
	// enough), waiting Backoff, then twice as long, ... between tries.
	Retries int
	Backoff time.Duration
	// Now is the clock of the signatures (default time.Now).
	Now func() time.Time
}

// New returns a client for the edge at baseURL signing as app c, with two retries on
// 10110 starting at 50 ms.
func New(baseURL string, c Credentials) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), Credentials: c, Retries: 2, Backoff: 50 * time.Millisecond}
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

// Route is the once and stream path of capability service: /v1/private/<service>, or
// service itself when it is a path (a schema's meta.route or webapi.route).
func Route(service string) string {
	if strings.HasPrefix(service, "/") {
		return service
	}
	return "/v1/private/" + service
}

// serviceID is the parameter key of service: the last path segment of a route.
func serviceID(service string) string {
	return service[strings.LastIndexByte(service, '/')+1:]
}

// Once sends req as a once request (status 3) to capability service (an id, or a route
// path) and returns its result. A non-zero code is an *Error (the response is returned
// too); 10110 is retried Retries times.
func (c *Client) Once(ctx context.Context, service string, req Request) (*Response, error) {
	body, err := req.encode(serviceID(service), c.Credentials.AppID, "", StatusOnce, true)
	if err != nil {
		return nil, err
	}
	var resp *Response
	err = c.retry(ctx, func() error {
		b, status, err := c.post(ctx, Route(service), body)
		if err != nil {
			return err
		}
		resp, err = ParseResponse(b)
		return withStatus(err, status)
	})
	return resp, err
}

// retry runs call, again after a backoff while it fails with CodeLicence.
func (c *Client) retry(ctx context.Context, call func() error) error {
	wait := c.Backoff
	for i := 0; ; i++ {
		err := call()
		if err == nil || CodeOf(err) != CodeLicence || i >= c.Retries {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		case <-t.C:
		}
		wait *= 2
	}
}

// withStatus adds the HTTP status to an *Error.
func withStatus(err error, status int) error {
	var e *Error
	if errors.As(err, &e) {
		e.HTTPStatus = status
	}
	return err
}

// post sends a signed POST of body to path and returns the response body and status.
func (c *Client) post(ctx context.Context, path string, body []byte) ([]byte, int, error) {
	u := c.BaseURL + path
	var err error
	if c.Credentials.APIKey != "" && !c.HeaderAuth {
		if u, err = SignURL(u, http.MethodPost, c.Credentials, c.now()); err != nil {
			return nil, 0, err
		}
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, 0, fmt.Errorf("ase: %w", err)
	}
	hr.Header.Set("Content-Type", "application/json")
	if c.Credentials.APIKey != "" && c.HeaderAuth {
		SignRequest(hr, body, c.Credentials, c.now())
	}
	res, err := c.httpClient().Do(hr)
	if err != nil {
		return nil, 0, fmt.Errorf("ase: POST %s: %w", path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return nil, res.StatusCode, fmt.Errorf("ase: read response: %w", err)
	}
	return b, res.StatusCode, nil
}

// dial opens a signed WebSocket to path (query, when not empty, is added).
func (c *Client) dial(ctx context.Context, path, query string) (*websocket.Conn, error) {
	u := "ws" + strings.TrimPrefix(c.BaseURL, "http") + path
	if query != "" {
		u += "?" + query
	}
	var err error
	if c.Credentials.APIKey != "" {
		if u, err = SignURL(u, http.MethodGet, c.Credentials, c.now()); err != nil {
			return nil, err
		}
	}
	d := c.Dialer
	if d == nil {
		d = websocket.DefaultDialer
	}
	conn, res, err := d.DialContext(ctx, u, nil)
	if err != nil {
		if res != nil {
			b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<16))
			res.Body.Close()
			var m struct {
				Message string `json:"message"`
			}
			if json.Unmarshal(b, &m) == nil && m.Message != "" {
				return nil, &Error{Message: m.Message, HTTPStatus: res.StatusCode}
			}
			return nil, fmt.Errorf("ase: open session %s: HTTP %d %s", path, res.StatusCode, bytes.TrimSpace(b))
		}
		return nil, fmt.Errorf("ase: open session %s: %w", path, err)
	}
	return conn, nil
}
