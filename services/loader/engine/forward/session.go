package forward

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/sdk/go/ase"
	"github.com/athenaserving/asf/services/loader/engine"
	"github.com/gorilla/websocket"
)

// NewSession opens a WebSocket to a session upstream (the next one on a connect error or
// a 5xx handshake answer, up to Retries more, each handshake within Timeout) and starts
// the reader that maps every upstream message to a result.
func (e *Engine) NewSession(ctx context.Context, p engine.SessionParams, emit engine.Emit) (engine.Session, error) {
	if err := e.ready(); err != nil {
		return nil, err
	}
	if len(e.spec.SessionUpstreams) == 0 {
		return nil, fmt.Errorf("forward: no session upstream configured, only once requests are forwarded: %w", aserr.ErrInvalidOp)
	}
	c := call{capability: e.capability(p.Headers), headers: p.Headers, params: p.Params, expect: p.Expect, first: true}
	// The handshake's query and headers come from the session's header and parameter.
	_, query, headers := upstreamRequest(e.spec.SessionRequest, e.spec.engineDoc(c))
	conn, err := e.dial(ctx, query, headers)
	if err != nil {
		return nil, err
	}
	s := &wsSession{e: e, conn: conn, emit: emit, call: c, done: make(chan struct{})}
	go s.read()
	return s, nil
}

func (e *Engine) dial(ctx context.Context, query, headers map[string]string) (*websocket.Conn, error) {
	d := websocket.Dialer{
		Proxy: http.ProxyFromEnvironment, HandshakeTimeout: e.spec.Timeout,
		NetDialContext: (&net.Dialer{Timeout: e.spec.Timeout}).DialContext,
	}
	if e.spec.Roots != nil {
		d.TLSClientConfig = e.tr.TLSClientConfig
	}
	return failover(ctx, e, e.spec.SessionUpstreams, &e.nextWS, func(target string) (*websocket.Conn, bool, error) {
		return e.handshake(ctx, &d, target, query, headers)
	})
}

func (e *Engine) handshake(ctx context.Context, d *websocket.Dialer, target string, query, headers map[string]string) (*websocket.Conn, bool, error) {
	u, err := withQuery(target, query)
	if err != nil {
		return nil, false, fmt.Errorf("upstream URL: %v: %w", err, aserr.ErrInvalidParam)
	}
	if e.spec.Auth.Type == AuthHMAC {
		if u, err = ase.SignURL(u, http.MethodGet, e.spec.Auth.HMAC, e.opts.Now()); err != nil {
			return nil, false, fmt.Errorf("forward: %v: %w", err, aserr.ErrInvalidParam)
		}
	}
	h := http.Header{}
	e.addHeaders(h, headers)
	hctx, cancel := context.WithTimeout(ctx, e.spec.Timeout)
	defer cancel()
	conn, resp, err := d.DialContext(hctx, u, h)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err == nil {
		e.m.outcome("ws", outcomeOK)
		conn.SetReadLimit(e.spec.MaxResponseBytes)
		return conn, false, nil
	}
	switch {
	case ctx.Err() != nil:
		return nil, false, fmt.Errorf("forward: %w", ctx.Err())
	case hctx.Err() != nil:
		e.m.outcome("ws", outcomeTimeout)
		return nil, false, fmt.Errorf("upstream handshake did not finish within %s: %w", e.spec.Timeout, aserr.ErrUpstreamTimeout)
	case resp != nil:
		e.m.outcome("ws", outcomeStatus)
		return nil, resp.StatusCode >= 500, fmt.Errorf("upstream refused the WebSocket handshake with HTTP %d %s: %w", resp.StatusCode, http.StatusText(resp.StatusCode), aserr.ErrUpstreamStatus)
	case isConnect(err):
		e.m.outcome("ws", outcomeConnect)
		return nil, true, fmt.Errorf("upstream refused the connection or could not be reached: %w", aserr.ErrUpstreamUnreachable)
	}
	e.m.outcome("ws", outcomeBroken)
	return nil, false, fmt.Errorf("upstream WebSocket handshake failed: %w", aserr.ErrUpstreamUnreachable)
}

// wsSession forwards one engine session frame by frame. Write runs on the session's
// goroutine; read runs on its own goroutine, owned by the session and stopped by Close.
type wsSession struct {
	e    *Engine
	conn *websocket.Conn
	emit engine.Emit
	call call // header and parameter of the session

	wrote   bool        // a frame was written (the next ones carry payload and status only); Write only
	endSent atomic.Bool // the END frame was written
	ended   atomic.Bool // the terminal result (END or an error) was emitted
	closing atomic.Bool // Close was called
	done    chan struct{}
	once    sync.Once
	lastIn  atomic.Int64 // unix ns of the last write: the engine time of the next result
}

