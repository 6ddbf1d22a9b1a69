package transport

import (
	"context"
	"fmt"
	"net/http"
	"sync"

	"github.com/athenaserving/asf/services/webgate/gate"
	"github.com/athenaserving/asf/services/webgate/transport/oip"
	"github.com/athenaserving/asf/services/webgate/transport/webapi"
)

// requests counts the HTTP requests in flight that are not WebSocket sessions (once and
// OIP requests; gate.Sessions counts the sessions) and refuses new ones once draining.
type requests struct {
	mu       sync.Mutex
	draining bool
	wg       sync.WaitGroup
}

// begin counts a new request; false means the handler drains. Every true begin is
// followed by one end.
func (q *requests) begin() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.draining {
		return false
	}
	q.wg.Add(1)
	return true
}

func (q *requests) end() { q.wg.Done() }

func (q *requests) drain() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.draining = true
}

func (q *requests) isDraining() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.draining
}

// wait waits until the requests counted have ended or ctx ends. Only after drain may it
// run while requests begin (no Add races the Wait then).
func (q *requests) wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { // ends with the last request, even if ctx ends first
		q.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for http requests: %w", ctx.Err())
	}
}

// Drain starts the drain: every new request — once, OIP or WebSocket handshake — is
// answered 503 with the error 10222 "server shutting down" (the ASE or WebAPI 2.0 error
// body; OIP's {"error":...}) and the connection is closed after it, while the requests
// and sessions already running go on. Wait waits for them.
func (h *Handler) Drain() {
	h.requests.drain()
	h.g.Sessions().Refuse()
}

// drainMiddleware refuses new requests once Drain was called and counts the once and OIP
// requests it lets through, so that Wait covers them.
func (h *Handler) drainMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := gate.RequestFrom(r.Context())
		if info.Stream { // a session: counted by gate.Sessions when it begins
			if h.requests.isDraining() {
				writeShuttingDown(w, info)
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		if !h.requests.begin() {
			writeShuttingDown(w, info)
			return
		}
		defer h.requests.end()
		next.ServeHTTP(w, r)
	})
}

// writeShuttingDown answers a request refused by the drain: 503, Connection: close, and
// 10222 "server shutting down" in the body of the request's protocol.
func writeShuttingDown(w http.ResponseWriter, info *gate.Request) {
	code, msg := gate.ErrShuttingDown.Code, gate.ErrShuttingDown.Msg
	info.Code = code
	w.Header().Set("Connection", "close")
	if info.OIP != "" {
		oip.WriteError(w, http.StatusServiceUnavailable, msg)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = w.Write(webapi.AppendError(nil, info, code, msg, ""))
}
