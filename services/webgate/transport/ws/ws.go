// Package ws is webgate's WebSocket adapter: one session per connection, many sub-sessions
// (keyed by cid) on a multiplexed one, in the ASE or the WebAPI 2.0 envelope, and the
// WebAPI 2.0 retry that moves a session to a new socket. It reads and writes messages;
// the gate validates frames, bounds sessions, keeps the sub-session books and calls atom.
package ws

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/athenaserving/asf/libs/aserr"
	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
	"github.com/athenaserving/asf/services/webgate/ase"
	"github.com/athenaserving/asf/services/webgate/gate"
	"github.com/athenaserving/asf/services/webgate/transport/httpio"
	"github.com/athenaserving/asf/services/webgate/transport/webapi"
	"github.com/gorilla/websocket"
	"go.opentelemetry.io/otel/trace"
)

const (
	// writeWait bounds every write to a socket, so a stalled client cannot hold a session.
	writeWait = 10 * time.Second
	// closeWait is how long a connection waits for the client's reply to its close frame.
	closeWait = time.Second
	// maxCloseReason is the longest close reason a close frame can carry.
	maxCloseReason = 123
	// statusUnset marks a frame without header.status until its sub-session decides.
	statusUnset int32 = -1
)

// Options configures a Server.
type Options struct {
	// MaxFrameBytes bounds one WebSocket message (10163 beyond it); it must be positive.
	MaxFrameBytes int64
	// RetryWait is how long a WebAPI 2.0 session whose capability enables retry outlives
	// its dropped WebSocket, waiting for common.cmd "retry" on a new one; 0 means
	// DefaultRetryWait.
	RetryWait time.Duration
	// Tracer traces the frames of sampled sessions (a span "frame" each: the first two
	// always, later ones at the session's sample rate); nil: none.
	Tracer trace.Tracer
}

// Server serves the WebSocket sessions of a gate. It is safe for concurrent use.
type Server struct {
	g        *gate.Gate
	opts     Options
	upgrader websocket.Upgrader
	parked   parkedSessions // WebAPI 2.0 sessions waiting for a retry
}

// New returns a Server of g.
func New(g *gate.Gate, opts Options) *Server {
	if opts.RetryWait <= 0 {
		opts.RetryWait = DefaultRetryWait
	}
	return &Server{
		g:    g,
		opts: opts,
		upgrader: websocket.Upgrader{
			HandshakeTimeout: 10 * time.Second,
			ReadBufferSize:   4096,
			WriteBufferSize:  4096,
			// Browser clients of every origin are allowed; HMAC auth decides access.
			CheckOrigin: func(*http.Request) bool { return true },
		},
	}
}

type connEventKind int

const (
	evClientGone connEventKind = iota // the read side failed: the client closed or vanished
	evFatal                           // the connection cannot go on (oversized message)
	evHandedOff                       // a WebAPI 2.0 retry took the socket over (retry.go)
)

type connEvent struct {
	kind connEventKind
	err  error
}

// wsConn is one WebSocket connection carrying one session, or, in multiplex mode, many
// sub-sessions keyed by header.cid.
//
// Goroutines: the handler goroutine runs serve (idle timer, kicks, shutdown, sub-session
// ends, closing); the reader goroutine reads and parses messages and hands each to its
// sub-session, starting one on its first frame; every sub-session runs its own goroutine
// (its first frame, its timers, its end) and an atom receiver that writes its results
// (session.go tells which goroutine handles a frame). Socket writes are serialised by wmu.
// wg tracks the reader, subWG the sub-sessions. The reader marks activity (active) rather
// than waking serve per message: the idle timer re-arms itself for what is left.
// Lock order: a sub-session's omu before mu and before wmu; mu before wmu (never held
// together in practice); mu before the Limiter's locks (sub-session leases are taken and
// released under mu, by subs).
type wsConn struct {
	h      *Server
	conn   *websocket.Conn
	info   *gate.Request
	ctx    context.Context
	cancel context.CancelFunc
	events chan connEvent
	notify chan struct{} // a sub-session ended (coalesced)

	readerDone chan struct{}
	wg         sync.WaitGroup
	subWG      sync.WaitGroup
	wmu        sync.Mutex

	// Write coalescing of a multiplexed connection (batch.go); nil batch: none.
	batch *batchConn
	live  atomic.Int32 // sub-sessions running
	yield func()       // runtime.Gosched; tests pause here
	werr  error        // under wmu: a failed batch write; every later write fails with it

	mu       sync.Mutex
	subs     *gate.Subs[*subSession] // the sub-sessions, their slots and leases
	finished []subResult
	stopping bool
	started  bool // a (non-multiplexed) session has begun
	lastCode atomic.Int64
	active   atomic.Int64 // monotonic time of the last message or sub-session end (sinceEpoch)

	// WebAPI 2.0 retry (retry.go). Under wmu: conn (written only by the serve
	// goroutine, which alone reads it unlocked), parked, pending.
	parked    bool                 // the socket dropped: writes are held in pending
	pending   [][]byte             // messages held while parked
	attach    chan *websocket.Conn // a retry's socket for a parked connection
	handedOff atomic.Bool          // this socket now carries a parked connection's session
}

