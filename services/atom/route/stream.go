package route

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
	loaderpb "github.com/athenaserving/asf/libs/proto/loader/v1"
	"github.com/athenaserving/asf/libs/tracing"
	"github.com/athenaserving/asf/services/atom/convert"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"
)

// errEarlyEnd is the error of a loader session that ended its stream before its last output.
var errEarlyEnd = aserr.New(aserr.ErrNetwork.Code, "loader ended the session before its last result")

// ErrFirstResultTimeout is the error of a session whose loader gave no output within the
// capability's first-result timeout after the first frame.
var ErrFirstResultTimeout = aserr.New(aserr.ErrReadTimeout.Code, "no result from the engine within the first-result timeout")

// ErrSessionTimeout is the error of a session that outlived the capability's session timeout.
var ErrSessionTimeout = aserr.New(aserr.ErrSessionTimeout.Code, "session timeout")

// Stream serves one client session. The first frame opens a loader session on the first
// candidate; frames are forwarded in order, each Send blocking while the loader is slow,
// and every output goes to c.Send as it comes. Until the first output the frames are kept
// (within ReplayFrames/ReplayBytes): when the loader session fails with 10110 or 10222
// before any output, it is reopened on the next candidate and the kept frames replayed.
// Stream returns nil after the last output (END) was delivered or when the client closed
// without sending a frame; it returns the error otherwise (a loader failure with the
// loader's code, 10222 when the loader vanished, 10163 for a bad frame, or the client's
// or ctx's error, ErrFirstResultTimeout or ErrSessionTimeout from the capability's meta).
// Any loader session is cancelled before Stream returns.
//
// Stream reads the client in a goroutine of its own that ends once c.Recv returns, which
// Client promises once ctx ends.
func (r *Router) Stream(ctx context.Context, c Client) error {
	ctx, cancel := context.WithCancel(ctx)
	s := &stream{r: r, ctx: ctx, client: c, replayable: true, events: make(chan event)}
	defer s.wg.Wait() // every pump has ended before Stream returns
	defer cancel()

	frames := make(chan *atompb.Frame) // unbuffered: the client is read only as fast as frames are forwarded
	clientErr := make(chan error, 1)
	go func() {
		for {
			f, err := c.Recv()
			if err != nil {
				if errors.Is(err, io.EOF) {
					close(frames)
				} else {
					clientErr <- err
				}
				return
			}
			select {
			case frames <- f:
			case <-ctx.Done():
				return
			}
		}
	}()

	var firstResult, lifetime <-chan time.Time // armed by the first frame, per the capability's meta
	for {
		select {
		case <-firstResult:
			firstResult = nil
			if !s.anyOutput.Load() {
				return fmt.Errorf("loader session: %w", ErrFirstResultTimeout)
			}
		case <-lifetime:
			return fmt.Errorf("session: %w", ErrSessionTimeout)
		case f, ok := <-frames:
			if !ok {
				frames = nil
				s.clientDone = true
				if s.cur == nil {
					if s.seq == 0 {
						return nil
					}
					continue
				}
				s.cur.closeSend()
				continue
			}
			first := s.seq == 0
			if err := s.forward(f); err != nil {
				return err
			}
			if first && s.meta != nil {
				if d := s.meta.FirstResultTimeout; d > 0 {
					t := time.NewTimer(d)
					defer t.Stop()
					firstResult = t.C
				}
				if d := s.meta.SessionTimeout; d > 0 {
					t := time.NewTimer(d)
					defer t.Stop()
					lifetime = t.C
				}
			}
		case err := <-clientErr:
			return fmt.Errorf("client: %w", err)
		case ev := <-s.events:
			if ev.a != s.cur {
				continue
			}
			if ev.done {
				s.finish()
				return nil
			}
			if err := s.recover(ev); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// stream is the state of one client session; only Stream's goroutine touches it, except
// the fields of attempt documented there.
type stream struct {
	r      *Router
	ctx    context.Context
	client Client
	events chan event
	wg     sync.WaitGroup

	capability, sid string
	began           time.Time      // first frame's arrival (set before any pump starts)
	log             zerolog.Logger // carries sid and capability
	meta            *convert.Meta
	anyOutput       atomic.Bool // some loader output reached the client
	cands           *candidates
	seq             int32
	clientDone      bool

	kept       []*loaderpb.LoaderInput // frames sent before the first output, for replay
	keptBytes  int
	replayable bool

	cur     *attempt
	lastErr error
}

// attempt is one loader session. gotOutput is shared with its pump; the rest belongs to
// Stream's goroutine.
type attempt struct {
	addr      string
	sess      Session
	cancel    context.CancelFunc
	gotOutput atomic.Bool
	exited    chan struct{}
	broken    bool
	sendErr   error
	start     time.Time
	span      trace.Span // the attempt's span, ended by its pump; nil when not traced
}

// event is what a pump reports: done after the last output was delivered, else the error
// that ended the session.
type event struct {
	a         *attempt
	done      bool
	err       error
	gotOutput bool
	fatal     bool // the client failed: never retried
}

func (a *attempt) send(in *loaderpb.LoaderInput) {
	if a.broken {
		return // the pump reports why the session ended
	}
	if err := a.sess.Send(in); err != nil {
		a.broken = true
		if !errors.Is(err, io.EOF) {
			a.sendErr = err
			a.cancel()
		}
	}
}

func (a *attempt) closeSend() {
	if !a.broken {
		_ = a.sess.CloseSend()
	}
}

func (s *stream) forward(f *atompb.Frame) error {
	if s.seq == 0 {
		s.capability, s.sid, s.began = f.GetCapability(), f.GetSid(), time.Now()
		s.meta = s.r.Meta(s.capability)
		lc := s.r.log.With().Str("sid", s.sid).Str("capability", s.capability)
		if id, ok := tracing.TraceID(s.ctx); ok {
			lc = lc.Str(tracing.LogField, id)
		}
		s.log = lc.Logger()
		// The session keeps the version pinned or chosen here, also when it reopens.
		s.cands = s.r.candidates(s.capability, s.meta, convert.RouteKey(f), f.GetHeader()[convert.HeaderEngineVersion])
	}
	if err := convert.CheckStatus(f.GetStatus(), false); err != nil {
		return err
	}
	if f.GetCapability() == "" || f.GetSid() == "" {
		f = proto.CloneOf(f)
		if f.Capability == "" {
			f.Capability = s.capability
		}
		if f.Sid == "" {
			f.Sid = s.sid
		}
	}
	in := convert.ToLoaderInput(f, s.seq, s.meta)
	s.seq++
	kept := s.keep(in)
	if s.cur == nil {
		if err := s.open(); err != nil {
			return err
		}
		if kept {
			return nil // open replayed it
		}
	}
	s.cur.send(in)
	return nil
}

// keep stores in for replay while no output has come and the bounds allow; past them
// nothing is kept any more.
func (s *stream) keep(in *loaderpb.LoaderInput) bool {
	if !s.replayable {
		return false
	}
	size := proto.Size(in)
	if (s.cur != nil && s.cur.gotOutput.Load()) || len(s.kept)+1 > s.r.opts.ReplayFrames || s.keptBytes+size > s.r.opts.ReplayBytes {
		s.replayable, s.kept, s.keptBytes = false, nil, 0
		return false
	}
	s.kept = append(s.kept, in)
	s.keptBytes += size
	return true
}

// open opens a loader session on the next candidate that accepts, replays the kept frames
// and closes the input side when the client already has.
func (s *stream) open() error {
	for {
		addr, err := s.cands.next(s.ctx)
		if err != nil {
			if s.lastErr != nil {
				return s.lastErr
			}
			return err
		}
		if s.lastErr != nil {
			s.r.obs.Retry(s.capability, aserr.CodeOf(s.lastErr))
		}
		a, err := s.start(addr)
		if err != nil {
			s.r.obs.LoaderError(s.capability, aserr.CodeOf(err))
			if suspect(s.ctx, err) {
				s.r.suspects.mark(addr)
			}
			if !retryable(err) || s.ctx.Err() != nil {
				return err
			}
			s.lastErr = err
			continue
		}
		s.cur = a
		s.log.Debug().Str("loader", addr).Int("replayed", len(s.kept)).Msg("loader session opened")
		for _, in := range s.kept {
			a.send(in)
		}
		if s.clientDone {
			a.closeSend()
		}
		return nil
	}
}

func (s *stream) start(addr string) (*attempt, error) {
	l, err := s.r.dial.Loader(addr)
	if err != nil {
		return nil, fmt.Errorf("loader %s: %w", addr, err)
	}
	actx, cancel := context.WithCancel(s.ctx)
	actx, span := s.r.startSpan(actx, spanLoaderSession)
	if span != nil {
		attemptAttrs(span, s.sid, addr, len(s.cands.tried))
	}
	sess, err := l.Session(actx)
	if err != nil {
		cancel()
		err = fmt.Errorf("loader %s session: %w", addr, err)
		endSpan(span, err)
		return nil, err
	}
	a := &attempt{addr: addr, sess: sess, cancel: cancel, exited: make(chan struct{}), start: time.Now(), span: span}
	s.wg.Add(1)
	go s.pump(a)
	return a, nil
}

// pump forwards the outputs of one loader session to the client until the last output
// or an error, which it reports to Stream's goroutine.
func (s *stream) pump(a *attempt) {
	defer s.wg.Done()
	defer close(a.exited)
	var failed error // the attempt's span ends with it
	defer func() { endSpan(a.span, failed) }()
	for {
		out, err := a.sess.Recv()
		if err == nil {
			if oerr := convert.OutputError(out); oerr != nil {
				// A result is final, even one carrying an error code: never reopened.
				failed = fmt.Errorf("loader %s session: %w", a.addr, oerr)
				s.report(event{a: a, err: failed, gotOutput: true})
				return
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errEarlyEnd
			}
			failed = fmt.Errorf("loader %s session: %w", a.addr, err)
			s.report(event{a: a, err: failed, gotOutput: a.gotOutput.Load()})
			return
		}
		if !a.gotOutput.Swap(true) {
			s.r.obs.Hop("session_first_result", time.Since(a.start))
			s.r.observeWait(s.capability, a.start.Sub(s.began))
		}
		s.anyOutput.Store(true)
		if err := s.client.Send(out); err != nil {
			s.report(event{a: a, err: fmt.Errorf("client: %w", err), gotOutput: true, fatal: true})
			return
		}
		if convert.IsLast(out.GetStatus()) {
			s.report(event{a: a, done: true, gotOutput: true})
			// The loader ends its stream after its last output; read until it does so it
			// is not cancelled mid-way (Stream cancels it after EndGrace).
			for {
				if _, err := a.sess.Recv(); err != nil {
					return
				}
			}
		}
	}
}

func (s *stream) report(ev event) {
	select {
	case s.events <- ev:
	case <-s.ctx.Done():
	}
}

// finish gives the session EndGrace to end its stream after its last output.
func (s *stream) finish() {
	t := time.NewTimer(s.r.opts.EndGrace)
	defer t.Stop()
	select {
	case <-s.cur.exited:
	case <-t.C:
	case <-s.ctx.Done():
	}
	s.cur.cancel()
}

// recover handles a session that ended with an error: it reopens on the next candidate
// when nothing was delivered yet and the error is a refusal, else returns the error.
func (s *stream) recover(ev event) error {
	a := s.cur
	s.cur = nil
	a.cancel()
	<-a.exited
	err := ev.err
	if a.sendErr != nil {
		err = fmt.Errorf("loader %s send: %w", a.addr, a.sendErr)
	}
	if ev.fatal {
		return err
	}
	s.r.obs.LoaderError(s.capability, aserr.CodeOf(err))
	if s.ctx.Err() != nil {
		return s.ctx.Err()
	}
	if suspect(s.ctx, err) {
		s.r.suspects.mark(a.addr)
	}
	if ev.gotOutput || !s.replayable || !retryable(err) {
		return err
	}
	s.log.Debug().Str("loader", a.addr).Err(err).Msg("session refused before any result: reopening")
	s.lastErr = err
	return s.open()
}
