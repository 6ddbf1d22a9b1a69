package forward

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/sdk/go/ase"
	"github.com/athenaserving/asf/services/loader/engine"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Options build an Engine.
type Options struct {
	// Name is the engine's name (default "forward").
	Name string
	// Spec is the parsed forward spec.
	Spec *Spec
	// Service is the capability id used as the parameter key when a request names none.
	Service string
	// Licence sizes the pool of idle upstream connections kept per host.
	Licence int
	Log     zerolog.Logger
	// Registry receives the engine's metrics (may be nil).
	Registry prometheus.Registerer
	// Now is the clock of request signatures (default time.Now).
	Now func() time.Time
}

// Engine forwards once requests to an HTTP(S) API and sessions to a WebSocket API.
type Engine struct {
	opts   Options
	spec   *Spec
	client *http.Client
	tr     *http.Transport
	m      *metrics
	next   atomic.Uint32 // rotating start among the upstreams (spread)
	nextWS atomic.Uint32

	mu     sync.Mutex
	inited bool
}

var _ engine.Engine = (*Engine)(nil)

// New returns an uninitialised forward engine.
func New(o Options) *Engine {
	if o.Name == "" {
		o.Name = "forward"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: o.Spec.Timeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          max(o.Licence, 2) * max(len(o.Spec.Upstreams), 1),
		MaxIdleConnsPerHost:   max(o.Licence, 2),
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   o.Spec.Timeout,
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     true,
	}
	if o.Spec.Roots != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: o.Spec.Roots, MinVersion: tls.VersionTLS12}
	}
	return &Engine{
		opts: o, spec: o.Spec, tr: tr, m: newMetrics(o.Registry),
		// Redirects are not followed: a signed request would be replayed elsewhere.
		client: &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
	}
}

// Name returns the engine's name.
func (e *Engine) Name() string { return e.opts.Name }

// Init marks the engine ready; the upstreams are not called until the first request.
func (e *Engine) Init(context.Context, map[string]string) error {
	e.mu.Lock()
	e.inited = true
	e.mu.Unlock()
	return nil
}

// Fini closes the idle upstream connections; later calls fail with 10101.
func (e *Engine) Fini(context.Context) error {
	e.mu.Lock()
	e.inited = false
	e.mu.Unlock()
	e.tr.CloseIdleConnections()
	return nil
}

func (e *Engine) ready() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.inited {
		return fmt.Errorf("forward: %w", aserr.ErrReleased)
	}
	return nil
}

func (e *Engine) capability(h map[string]string) string {
	if c := h["capability"]; c != "" {
		return c
	}
	return e.opts.Service
}

// Once maps the request, calls the upstream (trying the next upstream on a connect error
// or a 5xx answer, up to Retries more times, all within Timeout) and maps its answer.
func (e *Engine) Once(ctx context.Context, req engine.Request) (engine.Response, error) {
	if err := e.ready(); err != nil {
		return engine.Response{}, err
	}
	if len(e.spec.Upstreams) == 0 {
		return engine.Response{}, fmt.Errorf("forward: no HTTP upstream configured, only sessions are forwarded: %w", aserr.ErrInvalidOp)
	}
	doc := e.spec.engineDoc(call{
		capability: e.capability(req.Headers), headers: req.Headers, params: req.Params, expect: req.Expect,
		inputs: req.Inputs, status: engine.StatusOnce, first: true,
	})
	body, query, headers := upstreamRequest(e.spec.Request, doc)
	var raw []byte
	if e.spec.Method != http.MethodGet {
		if body == nil {
			body = map[string]any{}
		}
		var err error
		if raw, err = json.Marshal(body); err != nil {
			return engine.Response{}, fmt.Errorf("forward: request body: %v: %w", err, aserr.ErrInvalidData)
		}
	}
	cctx, cancel := context.WithTimeoutCause(ctx, e.spec.Timeout, errCallTimeout)
	defer cancel()
	a, err := e.post(cctx, raw, query, headers)
	if err != nil {
		if context.Cause(cctx) == errCallTimeout && ctx.Err() == nil {
			e.m.outcome("http", outcomeTimeout)
			return engine.Response{}, fmt.Errorf("upstream did not answer within %s: %w", e.spec.Timeout, aserr.ErrUpstreamTimeout)
		}
		if ctx.Err() != nil {
			return engine.Response{}, fmt.Errorf("forward: %w", ctx.Err())
		}
		return engine.Response{}, err
	}
	return engine.Response{Outputs: a.outputs}, nil
}

var errCallTimeout = errors.New("forward call timeout")

// post runs the attempts of one once call.
func (e *Engine) post(ctx context.Context, body []byte, query, headers map[string]string) (answer, error) {
	a, err := failover(ctx, e, e.spec.Upstreams, &e.next, func(target string) (answer, bool, error) {
		return e.attempt(ctx, target, body, query, headers)
	})
	if err == nil {
		e.m.outcome("http", outcomeOK)
	}
	return a, err
}

