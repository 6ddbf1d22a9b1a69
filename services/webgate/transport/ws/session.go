package ws

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
	"github.com/athenaserving/asf/services/webgate/ase"
	"github.com/athenaserving/asf/services/webgate/gate"
	"github.com/athenaserving/asf/services/webgate/transport/webapi"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

func (c *wsConn) newSub(cid string) *subSession {
	info := c.info
	if c.info.Multiplex {
		info = c.h.g.SubRequest(c.info, cid)
	}
	ctx, cancel := context.WithCancel(gate.WithRequest(c.ctx, info))
	s := &subSession{
		c: c, cid: cid, info: info, ctx: ctx, cancel: cancel, render: c.h.g.Renderer(info.Schema),
		in:      make(chan inMsg, 16),
		stop:    make(chan error, 1),
		results: make(chan subEvent, 8),
		done:    make(chan struct{}),
		start:   time.Now(),
	}
	s.touch()
	return s
}

type subEventKind int

const (
	evEnded     subEventKind = iota // the last result was sent, or sending a result failed (outcome)
	evFailed                        // atom failed, or sent a result with an error code
	evStreamEnd                     // atom ended the stream
)

type subEvent struct {
	kind subEventKind
	err  error
}

// subSession is one session bound to one Atom.Stream: the whole connection, or one cid of
// a multiplexed connection.
//
// Goroutines, per frame and result: the connection's reader hands a frame to handle itself
// when no earlier frame of the sub-session waits (queued is 0), else through in, in order,
// to the sub-session's goroutine (loop), which also handles the first frame (it opens the
// stream); recvLoop renders and writes every successful result itself. loop owns the
// timers and the end: it waits for in, stop, the timers and results' end events.
// Everything the sub-session writes to the client goes out under omu, where closed is set
// once the session's end is decided: by its last result, a failed write or an error
// frame. Nothing is written after that.
type subSession struct {
	c       *wsConn
	cid     string
	info    *gate.Request
	ctx     context.Context
	cancel  context.CancelFunc
	in      chan inMsg
	queued  atomic.Int32 // frames sent to in and not handled yet (written by the reader and loop)
	stop    chan error
	results chan subEvent
	done    chan struct{}
	recvWG  sync.WaitGroup
	active  atomic.Int64 // monotonic time of the last frame handled or result sent (sinceEpoch)

	// Input side: used by one goroutine at a time (loop while queued > 0, else the reader).
	stream    gate.Stream
	firstDoc  map[string]any
	inputDone bool
	frames    int // client frames handled, for the frame spans

	render ase.Renderer
	start  time.Time

	omu     sync.Mutex // output side, below
	closed  bool       // the session's outcome is decided: nothing more is written
	outcome int        // the code of the end decided by a result (0) or a failed write
	buf     []byte
	first   time.Duration
}

// epoch is the origin of the monotonic times of activity: time.Since(epoch) reads only
// the monotonic clock.
var epoch = time.Now()

func sinceEpoch() int64 { return int64(time.Since(epoch)) }

// touch records activity: a frame handled or a result sent restarts the read timeout.
func (s *subSession) touch() { s.active.Store(sinceEpoch()) }

// idleLeft is how much of the read timeout to is left since the last activity.
func (s *subSession) idleLeft(to time.Duration) time.Duration {
	return to - time.Duration(sinceEpoch()-s.active.Load())
}

// freeSlot takes the sub-session out of the socket's counts (MaxSubSessions, the app's
// leases) just before it writes its last frame.
func (s *subSession) freeSlot() {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	s.c.subs.Free(s.cid)
}

