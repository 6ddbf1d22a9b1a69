package transport

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/grpcx"
	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
	"github.com/athenaserving/asf/services/webgate/ase"
	"github.com/gorilla/websocket"
)

const (
	// writeWait bounds every write to a socket, so a stalled client cannot hold a session.
	writeWait = 10 * time.Second
	// closeWait is how long a session waits for the client's reply to its close frame.
	closeWait = time.Second
	// maxCloseReason is the longest close reason a close frame can carry.
	maxCloseReason = 123
)

type wsEventKind int

const (
	evInbound    wsEventKind = iota // a client frame was sent to atom
	evResult                        // atom sent a result
	evFailed                        // parse, filter or atom error: the session ends with an error frame
	evStreamEnd                     // atom ended the stream
	evClientGone                    // the socket's read side failed: the client closed or vanished
)

type wsEvent struct {
	kind wsEventKind
	res  *atompb.Result
	err  error
}

// wsSession is one WebSocket session bound to one Atom.Stream.
//
// Goroutines: the handler goroutine runs the session loop and is the only writer of data
// frames; the reader goroutine reads client frames and sends them to atom; the receiver
// goroutine (started with the stream) receives atom results. Both report to the loop through
// events and stop when ctx is cancelled or the socket is closed; wg tracks them.
type wsSession struct {
	h          *Handler
	conn       *websocket.Conn
	info       *RequestInfo
	r          *http.Request
	ctx        context.Context
	cancel     context.CancelFunc
	events     chan wsEvent
	readerDone chan struct{}
	wg         sync.WaitGroup
	buf        []byte // render buffer, reused by the single writer
}

// serveWebSocket upgrades the request and runs one session until its end.
func (h *Handler) serveWebSocket(w http.ResponseWriter, r *http.Request, info *RequestInfo) {
	h.mu.Lock()
	if h.closing {
		h.mu.Unlock()
		info.Code = aserr.ErrNetwork.Code
		writeMessage(w, http.StatusServiceUnavailable, "service unavailable")
		return
	}
	h.sessions.Add(1)
	h.mu.Unlock()
	defer h.sessions.Done()

	conn, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil { // the upgrader has answered with an HTTP error
		info.Code = aserr.ErrBadRequest.Code
		info.Log.Debug().Err(err).Msg("websocket upgrade")
		return
	}
	conn.SetReadLimit(h.opts.MaxBodyBytes)
	h.metrics.sessions.Inc()
	defer h.metrics.sessions.Dec()

	ctx, cancel := context.WithCancel(r.Context())
	s := &wsSession{
		h: h, conn: conn, info: info, r: r, ctx: ctx, cancel: cancel,
		events:     make(chan wsEvent, 8),
		readerDone: make(chan struct{}),
	}
	info.Code = s.run()
	s.cancel()
	_ = s.conn.Close()
	s.wg.Wait()
}

// run is the session loop; it returns the session's final ASE code.
func (s *wsSession) run() int {
	s.wg.Add(1)
	go s.readLoop()

	readTimeout := s.h.opts.ReadTimeout
	read := time.NewTimer(readTimeout)
	defer read.Stop()
	life := time.NewTimer(s.h.opts.SessionTimeout)
	defer life.Stop()
	for {
		select {
		case ev := <-s.events:
			switch ev.kind {
			case evInbound:
				read.Reset(readTimeout)
			case evResult:
				res := ev.res
				if res.GetCode() != 0 {
					return s.fail(aserr.New(int(res.GetCode()), res.GetMessage()))
				}
				res.Sid = s.info.SID
				s.buf = s.h.opts.Renderer.AppendResult(s.buf[:0], res)
				if err := s.write(s.buf); err != nil {
					return s.abort(err)
				}
				read.Reset(readTimeout)
				if res.GetStatus() == ase.StatusEnd || res.GetStatus() == ase.StatusOnce {
					s.closeWith(websocket.CloseNormalClosure, "")
					return 0
				}
			case evFailed:
				return s.fail(ev.err)
			case evStreamEnd:
				return s.fail(aserr.New(aserr.ErrInvalidResult.Code, "stream ended before its last result"))
			case evClientGone:
				return s.abort(ev.err)
			}
		case <-read.C:
			return s.fail(aserr.ErrReadTimeout)
		case <-life.C:
			return s.fail(aserr.ErrSessionTimeout)
		case <-s.h.goingAway:
			s.cancel()
			s.closeWith(websocket.CloseGoingAway, "going away")
			return aserr.ErrNetwork.Code
		}
	}
}

