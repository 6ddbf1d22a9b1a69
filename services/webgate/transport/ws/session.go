package ws

import (
	"context"
	"errors"
	"io"
	"sync"
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
	return &subSession{
		c: c, cid: cid, info: info, ctx: ctx, cancel: cancel, render: c.h.g.Renderer(info.Schema),
		in:      make(chan inMsg, 16),
		stop:    make(chan error, 1),
		results: make(chan subEvent, 8),
		done:    make(chan struct{}),
		start:   time.Now(),
	}
}

type subEventKind int

const (
	evResult    subEventKind = iota // atom sent a result
	evFailed                        // atom failed
	evStreamEnd                     // atom ended the stream
)

type subEvent struct {
	kind subEventKind
	res  *atompb.Result
	err  error
}

// subSession is one session bound to one Atom.Stream: the whole connection, or one cid of
// a multiplexed connection.
type subSession struct {
	c       *wsConn
	cid     string
	info    *gate.Request
	ctx     context.Context
	cancel  context.CancelFunc
	in      chan inMsg
	stop    chan error
	results chan subEvent
	done    chan struct{}
	recvWG  sync.WaitGroup

	render    ase.Renderer
	stream    gate.Stream
	firstDoc  map[string]any
	inputDone bool
	buf       []byte
	start     time.Time
	first     time.Duration
	frames    int // client frames handled, for the frame spans
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
			putMsgBuf(m.data) // nothing handled refers to the message's bytes
			if err != nil {
				return s.fail(err)
			}
			read.Reset(readTO)
		case ev := <-s.results:
			switch ev.kind {
			case evResult:
				res := ev.res
				if res.GetCode() != 0 {
					return s.fail(aserr.New(int(res.GetCode()), res.GetMessage()))
				}
				res.Sid = s.info.SID
				since := time.Since(s.start)
				if s.first == 0 {
					s.first = since
				}
				s.buf = webapi.AppendResult(s.buf[:0], s.info, s.render, res, s.cid)
				if res.GetStatus() == ase.StatusEnd || res.GetStatus() == ase.StatusOnce {
					s.freeSlot()
				}
				if err := s.c.write(s.buf); err != nil {
					s.cancel()
					return aserr.ErrNetwork.Code, ""
				}
				read.Reset(readTO)
				if res.GetStatus() == ase.StatusEnd || res.GetStatus() == ase.StatusOnce {
					m := s.c.h.g.Metrics()
					m.Results(m.Label(s.info.Capability, 0, s.info.Schema != nil), gate.KindStream, s.first, since)
					return 0, ""
				}
			case evFailed:
				return s.fail(ev.err)
			case evStreamEnd:
				return s.fail(aserr.New(aserr.ErrInvalidResult.Code, "stream ended before its last result"))
			}
		case <-read.C:
			return s.fail(aserr.ErrReadTimeout)
		case <-life.C:
			return s.fail(aserr.ErrSessionTimeout)
		case err := <-s.stop:
			return s.fail(err)
		case <-s.ctx.Done():
			return aserr.ErrNetwork.Code, ""
		}
	}
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
// at once, freeing the loader slot.
func (s *subSession) fail(err error) (int, string) {
	code, msg := aserr.CodeOf(err), aserr.MessageOf(err)
	if code != aserr.ErrBadRequest.Code && code != aserr.ErrNotFound.Code {
		s.info.Log.Warn().Err(err).Int("code", code).Msg("session failed")
	}
	s.cancel()
	s.freeSlot()
	s.buf = webapi.AppendError(s.buf[:0], s.info, code, msg, s.cid)
	if werr := s.c.write(s.buf); werr != nil {
		return aserr.ErrNetwork.Code, ""
	}
	return code, msg
}

// recvLoop receives atom results until the stream ends.
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
		default:
			ev = subEvent{kind: evResult, res: res}
		}
		select {
		case s.results <- ev:
		case <-s.ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
}