type subResult struct {
	code int
	msg  string
	cut  bool // ended by the connection's end (client gone, socket closing), not by its own result or error
}

type inMsg struct {
	f    *atompb.Frame
	data []byte
	buf  *msgBuf // data's pooled buffer; nil when data is not pooled
	err  error
}

// Serve upgrades the request of info's session and serves the connection until its end.
func (h *Server) Serve(w http.ResponseWriter, r *http.Request, info *gate.Request) {
	if !h.g.Sessions().Begin() { // shutting down (transport's drain answers the same before)
		info.Code = gate.ErrShuttingDown.Code
		w.Header().Set("Connection", "close")
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write(webapi.AppendError(nil, info, gate.ErrShuttingDown.Code, gate.ErrShuttingDown.Msg, ""))
		return
	}
	defer h.g.Sessions().End()

	uw := w
	var bw *batchWriter
	if hj, ok := w.(http.Hijacker); ok && info.Multiplex {
		bw = &batchWriter{ResponseWriter: w, hj: hj}
		uw = bw
	}
	conn, err := h.upgrader.Upgrade(uw, r, traceHeaders(w.Header()))
	if err != nil { // the upgrader has answered with an HTTP error
		info.Code = aserr.ErrBadRequest.Code
		info.Log.Debug().Err(err).Msg("websocket upgrade")
		return
	}
	// Messages beyond MaxFrameBytes are refused by readMessage with a 10163 error frame;
	// the rest of such a message is then drained (never kept) so that the client, still
	// writing it, reads that frame rather than a reset. This backstop bounds the drain:
	// past it gorilla closes with 1009.
	conn.SetReadLimit(4*h.opts.MaxFrameBytes + 1<<20)
	ctx, cancel := context.WithCancel(r.Context())
	c := &wsConn{
		h: h, conn: conn, info: info, ctx: ctx, cancel: cancel,
		events:     make(chan connEvent, 8),
		notify:     make(chan struct{}, 1),
		readerDone: make(chan struct{}),
		subs:       gate.NewSubs[*subSession](h.g, info),
		attach:     make(chan *websocket.Conn, 1),
	}
	if bw != nil {
		c.batch, c.yield = bw.conn, runtime.Gosched
	}
	c.touch()
	info.Code = c.serve()
	c.cancel()
	if !c.handedOff.Load() {
		_ = c.conn.Close() // the socket of the session's end, after a retry a later one
	}
	c.wg.Wait()
	c.subWG.Wait()
	c.mu.Lock()
	c.subs.ReleaseAll()
	c.mu.Unlock()
}

// touch records activity on the connection: it restarts the idle timeout.
func (c *wsConn) touch() { c.active.Store(sinceEpoch()) }