// fail sends err as an error frame and closes the socket with 1000 and the message.
func (s *wsSession) fail(err error) int {
	code, msg := aserr.CodeOf(err), aserr.MessageOf(err)
	if code != aserr.ErrBadRequest.Code && code != aserr.ErrNotFound.Code {
		s.info.Log.Warn().Err(err).Int("code", code).Msg("session failed")
	}
	s.cancel() // abort the atom stream now; the loader slot is freed
	s.buf = ase.AppendError(s.buf[:0], code, msg, s.info.SID)
	if werr := s.write(s.buf); werr != nil {
		return s.abort(werr)
	}
	s.closeWith(websocket.CloseNormalClosure, msg)
	return code
}

// abort ends a session whose client is gone: the atom stream is cancelled at once.
func (s *wsSession) abort(err error) int {
	s.cancel()
	s.info.Log.Debug().Err(err).Msg("client gone before the end of the session")
	return aserr.ErrNetwork.Code
}

// closeWith sends a close frame, cancels the atom stream and waits (bounded) for the
// client's close reply, which ends the reader.
func (s *wsSession) closeWith(code int, reason string) {
	msg := websocket.FormatCloseMessage(code, truncateReason(reason))
	_ = s.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(writeWait))
	s.cancel()
	_ = s.conn.SetReadDeadline(time.Now().Add(closeWait))
	<-s.readerDone
}

func (s *wsSession) write(b []byte) error {
	_ = s.conn.SetWriteDeadline(time.Now().Add(writeWait))
	return s.conn.WriteMessage(websocket.TextMessage, b)
}

// emit hands ev to the session loop; it gives up when the session has ended.
func (s *wsSession) emit(ev wsEvent) bool {
	select {
	case s.events <- ev:
		return true
	case <-s.ctx.Done():
		return false
	}
}

// readLoop reads client frames, parses them and sends them on the session's Atom.Stream,
// opened with the first frame. After an error or the last frame it keeps reading only to
// notice the client's close.
func (s *wsSession) readLoop() {
	defer s.wg.Done()
	defer close(s.readerDone)
	var stream atompb.Atom_StreamClient
	first, done := true, false
	for {
		_, data, err := s.conn.ReadMessage()
		if err != nil {
			s.emit(wsEvent{kind: evClientGone, err: err})
			return
		}
		if done {
			s.info.Log.Debug().Msg("frame after the end of the session ignored")
			continue
		}
		f, err := s.frame(data, first)
		if err == nil && stream == nil {
			stream, err = s.h.atom.Stream(s.ctx)
			if err == nil {
				s.wg.Add(1)
				go s.recvLoop(stream)
			} else {
				err = grpcx.FromStatus(err)
			}
		}
		if err == nil {
			if serr := stream.Send(f); serr != nil && !errors.Is(serr, io.EOF) {
				err = grpcx.FromStatus(serr)
			}
			// io.EOF: atom ended the stream; the receiver reports why.
		}
		if err != nil {
			done = true
			s.emit(wsEvent{kind: evFailed, err: err})
			continue
		}
		first = false
		if f.Status == ase.StatusEnd || f.Status == ase.StatusOnce {
			done = true
			_ = stream.CloseSend()
		}
		s.emit(wsEvent{kind: evInbound})
	}
}

// frame parses one client message into a frame of this session.
func (s *wsSession) frame(data []byte, first bool) (*atompb.Frame, error) {
	def := ase.StatusContinue
	if first {
		def = ase.StatusBegin
	}
	f, err := ase.ParseFrame(data, s.info.Capability, def)
	if err != nil {
		return nil, err
	}
	f.Sid = s.info.SID
	if first {
		setClientIP(f, s.r)
	} else {
		f.Header = nil // the first frame's header applies to the whole session
	}
	for _, filter := range s.h.opts.Filters {
		if err := filter(s.ctx, f, first); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// recvLoop receives atom results until the stream ends.
func (s *wsSession) recvLoop(stream atompb.Atom_StreamClient) {
	defer s.wg.Done()
	for {
		res, err := stream.Recv()
		switch {
		case errors.Is(err, io.EOF):
			s.emit(wsEvent{kind: evStreamEnd})
			return
		case err != nil:
			s.emit(wsEvent{kind: evFailed, err: grpcx.FromStatus(err)})
			return
		}
		if !s.emit(wsEvent{kind: evResult, res: res}) {
			return
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
