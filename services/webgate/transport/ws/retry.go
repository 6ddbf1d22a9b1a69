package ws

import (
	"bytes"
	"sync"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/services/webgate/transport/webapi"
	"github.com/gorilla/websocket"
)

// WebAPI 2.0 session resumption (ASF's "retry"): when the WebSocket of a session whose
// capability's webapi block sets enable_retry drops before the session ended, the session
// goes on without a socket for RetryWait — its atom stream stays open, results are held —
// and a client that reconnects and sends {"common":{"app_id":…,"cmd":"retry","sid":<the
// session's sid>}} as the first message of the new WebSocket gets the session back: the
// held results first, then the session as before, on the new socket. The handler that
// served the first socket keeps owning the session (its goroutines, its app lease); the
// new socket is handed over to it.

// DefaultRetryWait is how long a dropped session waits for a retry when Options.RetryWait
// is not set (ASF's session_close_wait).
const DefaultRetryWait = 5 * time.Second

// maxHeldBytes bounds the results a session without a socket holds; beyond it the
// session ends.
const maxHeldBytes = 8 << 20

// ErrNoSession answers a retry whose sid names no session waiting for one: unknown, of
// another capability or app, already resumed, or past its wait.
var ErrNoSession = aserr.New(10165, "invalid session handle: no session of this sid waits for a retry")

// parkedSessions are the sessions waiting for a retry, by sid.
type parkedSessions struct {
	mu sync.Mutex
	m  map[string]*wsConn
}

func (p *parkedSessions) put(sid string, c *wsConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[string]*wsConn{}
	}
	p.m[sid] = c
}

// remove takes c out; false means a retry took it first (its socket is on the way).
func (p *parkedSessions) remove(sid string, c *wsConn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m[sid] != c {
		return false
	}
	delete(p.m, sid)
	return true
}

// take takes the session of sid out when accept agrees; nil when there is none.
func (p *parkedSessions) take(sid string, accept func(*wsConn) bool) *wsConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.m[sid]
	if c == nil || !accept(c) {
		return nil
	}
	delete(p.m, sid)
	return c
}

// Parked returns how many WebAPI 2.0 sessions wait for a retry.
func (h *Server) Parked() int {
	h.parked.mu.Lock()
	defer h.parked.mu.Unlock()
	return len(h.parked.m)
}

// Held returns how many results the sessions waiting for a retry hold for their client.
func (h *Server) Held() int {
	h.parked.mu.Lock()
	defer h.parked.mu.Unlock()
	n := 0
	for _, c := range h.parked.m {
		c.wmu.Lock()
		n += len(c.pending)
		c.wmu.Unlock()
	}
	return n
}

// retryable reports whether the connection's session may outlive its socket.
func (c *wsConn) retryable() bool {
	if !c.info.WebAPI || c.info.Multiplex || c.info.Schema == nil {
		return false
	}
	spec := c.info.Schema.WebAPI()
	return spec != nil && spec.Retry()
}

// resumable reports whether a socket that ended with err leaves a session to resume: one
// began and has not delivered everything, and the client did not close on purpose.
func (c *wsConn) resumable(err error) bool {
	if !c.retryable() || websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway) {
		return false
	}
	c.mu.Lock()
	live := c.started && !c.stopping && c.subs.Len() > 0
	c.mu.Unlock()
	c.wmu.Lock()
	held := len(c.pending) > 0
	c.wmu.Unlock()
	return live || held
}

// hold keeps a message for the next socket; called with wmu held.
func (c *wsConn) hold(b []byte) {
	n := len(b)
	for _, p := range c.pending {
		n += len(p)
	}
	if n > maxHeldBytes {
		c.info.Log.Warn().Int("bytes", n).Msg("results held for a retry over the bound: session ended")
		c.cancel()
		return
	}
	c.pending = append(c.pending, bytes.Clone(b))
}

// park holds the session without a socket until a retry brings one (true: the session
// goes on) or the wait ends (false). It runs on the serve goroutine.
func (c *wsConn) park() bool {
	wait := c.h.opts.RetryWait
	c.wmu.Lock()
	c.parked = true
	c.wmu.Unlock()
	sid := c.info.SID
	c.h.parked.put(sid, c)
	c.info.Log.Debug().Dur("wait", wait).Msg("websocket dropped: session waits for a retry")
	t := time.NewTimer(wait)
	defer t.Stop()
	var conn *websocket.Conn
	select {
	case conn = <-c.attach:
	case <-t.C:
	case <-c.h.g.Sessions().GoingAway():
	case <-c.ctx.Done():
	}
	if conn == nil && !c.h.parked.remove(sid, c) {
		conn = <-c.attach // a retry took the session just now: its socket is on the way
	}
	if conn == nil {
		c.info.Log.Debug().Msg("no retry: session ended")
		return false
	}
	if c.ctx.Err() != nil {
		_ = conn.Close()
		return false
	}
	c.resume(conn)
	c.info.Log.Debug().Msg("session resumed on a new websocket")
	return true
}

// resume moves the session to conn: the held results are written first, then a reader
// starts on it. It runs on the serve goroutine, which alone swaps c.conn and readerDone.
func (c *wsConn) resume(conn *websocket.Conn) {
	c.wmu.Lock()
	old := c.conn
	c.conn = conn
	c.parked = false
	held := c.pending
	c.pending = nil
	for _, b := range held {
		_ = c.writeLocked(b) // a socket that fails at once parks the rest again
	}
	c.wmu.Unlock()
	_ = old.Close()
	c.readerDone = make(chan struct{})
	c.wg.Add(1)
	go c.readLoop(conn, c.readerDone)
}

// retry hands this socket to the session that m's common.sid names; the socket's own
// connection then ends without a word (its handler returns, the session's handler writes).
func (c *wsConn) retry(m webapi.Msg) error {
	switch {
	case c.info.Multiplex:
		return aserr.New(aserr.ErrBadRequest.Code, "common.cmd retry is not available in multiplex mode")
	case !c.retryable():
		return aserr.Newf(aserr.ErrBadRequest.Code, "common.cmd retry: capability %s does not enable retry", c.info.Capability)
	case m.Sid == "":
		return aserr.New(aserr.ErrBadRequest.Code, "common.sid is required with common.cmd retry")
	case c.hasStarted():
		return aserr.New(aserr.ErrBadRequest.Code, "common.cmd retry must be the first message of a websocket")
	}
	appID := ""
	if c.info.App != nil {
		appID = c.info.App.ID
	}
	p := c.h.parked.take(m.Sid, func(p *wsConn) bool {
		pApp := ""
		if p.info.App != nil {
			pApp = p.info.App.ID
		}
		return p.info.Capability == c.info.Capability && pApp == appID
	})
	if p == nil {
		return ErrNoSession
	}
	c.info.Log.Debug().Str("resumed_sid", m.Sid).Msg("websocket handed to a waiting session")
	c.handedOff.Store(true) // before the send: this connection writes nothing more
	p.attach <- c.conn      // buffered, and only the taker sends
	return nil
}

// running reports whether sub-session cid runs on this socket.
func (c *wsConn) running(cid string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.subs.Get(cid)
	return ok
}