// failover calls try on upstreams from a rotating start (next), moving to the next one
// while try reports a failure worth another attempt, at most Retries more times.
func failover[T any](ctx context.Context, e *Engine, upstreams []string, next *atomic.Uint32, try func(target string) (T, bool, error)) (T, error) {
	n := len(upstreams)
	start := int(next.Add(1)-1) % n
	var zero T
	var last error
	for attempt := 0; attempt <= e.spec.Retries; attempt++ {
		if attempt > 0 {
			e.m.retries.Inc()
		}
		target := upstreams[(start+attempt)%n]
		v, retry, err := try(target)
		if err == nil {
			return v, nil
		}
		last = err
		e.opts.Log.Debug().Err(err).Str("upstream", target).Int("attempt", attempt+1).Bool("retry", retry).Msg("forward: upstream attempt failed")
		if !retry || ctx.Err() != nil {
			break
		}
	}
	return zero, last
}

// attempt calls one upstream once. retry reports a failure worth another attempt: a
// connect error or a 5xx answer.
func (e *Engine) attempt(ctx context.Context, target string, body []byte, query, headers map[string]string) (answer, bool, error) {
	u, err := withQuery(target, query)
	if err != nil {
		return answer{}, false, fmt.Errorf("upstream URL: %v: %w", err, aserr.ErrInvalidParam)
	}
	if e.spec.Auth.Type == AuthHMAC && e.spec.Auth.URLForm {
		if u, err = ase.SignURL(u, e.spec.Method, e.spec.Auth.HMAC, e.opts.Now()); err != nil {
			return answer{}, false, fmt.Errorf("forward: %v: %w", err, aserr.ErrInvalidParam)
		}
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, e.spec.Method, u, rd)
	if err != nil {
		return answer{}, false, fmt.Errorf("upstream request: %v: %w", err, aserr.ErrInvalidParam)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	e.addHeaders(req.Header, headers)
	if e.spec.Auth.Type == AuthHMAC && !e.spec.Auth.URLForm {
		ase.SignRequest(req, body, e.spec.Auth.HMAC, e.opts.Now())
	}
	start := time.Now()
	resp, err := e.client.Do(req)
	if err != nil {
		e.m.seconds.Observe(time.Since(start).Seconds())
		if ctx.Err() != nil {
			return answer{}, false, ctx.Err()
		}
		if isConnect(err) {
			e.m.outcome("http", outcomeConnect)
			return answer{}, true, fmt.Errorf("upstream refused the connection or could not be reached: %w", aserr.ErrUpstreamUnreachable)
		}
		e.m.outcome("http", outcomeBroken)
		return answer{}, false, fmt.Errorf("upstream connection failed before its answer: %w", aserr.ErrUpstreamUnreachable)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, e.spec.MaxResponseBytes+1))
	e.m.seconds.Observe(time.Since(start).Seconds())
	if err != nil {
		if ctx.Err() != nil {
			return answer{}, false, ctx.Err()
		}
		e.m.outcome("http", outcomeBroken)
		return answer{}, false, fmt.Errorf("upstream connection broke while reading its answer: %w", aserr.ErrUpstreamUnreachable)
	}
	if int64(len(b)) > e.spec.MaxResponseBytes {
		e.m.outcome("http", outcomeBadAnswer)
		return answer{}, false, fmt.Errorf("upstream answer larger than %d bytes: %w", e.spec.MaxResponseBytes, aserr.ErrInvalidResult)
	}
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	v, jerr := parseJSON(b)
	if !ok {
		// An error answer that reports a code in the mapped document gives that code.
		if jerr == nil && v != nil {
			if a := e.spec.decodeAnswer(e.spec.Response, v, resp.Header); a.err != nil && !errors.Is(a.err, aserr.ErrInvalidResult) {
				e.m.outcome("http", outcomeStatus)
				return answer{}, resp.StatusCode >= 500, a.err
			}
		}
		e.m.outcome("http", outcomeStatus)
		return answer{}, resp.StatusCode >= 500, fmt.Errorf("upstream answered HTTP %d %s: %w", resp.StatusCode, http.StatusText(resp.StatusCode), aserr.ErrUpstreamStatus)
	}
	if jerr != nil {
		e.m.outcome("http", outcomeBadAnswer)
		return answer{}, false, jerr
	}
	a := e.spec.decodeAnswer(e.spec.Response, v, resp.Header)
	if a.err != nil {
		if errors.Is(a.err, aserr.ErrInvalidResult) {
			e.m.outcome("http", outcomeBadAnswer)
		} else {
			e.m.outcome("http", outcomeCode)
		}
		return answer{}, false, a.err
	}
	return a, false, nil
}

// addHeaders sets the spec's static headers, the mapped ones and the bearer token.
func (e *Engine) addHeaders(h http.Header, mapped map[string]string) {
	for k, v := range e.spec.Headers {
		h.Set(k, v)
	}
	for k, v := range mapped {
		h.Set(k, v)
	}
	if e.spec.Auth.Type == AuthBearer {
		h.Set("Authorization", "Bearer "+e.spec.Auth.Token)
	}
}

func withQuery(target string, query map[string]string) (string, error) {
	if len(query) == 0 {
		return target, nil
	}
	u, err := url.Parse(target)
	if err != nil {
		return "", err
	}
	q := u.Query()
	for k, v := range query {
		q.Set(k, v)
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// isConnect reports a failure to open the connection (refused, unreachable, no such
// host): nothing was sent, so another attempt is safe.
func isConnect(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return !op.Timeout()
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}