func (s *subSession) run() {
	c := s.c
	defer c.subWG.Done()
	c.h.g.Metrics().SessionOpened()
	code, msg := s.loop()
	// A session that had not delivered its last result when the connection ended was cut
	// off: it counts as a network error, whatever the abort made its last step return.
	cut := code != 0 && c.ctx.Err() != nil
	if cut {
		code = aserr.ErrNetwork.Code
	}
	s.cancel()
	s.recvWG.Wait()
	c.h.g.Metrics().SessionClosed()
	close(s.done)
	if c.info.Multiplex {
		label := c.h.g.Metrics().Label(s.info.Capability, code, s.info.Schema != nil)
		c.h.g.Metrics().Finished(label, gate.KindStream, code, time.Since(s.start), trace.SpanContextFromContext(s.ctx))
	}
	c.live.Add(-1)
	c.mu.Lock()
	c.subs.Remove(s.cid, c.info.Multiplex)
	c.finished = append(c.finished, subResult{code: code, msg: msg, cut: cut})
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// loop runs the session; it returns the final code and the close reason.
//
// The read timeout is one timer per sub-session that is not reset per frame: when it fires
// it is re-armed for what is left since the last activity (touch), and ends the session
// only when nothing happened for the whole timeout.
func (s *subSession) loop() (int, string) {
	readTO, lifeTO := s.c.h.g.Timeouts(s.info)
	read := time.NewTimer(readTO)
	defer read.Stop()
	life := time.NewTimer(lifeTO)
	defer life.Stop()
	for {
		select {
		case m := <-s.in:
			err := s.handle(m)
			putMsgBuf(m.buf) // nothing handled refers to the message's bytes
			if err != nil {
				return s.fail(err) // queued stays above 0: no later frame is handled
			}
			s.touch()
			s.queued.Add(-1)
		case ev := <-s.results:
			switch ev.kind {
			case evEnded:
				s.omu.Lock()
				code := s.outcome
				s.omu.Unlock()
				if code != 0 {
					s.cancel()
				}
				return code, ""
			case evFailed:
				return s.fail(ev.err)
			case evStreamEnd:
				return s.fail(aserr.New(aserr.ErrInvalidResult.Code, "stream ended before its last result"))
			}
		case <-read.C:
			if left := s.idleLeft(readTO); left > 0 {
				read.Reset(left)
				continue
			}
			return s.fail(aserr.ErrReadTimeout)
		case <-life.C:
			return s.fail(aserr.ErrSessionTimeout)
		case err := <-s.stop:
			return s.fail(err)
		case <-s.ctx.Done():
			if code, ok := s.decided(); ok {
				return code, ""
			}
			return aserr.ErrNetwork.Code, ""
		}
	}
}

// decided reports the outcome when a result or a failed write has ended the session.
func (s *subSession) decided() (int, bool) {
	s.omu.Lock()
	defer s.omu.Unlock()
	return s.outcome, s.closed
}

// handleNow handles frame m on the reader's goroutine (see subSession); a frame that fails
// goes to loop as an error, which ends the session.
func (s *subSession) handleNow(m inMsg) {
	err := s.handle(m)
	putMsgBuf(m.buf)
	if err != nil {
		s.queued.Add(1)
		select {
		case s.in <- inMsg{err: err}: // in is empty: later frames queue behind the error
		case <-s.done:
		}
		return
	}
	s.touch()
}

// handle validates one client frame and sends it on the session's Atom.Stream, opened
// with the first frame.
func (s *subSession) handle(m inMsg) error {
	if m.err != nil {
		return m.err
	}
	if s.inputDone {
		s.info.Log.Debug().Msg("frame after the last frame ignored")
		return nil
	}
	first := s.stream == nil
	s.frames++
	if span := s.frameSpan(); span != nil {
		defer span.End()
		span.SetAttributes(attribute.String("asf.sid", s.info.SID), attribute.Int("asf.frame", s.frames))
	}
	f := m.f
	if f.Status == statusUnset {
		f.Status = ase.StatusContinue
		if first {
			f.Status = ase.StatusBegin
		}
	}
	f, doc, err := s.c.h.g.CheckFrame(s.ctx, s.info, f, m.data, first, s.firstDoc)
	if err != nil {
		return err
	}
	if first {
		s.firstDoc = doc
		stream, err := s.c.h.g.OpenStream(s.ctx)
		if err != nil {
			return err
		}
		s.stream = stream
		s.recvWG.Add(1)
		go s.recvLoop(stream)
	}
	if err := s.stream.Send(f); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	// io.EOF: atom ended the stream; the receiver reports why.
	if f.Status == ase.StatusEnd || f.Status == ase.StatusOnce {
		s.inputDone = true
		_ = s.stream.CloseSend()
	}
	return nil
}

// fail sends err as an error frame (with the sub-session's cid) and aborts the atom stream
// at once, freeing the loader slot. When the session's last result (or a failed write)
// ended it first, that end stands and nothing is written.
func (s *subSession) fail(err error) (int, string) {
	code, msg := aserr.CodeOf(err), aserr.MessageOf(err)
	s.cancel()
	s.omu.Lock()
	defer s.omu.Unlock()
	if s.closed {
		return s.outcome, ""
	}
	s.closed = true
	if code != aserr.ErrBadRequest.Code && code != aserr.ErrNotFound.Code {
		s.info.Log.Warn().Err(err).Int("code", code).Msg("session failed")
	}
	s.freeSlot()
	s.buf = webapi.AppendError(s.buf[:0], s.info, code, msg, s.cid)
	if werr := s.c.write(s.buf); werr != nil {
		return aserr.ErrNetwork.Code, ""
	}
	return code, msg
}

// recvLoop receives atom results until the stream ends. It writes each successful result
// to the client itself; the last one, a failure and the stream's end go to loop.
func (s *subSession) recvLoop(stream gate.Stream) {
	defer s.recvWG.Done()
	for {
		res, err := stream.Recv()
		var ev subEvent
		switch {
		case errors.Is(err, io.EOF):
			ev = subEvent{kind: evStreamEnd}
		case err != nil:
			ev = subEvent{kind: evFailed, err: err}
		case res.GetCode() != 0:
			ev = subEvent{kind: evFailed, err: aserr.New(int(res.GetCode()), res.GetMessage())}
		default:
			switch ended, sent := s.sendResult(res); {
			case !ended:
				continue
			case !sent: // the session had ended: loop knows already
				return
			}
			ev = subEvent{kind: evEnded}
		}
		select { // the one event of the stream: loop ends the session on it
		case s.results <- ev:
		case <-s.ctx.Done():
		}
		return
	}
}

// sendResult renders and writes a successful result. ended reports that the session is
// over: this was its last result, or the write failed (outcome says which), or the
// session had ended before (sent is false then).
func (s *subSession) sendResult(res *atompb.Result) (ended, sent bool) {
	s.omu.Lock()
	defer s.omu.Unlock()
	if s.closed {
		return true, false
	}
	res.Sid = s.info.SID
	since := time.Since(s.start)
	if s.first == 0 {
		s.first = since
	}
	s.buf = webapi.AppendResult(s.buf[:0], s.info, s.render, res, s.cid)
	last := res.GetStatus() == ase.StatusEnd || res.GetStatus() == ase.StatusOnce
	if last {
		s.freeSlot()
	}
	if err := s.c.write(s.buf); err != nil {
		s.closed, s.outcome = true, aserr.ErrNetwork.Code
		return true, true
	}
	s.touch()
	if last {
		s.closed = true
		m := s.c.h.g.Metrics()
		m.Results(m.Label(s.info.Capability, 0, s.info.Schema != nil), gate.KindStream, s.first, since)
	}
	return last, true
}