// Write maps one frame and sends it as one text message.
func (s *wsSession) Write(ctx context.Context, f engine.Frame) error {
	if s.ended.Load() {
		return fmt.Errorf("forward: write after the session ended: %w", aserr.ErrInvalidOp)
	}
	c := s.call
	c.first, c.inputs, c.status = !s.wrote, f.Inputs, f.Status
	body, _, _ := upstreamRequest(s.e.spec.SessionRequest, s.e.spec.engineDoc(c))
	if body == nil {
		body = map[string]any{}
	}
	msg, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("forward: frame %d: %v: %w", f.SyncID, err, aserr.ErrInvalidData)
	}
	s.wrote = true
	deadline := time.Now().Add(s.e.spec.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = s.conn.SetWriteDeadline(deadline)
	s.lastIn.Store(time.Now().UnixNano())
	if err := s.conn.WriteMessage(websocket.TextMessage, msg); err != nil {
		if s.ended.Load() {
			return fmt.Errorf("forward: write after the session ended: %w", aserr.ErrInvalidOp)
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return fmt.Errorf("upstream did not take frame %d within %s: %w", f.SyncID, s.e.spec.Timeout, aserr.ErrUpstreamTimeout)
		}
		return fmt.Errorf("upstream session broke while sending frame %d: %w", f.SyncID, aserr.ErrUpstreamClosed)
	}
	if f.Status == engine.StatusEnd || f.Status == engine.StatusOnce {
		s.endSent.Store(true)
		// The last result must come within Timeout; the reader fails the session else.
		_ = s.conn.SetReadDeadline(time.Now().Add(s.e.spec.Timeout))
	}
	return nil
}

// read maps every upstream message to a result until the END result, an error, or Close.
func (s *wsSession) read() {
	defer close(s.done)
	for {
		_, msg, err := s.conn.ReadMessage()
		if err != nil {
			s.readFailed(err)
			return
		}
		r, last := s.result(msg)
		if last && !s.ended.CompareAndSwap(false, true) {
			return
		}
		s.emit(r)
		if last {
			if r.Err != nil {
				s.e.m.outcome("ws", outcomeOf(r.Err))
			}
			return
		}
	}
}

func (s *wsSession) result(msg []byte) (engine.Result, bool) {
	took := time.Duration(0)
	if t := s.lastIn.Load(); t != 0 {
		took = time.Since(time.Unix(0, t))
	}
	v, err := parseJSON(msg)
	if err != nil {
		return engine.Result{Err: err}, true
	}
	a := s.e.spec.decodeAnswer(s.e.spec.SessionResponse, v, nil)
	if a.err != nil {
		return engine.Result{Err: a.err}, true
	}
	st := engine.StatusContinue
	if a.hasStatus {
		st = a.status
	}
	if st == engine.StatusOnce {
		st = engine.StatusEnd
	}
	return engine.Result{Status: st, Outputs: a.outputs, Engine: took}, st == engine.StatusEnd
}

func outcomeOf(err error) string {
	switch aserr.CodeOf(err) {
	case aserr.ErrInvalidResult.Code:
		return outcomeBadAnswer
	case aserr.ErrUpstreamTimeout.Code:
		return outcomeTimeout
	case aserr.ErrUpstreamClosed.Code:
		return outcomeClosed
	}
	return outcomeCode
}

// readFailed ends the session after a read error: an upstream that closes normally after
// the END frame ends it with an END result; anything else before the END result is an
// error result (10225 when the last result did not come in time, 10227 otherwise, 10160
// for an oversized message).
func (s *wsSession) readFailed(err error) {
	if s.closing.Load() || !s.ended.CompareAndSwap(false, true) {
		return
	}
	var ce *websocket.CloseError
	var ne net.Error
	var r engine.Result
	switch {
	case errors.As(err, &ce) && ce.Code == websocket.CloseNormalClosure && s.endSent.Load():
		s.emit(engine.Result{Status: engine.StatusEnd})
		return
	case errors.Is(err, websocket.ErrReadLimit):
		r.Err = fmt.Errorf("upstream message larger than %d bytes: %w", s.e.spec.MaxResponseBytes, aserr.ErrInvalidResult)
	case errors.As(err, &ne) && ne.Timeout():
		r.Err = fmt.Errorf("upstream sent no last result within %s of the last frame: %w", s.e.spec.Timeout, aserr.ErrUpstreamTimeout)
	case errors.As(err, &ce):
		reason := ce.Text
		if reason == "" {
			reason = "no reason"
		}
		r.Err = fmt.Errorf("upstream closed the session before its end (close %d, %s): %w", ce.Code, reason, aserr.ErrUpstreamClosed)
	default:
		r.Err = fmt.Errorf("upstream connection lost before the session's end: %w", aserr.ErrUpstreamClosed)
	}
	s.e.m.outcome("ws", outcomeOf(r.Err))
	s.emit(r)
}

// Close ends the upstream session: a close frame (1000; it fails harmlessly when the
// upstream closed first), then the connection is closed and the reader waited for.
func (s *wsSession) Close() error {
	s.once.Do(func() {
		s.closing.Store(true)
		_ = s.conn.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseNormalClosure, "session closed"), time.Now().Add(time.Second))
		_ = s.conn.Close()
		<-s.done
	})
	return nil
}