// serve is the connection loop; it returns the connection's final ASE code.
func (c *wsConn) serve() int {
	c.wg.Add(1)
	go c.readLoop(c.conn, c.readerDone)
	idleTO, _ := c.h.g.Timeouts(c.info)
	idle := time.NewTimer(idleTO)
	defer idle.Stop()
	for {
		select {
		case ev := <-c.events:
			switch ev.kind {
			case evClientGone:
				if c.resumable(ev.err) && c.park() {
					c.touch()
					continue
				}
				c.cancel() // aborts every atom stream at once: loader slots are freed
				c.subWG.Wait()
				// Every sub-session has ended and recorded its code. One that had sent its
				// last result (or its error frame) before the client dropped keeps its real
				// code; one cut off by the drop counts 10222, and so does a socket dropped
				// before any session began unless it was closed normally.
				cut := false
				for _, r := range c.takeFinished() {
					c.lastCode.Store(int64(r.code))
					cut = cut || r.cut
				}
				if !cut && (c.hasStarted() || websocket.IsCloseError(ev.err, websocket.CloseNormalClosure, websocket.CloseGoingAway)) {
					return int(c.lastCode.Load())
				}
				c.info.Log.Debug().Err(ev.err).Msg("client gone before the end of the session")
				return aserr.ErrNetwork.Code
			case evFatal:
				return c.end(ev.err, websocket.CloseNormalClosure)
			case evHandedOff:
				return 0
			}
		case <-c.notify:
			if code, done := c.reapFinished(); done {
				return code
			}
			c.touch()
		case <-idle.C:
			if left := idleTO - time.Duration(sinceEpoch()-c.active.Load()); left > 0 {
				idle.Reset(left) // activity since the timer was set
				continue
			}
			// A sub-session that ended just now (its own read timeout, say) has sent its
			// frame already: it decides the close, not the idle timer.
			if code, done := c.reapFinished(); done {
				return code
			}
			if c.activeSubs() == 0 {
				return c.end(aserr.ErrReadTimeout, websocket.CloseNormalClosure)
			}
			idle.Reset(idleTO)
		case err := <-c.info.Kicked():
			return c.end(err, websocket.CloseNormalClosure)
		case <-c.h.g.Sessions().GoingAway():
			c.stopAll(gate.ErrShuttingDown)
			c.closeWith(websocket.CloseGoingAway, "going away")
			return aserr.ErrNetwork.Code
		}
	}
}

// reapFinished records the codes of the sub-sessions that ended; on a connection without
// multiplexing the first one ends the connection: done is true and code is its code.
func (c *wsConn) reapFinished() (code int, done bool) {
	for _, r := range c.takeFinished() {
		c.lastCode.Store(int64(r.code))
		if !c.info.Multiplex {
			c.closeWith(websocket.CloseNormalClosure, r.msg)
			return r.code, true
		}
	}
	return 0, false
}

// end stops every sub-session with err (each sends its error frame), sends err as a
// connection-level error frame when no sub-session did, and closes the socket.
func (c *wsConn) end(err error, closeCode int) int {
	code, msg := aserr.CodeOf(err), aserr.MessageOf(err)
	if c.stopAll(err) == 0 {
		_ = c.write(webapi.AppendError(nil, c.info, code, msg, ""))
	}
	c.closeWith(closeCode, ase.PublicMessage(code, msg))
	return code
}

// stopAll makes every sub-session end with err and waits for them; it returns how many
// there were. No sub-session starts afterwards.
func (c *wsConn) stopAll(err error) int {
	c.mu.Lock()
	c.stopping = true
	subs := c.subs.All()
	c.mu.Unlock()
	for _, s := range subs {
		select {
		case s.stop <- err:
		default:
		}
	}
	c.subWG.Wait()
	return len(subs)
}

// hasStarted reports whether a session (or sub-session) began on this socket.
func (c *wsConn) hasStarted() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.started
}

func (c *wsConn) activeSubs() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.subs.Len()
}

func (c *wsConn) takeFinished() []subResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.finished
	c.finished = nil
	return out
}

// closeWith sends a close frame, cancels every atom stream and waits (bounded) for the
// client's close reply, which ends the reader.
func (c *wsConn) closeWith(code int, reason string) {
	if c.handedOff.Load() {
		c.cancel()
		return
	}
	msg := websocket.FormatCloseMessage(code, truncateReason(reason))
	_ = c.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(writeWait))
	c.cancel()
	_ = c.conn.SetReadDeadline(time.Now().Add(closeWait))
	<-c.readerDone
}

