// Package admin is a client of polaris's admin API (/api/v1/ on polaris's console
// listener): services and instances with their load and admin state, config files with
// history, diff, push, gray push and rollback. Every call carries the bearer token.
//
//	c, err := admin.New(admin.Options{URL: "http://127.0.0.1:8095", Token: tok})
//	svcs, err := c.Services(ctx)
package admin

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Options say how to reach polaris.
type Options struct {
	// URL is the admin API's base URL (http://host:8095, or https:// behind TLS).
	URL string
	// Token is the bearer token (admin to write, viewer to read).
	Token string
	// CA is a PEM file of the CA that signed polaris's certificate (https); Cert and Key
	// are a client certificate for mutual TLS, when polaris's front asks for one.
	CA, Cert, Key string
	// Timeout bounds each call (default 30 s).
	Timeout time.Duration
}

// Client calls the admin API.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// New returns a client; it fails on a URL that is not http(s) or unreadable TLS files.
func New(o Options) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(o.URL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("polaris address %q: want http://host:port or https://host:port of the admin API", o.URL)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if o.CA != "" || o.Cert != "" {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if o.CA != "" {
			pem, err := os.ReadFile(o.CA)
			if err != nil {
				return nil, fmt.Errorf("CA: %w", err)
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("CA %s: no PEM certificate in it", o.CA)
			}
		}
		if o.Cert != "" {
			kp, err := tls.LoadX509KeyPair(o.Cert, o.Key)
			if err != nil {
				return nil, fmt.Errorf("client certificate: %w", err)
			}
			cfg.Certificates = []tls.Certificate{kp}
		}
		tr.TLSClientConfig = cfg
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	return &Client{base: u.String(), token: o.Token, http: &http.Client{Transport: tr, Timeout: o.Timeout}}, nil
}

// Error is an admin API error: its ASE code, HTTP status and message.
type Error struct {
	Code    int    `json:"code"`
	Status  int    `json:"status"`
	Message string `json:"message"`
}

func (e *Error) Error() string {
	return fmt.Sprintf("polaris: %s (code %d, HTTP %d)", e.Message, e.Code, e.Status)
}

// Codes of the admin API the client acts on.
const (
	CodeUnauthorized = 10401
	CodeForbidden    = 10403
	CodeNotFound     = 10404
)

// IsNotFound tells whether err is the admin API's 10404.
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == CodeNotFound
}

// ErrUnreachable wraps a failure to reach polaris at all.
var ErrUnreachable = errors.New("polaris unreachable")

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%w at %s: %v", ErrUnreachable, c.base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("polaris: read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var eb struct {
			Error *Error `json:"error"`
		}
		if json.Unmarshal(b, &eb) == nil && eb.Error != nil {
			return eb.Error
		}
		return &Error{Status: resp.StatusCode, Message: strings.TrimSpace(string(b))}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("polaris: answer is not the admin API's JSON (is %s the admin API, console-listen?): %w", c.base, err)
	}
	return nil
}

// Whoami is the token's id, name and role.
type Whoami struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Role string `json:"role"`
}

// Whoami returns who the token is.
func (c *Client) Whoami(ctx context.Context) (Whoami, error) {
	var w Whoami
	return w, c.do(ctx, http.MethodGet, "/api/v1/whoami", nil, &w)
}

// Service is one service's summary.
type Service struct {
	Service   string `json:"service"`
	Providers int    `json:"providers"`
	Consumers int    `json:"consumers"`
	Routable  int    `json:"routable"`
	Idle      int64  `json:"idle"`
	Total     int64  `json:"total"`
}

// Services lists every service.
func (c *Client) Services(ctx context.Context) ([]Service, error) {
	var r struct {
		Services []Service `json:"services"`
	}
	return r.Services, c.do(ctx, http.MethodGet, "/api/v1/services", nil, &r)
}

// Instance is a registered instance with its load and admin state.
type Instance struct {
	Instance struct {
		Service string            `json:"service"`
		Version string            `json:"version,omitempty"`
		Addr    string            `json:"addr"`
		Labels  map[string]string `json:"labels,omitempty"`
		Kind    string            `json:"kind"`
	} `json:"instance"`
	Load struct {
		Total int32 `json:"total"`
		Best  int32 `json:"best"`
		Idle  int32 `json:"idle"`
		Live  int32 `json:"live"`
	} `json:"load"`
	Admin struct {
		Enabled bool  `json:"enabled"`
		Weight  int32 `json:"weight"`
	} `json:"admin"`
	LastSeen time.Time `json:"last_seen"`
}

// Instances lists service's instances; kind "provider" or "consumer" filters.
func (c *Client) Instances(ctx context.Context, service, kind string) ([]Instance, error) {
	var r struct {
		Instances []Instance `json:"instances"`
	}
	p := "/api/v1/services/" + url.PathEscape(service) + "/instances"
	if kind != "" {
		p += "?kind=" + url.QueryEscape(kind)
	}
	return r.Instances, c.do(ctx, http.MethodGet, p, nil, &r)
}

// SetAdmin changes an instance's admin state; a nil field keeps its value.
func (c *Client) SetAdmin(ctx context.Context, service, addr string, enabled *bool, weight *int32) error {
	body := map[string]any{}
	if enabled != nil {
		body["enabled"] = *enabled
	}
	if weight != nil {
		body["weight"] = *weight
	}
	return c.do(ctx, http.MethodPut, "/api/v1/services/"+url.PathEscape(service)+"/instances/"+url.PathEscape(addr)+"/admin", body, nil)
}