// write sends message b to the client.
func (c *wsConn) write(b []byte) error {
	if c.batch != nil {
		return c.writeBatched(b)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeLocked(b)
}

// writeLocked writes b with wmu held; on a connection that may be resumed (WebAPI 2.0
// retry) a message that cannot be written is held for the next socket instead.
func (c *wsConn) writeLocked(b []byte) error {
	if c.handedOff.Load() {
		return nil // the socket belongs to a resumed session now
	}
	if c.parked {
		c.hold(b)
		return nil
	}
	_ = c.conn.SetWriteDeadline(time.Now().Add(writeWait))
	if err := c.conn.WriteMessage(websocket.TextMessage, b); err != nil {
		if !c.retryable() {
			return err
		}
		c.parked = true
		c.hold(b)
		_ = c.conn.Close() // the reader notices and the connection parks
		return nil
	}
	c.h.g.Metrics().Sent(len(b))
	return nil
}

func (c *wsConn) emit(ev connEvent) {
	select {
	case c.events <- ev:
	case <-c.ctx.Done():
	}
}

// readMessage reads one message of at most MaxFrameBytes into a pooled buffer.
func (c *wsConn) readMessage(conn *websocket.Conn) (*msgBuf, error) {
	_, r, err := conn.NextReader()
	if err != nil {
		return nil, err
	}
	max := c.h.opts.MaxFrameBytes
	mb := getMsgBuf()
	mb.b, err = httpio.ReadLimited(r, max+1, mb.b[:0])
	if err != nil {
		putMsgBuf(mb)
		return nil, err
	}
	if int64(len(mb.b)) > max {
		putMsgBuf(mb)
		return nil, gate.TooLarge("websocket message larger than %d bytes", max)
	}
	return mb, nil
}

// Message buffers are reused: nothing parsed from a message refers to its bytes (the frame
// and the schema document hold copies), so a message's buffer goes back to the pool once
// its sub-session handled it. The pool holds the msgBuf that carries the slice, so
// returning a buffer allocates nothing.
const (
	msgBufSize   = 4096     // a typical frame fits
	maxPooledBuf = 64 << 10 // larger buffers are left to the collector
)

// msgBuf is a pooled message buffer.
type msgBuf struct{ b []byte }

var msgBufs = sync.Pool{New: func() any { return &msgBuf{b: make([]byte, 0, msgBufSize)} }}

func getMsgBuf() *msgBuf { return msgBufs.Get().(*msgBuf) }

// putMsgBuf returns mb (nil: nothing) to the pool.
func putMsgBuf(mb *msgBuf) {
	if mb == nil || cap(mb.b) > maxPooledBuf {
		return
	}
	mb.b = mb.b[:0]
	msgBufs.Put(mb)
}

// readLoop reads client messages of conn and dispatches them to sub-sessions; it closes
// done when it returns. After the connection starts ending it keeps reading only to
// notice the client's close.
func (c *wsConn) readLoop(conn *websocket.Conn, done chan struct{}) {
	defer c.wg.Done()
	defer close(done)
	for {
		mb, err := c.readMessage(conn)
		if err != nil {
			if tl := (*gate.ErrTooLarge)(nil); errors.As(err, &tl) {
				c.emit(connEvent{kind: evFatal, err: err})
				continue
			}
			c.emit(connEvent{kind: evClientGone, err: err})
			return
		}
		c.h.g.Metrics().Received(len(mb.b))
		c.touch()
		c.dispatch(mb)
		if c.handedOff.Load() {
			c.emit(connEvent{kind: evHandedOff})
			return
		}
	}
}

// dispatch hands a message to its sub-session, which releases its buffer after handling
// it; a message that goes nowhere is released here.
func (c *wsConn) dispatch(mb *msgBuf) {
	var pre error
	data := mb.b
	if c.info.WebAPI {
		var ok bool
		data, pre, ok = c.envelope(data)
		putMsgBuf(mb) // the envelope's ASE JSON is a copy
		mb = nil
		if !ok {
			return
		}
	}
	if !c.route(data, mb, pre) {
		putMsgBuf(mb)
	}
}

// envelope maps a WebAPI 2.0 message to ASE request JSON (a copy: the message's buffer
// may be reused once it returns) and answers the commands that go no further: kpal, retry
// (the socket goes to the session it resumes) and close of a sub-session that is not
// running. A message that does not
// decode ends the session like an ASE message that does not parse (pre); in multiplex
// mode it is answered alone. ok is false when nothing is left to route.
func (c *wsConn) envelope(data []byte) (out []byte, pre error, ok bool) {
	m, err := webapi.Decode(c.info, data, false)
	if err == nil && c.info.Multiplex && m.Cid == "" {
		err = aserr.New(aserr.ErrBadRequest.Code, "common.cid is required in multiplex mode")
	}
	if err == nil && m.Cmd == webapi.CmdRetry {
		err = c.retry(m)
	}
	switch {
	case err != nil && !c.info.Multiplex:
		return nil, err, true
	case err != nil:
		_ = c.write(webapi.AppendError(nil, c.info, aserr.CodeOf(err), aserr.MessageOf(err), m.Cid))
		return nil, nil, false
	case m.Cmd == webapi.CmdKeepAlive:
		_ = c.write(webapi.AppendKeepAlive(nil, c.info.SID, m.Cid))
		return nil, nil, false
	case m.Cmd == webapi.CmdRetry: // taken by a waiting session (retry.go)
		return nil, nil, false
	case m.Cmd == webapi.CmdClose && c.info.Multiplex && !c.running(m.Cid):
		// A close of a sub-session that ended (or never began) has nothing left to end:
		// clients send it after every session, after an error too.
		return nil, nil, false
	}
	return m.ASE, nil, true
}

// route parses a message and hands it to its sub-session, starting one when needed; it
// reports whether the sub-session took the message (and its buffer mb). pre is an error
// found before parsing (a WebAPI 2.0 message that did not decode).
func (c *wsConn) route(data []byte, mb *msgBuf, pre error) bool {
	var f *atompb.Frame
	perr := pre
	if pre == nil {
		f, perr = ase.ParseFrame(data, c.info.Capability, statusUnset)
	}
	cid := ""
	if c.info.Multiplex {
		if perr != nil {
			cid = probeCID(data)
		} else {
			cid = f.GetHeader()["cid"]
		}
		if cid == "" {
			if perr == nil {
				perr = aserr.New(aserr.ErrBadRequest.Code, "header.cid is required in multiplex mode")
			}
			_ = c.write(webapi.AppendError(nil, c.info, aserr.CodeOf(perr), aserr.MessageOf(perr), ""))
			return false
		}
	}
	c.mu.Lock()
	s, _ := c.subs.Get(cid)
	running := s != nil
	if s == nil && c.info.Multiplex && perr != nil {
		// A broken frame cannot begin a sub-session: answer it alone.
		c.mu.Unlock()
		_ = c.write(webapi.AppendError(nil, c.info, aserr.CodeOf(perr), aserr.MessageOf(perr), cid))
		return false
	}
	if s == nil {
		switch {
		case c.stopping:
			c.mu.Unlock()
			return false
		case !c.info.Multiplex && c.started:
			c.mu.Unlock()
			c.info.Log.Debug().Msg("frame after the end of the session ignored")
			return false
		case c.info.Multiplex && perr == nil && (f.Status == ase.StatusContinue || f.Status == ase.StatusEnd) && c.subs.Ended(cid):
			c.mu.Unlock()
			return false
		}
		if c.info.Multiplex {
			if err := c.subs.Admit(func() { c.stopNewestSub(gate.ErrConnLimit) }); err != nil {
				// Late frames of the refused sub-session are dropped like an ended one's.
				c.subs.Remember(cid)
				c.mu.Unlock()
				_ = c.write(webapi.AppendError(nil, c.info, aserr.CodeOf(err), aserr.MessageOf(err), cid))
				return false
			}
		}
		s = c.newSub(cid)
		c.subs.Add(cid, s)
		c.started = true
		c.live.Add(1)
		c.subWG.Add(1)
		go s.run()
	}
	c.mu.Unlock()
	m := inMsg{f: f, data: data, buf: mb, err: perr}
	if running && perr == nil && s.queued.Load() == 0 {
		// Every earlier frame of the sub-session has been handled (the first one, which
		// opens the stream, on its goroutine): this one is handled here, without a hand-off.
		select {
		case <-s.done:
			return false
		default:
		}
		s.handleNow(m)
		return true
	}
	s.queued.Add(1)
	select {
	case s.in <- m:
		return true
	case <-s.done:
	case <-c.ctx.Done():
	}
	s.queued.Add(-1)
	return false
}

// probeCID reads header.cid from a message that failed to parse as a frame (for example
// for bad base64), so the error goes to the right sub-session.
func probeCID(data []byte) string {
	var probe struct {
		Header struct {
			Cid json.RawMessage `json:"cid"`
		} `json:"header"`
	}
	if json.Unmarshal(data, &probe) != nil {
		return ""
	}
	var cid string
	if len(probe.Header.Cid) == 0 || string(probe.Header.Cid) == "null" {
		return ""
	}
	if json.Unmarshal(probe.Header.Cid, &cid) != nil {
		return strings.Trim(string(probe.Header.Cid), `"`)
	}
	return cid
}

// stopNewestSub ends the most recently started sub-session with err: a lowered app limit
// takes back the newest sub-session's lease first.
func (c *wsConn) stopNewestSub(err error) {
	c.mu.Lock()
	newest, ok := c.subs.Newest()
	c.mu.Unlock()
	if ok {
		select {
		case newest.stop <- err:
		default:
		}
	}
}

// truncateReason cuts reason to fit a close frame, on a rune boundary.
func truncateReason(reason string) string {
	if len(reason) <= maxCloseReason {
		return reason
	}
	cut := maxCloseReason
	for cut > 0 && !utf8.RuneStart(reason[cut]) {
		cut--
	}
	return reason[:cut]
}
