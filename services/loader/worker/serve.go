package worker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/services/loader/engine"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// envFD names the environment variable that tells a child process which inherited file
// descriptor is its end of the worker socket.
const envFD = "ASF_WORKER_FD"

// EnvNudgeFD names the environment variable that tells a child which inherited descriptor
// is its hand-off socket (Config.Handoff); unset when the pool gives none.
const EnvNudgeFD = "ASF_WORKER_NUDGE_FD"

// EnvID names the environment variable carrying the worker's id (for its logs).
const EnvID = "ASF_WORKER_ID"

// IsChild reports whether this process was started as a worker by a pool.
func IsChild() bool { return os.Getenv(envFD) != "" }

// ChildConn returns the worker socket this process inherited from its pool (see envFD).
func ChildConn() (net.Conn, error) {
	v := os.Getenv(envFD)
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil, fmt.Errorf("worker: %s=%q: not an inherited descriptor: %w", envFD, v, aserr.ErrInvalidParam)
	}
	f := os.NewFile(uintptr(fd), "worker-socket")
	conn, err := net.FileConn(f)
	_ = f.Close() // FileConn dups the descriptor
	if err != nil {
		return nil, fmt.Errorf("worker: socket fd %d: %w", fd, err)
	}
	return conn, nil
}

// Serve hosts eng on the child side of a worker connection: it answers the parent's calls
// (each in its own goroutine) and streams session results, until the parent closes the
// connection (nil) or ctx ends (ctx's error). Sessions still open then are closed; Fini
// is only called when the parent asks for it.
func Serve(ctx context.Context, conn net.Conn, eng engine.Engine) error {
	s := &server{conn: conn, eng: eng, sessions: map[uint64]*childSession{}}
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()

	r := bufio.NewReaderSize(conn, 64<<10)
	var err error
	for {
		var m Message
		m, err = readFrame(r)
		if err != nil {
			break
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handle(ctx, m)
		}()
	}
	cancel()
	_ = conn.Close()
	s.wg.Wait()
	s.mu.Lock()
	open := s.sessions
	s.sessions = map[uint64]*childSession{}
	s.mu.Unlock()
	for _, cs := range open {
		_ = cs.s.Close()
	}
	if perr := parent.Err(); perr != nil {
		return perr
	}
	if isEOF(err) {
		return nil
	}
	return fmt.Errorf("worker serve: %w", err)
}

func isEOF(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed)
}

type server struct {
	conn net.Conn
	eng  engine.Engine
	wg   sync.WaitGroup

	wmu sync.Mutex // serialises frame writes
	buf []byte

	mu       sync.Mutex
	sessions map[uint64]*childSession
}

type childSession struct {
	s engine.Session
}

func (s *server) send(t MsgType, id uint64, body []byte) {
	s.wmu.Lock()
	s.buf = appendFrame(s.buf[:0], t, id, body)
	_, _ = s.conn.Write(s.buf) // a broken connection ends the read loop
	if cap(s.buf) > 1<<20 {
		s.buf = nil
	}
	s.wmu.Unlock()
}

func (s *server) reply(id uint64, body []byte, err error) {
	if err != nil {
		var e Encoder
		e.Error(err)
		s.send(MsgErr, id, e.B)
		return
	}
	s.send(MsgOK, id, body)
}

func (s *server) handle(ctx context.Context, m Message) {
	if m.Type&flagTraced != 0 {
		// The parent traces this call: what the engine adds to the span in its ctx (a C
		// engine's wrapperTraceLog calls) goes back to it while the call runs.
		m.Type &^= flagTraced
		fs := &fwdSpan{s: s, id: m.ID}
		defer fs.done.Store(true)
		ctx = trace.ContextWithSpan(ctx, fs)
	}
	d := newDecoder(m.Body)
	switch m.Type {
	case MsgInit:
		cfg := d.Map()
		if err := d.Done(); err != nil {
			s.reply(m.ID, nil, fmt.Errorf("init: %v: %w", err, aserr.ErrInvalidData))
			return
		}
		s.reply(m.ID, nil, s.eng.Init(ctx, cfg))
	case MsgFini:
		s.reply(m.ID, nil, s.eng.Fini(ctx))
	case MsgOnce:
		req := d.Request()
		if err := d.Done(); err != nil {
			s.reply(m.ID, nil, fmt.Errorf("once: %v: %w", err, aserr.ErrInvalidData))
			return
		}
		resp, err := s.eng.Once(ctx, req)
		if err != nil {
			s.reply(m.ID, nil, err)
			return
		}
		var e Encoder
		e.Response(resp)
		s.reply(m.ID, e.B, nil)
	case MsgOpen:
		p := d.SessionParams()
		if err := d.Done(); err != nil {
			s.reply(m.ID, nil, fmt.Errorf("open: %v: %w", err, aserr.ErrInvalidData))
			return
		}
		s.open(ctx, m.ID, p)
	case MsgWrite:
		sid, f := d.Write()
		if err := d.Done(); err != nil {
			s.reply(m.ID, nil, fmt.Errorf("write: %v: %w", err, aserr.ErrInvalidData))
			return
		}
		cs := s.session(sid)
		if cs == nil {
			s.reply(m.ID, nil, fmt.Errorf("write: session %d: %w", sid, aserr.ErrInvalidHandle))
			return
		}
		s.reply(m.ID, nil, cs.s.Write(ctx, f))
	case MsgClose:
		sid := d.SessionID()
		if err := d.Done(); err != nil {
			s.reply(m.ID, nil, fmt.Errorf("close: %v: %w", err, aserr.ErrInvalidData))
			return
		}
		s.mu.Lock()
		cs := s.sessions[sid]
		delete(s.sessions, sid)
		s.mu.Unlock()
		if cs == nil {
			s.reply(m.ID, nil, nil) // already gone: closing is idempotent
			return
		}
		s.reply(m.ID, nil, cs.s.Close())
	case MsgLoadRes, MsgUnloadRes:
		s.resource(ctx, m.ID, m.Type, d)
	default:
		s.reply(m.ID, nil, fmt.Errorf("message type %s: %w", m.Type, aserr.ErrInvalidOp))
	}
}

func (s *server) session(sid uint64) *childSession {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[sid]
}

func (s *server) open(ctx context.Context, sid uint64, p engine.SessionParams) {
	s.mu.Lock()
	_, dup := s.sessions[sid]
	s.mu.Unlock()
	if dup {
		s.reply(sid, nil, fmt.Errorf("open: session %d: %w", sid, aserr.ErrRepeatedSession))
		return
	}
	emit := func(r engine.Result) {
		var e Encoder
		e.Result(r)
		s.send(MsgResult, sid, e.B)
	}
	es, err := s.eng.NewSession(ctx, p, emit)
	if err != nil {
		s.reply(sid, nil, err)
		return
	}
	s.mu.Lock()
	s.sessions[sid] = &childSession{s: es}
	s.mu.Unlock()
	s.reply(sid, nil, nil)
}

// resource answers MsgLoadRes and MsgUnloadRes with the engine's ResourceLoader; an
// engine without one answers 10003.
func (s *server) resource(ctx context.Context, id uint64, t MsgType, d *Decoder) {
	var resID uint32
	var data []engine.Payload
	if t == MsgLoadRes {
		resID, data = d.LoadRes()
	} else {
		resID = d.ResID()
	}
	if err := d.Done(); err != nil {
		s.reply(id, nil, fmt.Errorf("%s: %v: %w", t, err, aserr.ErrInvalidData))
		return
	}
	rl, ok := s.eng.(engine.ResourceLoader)
	if !ok {
		s.reply(id, nil, fmt.Errorf("engine %s has no wrapperLoadRes: %w", s.eng.Name(), aserr.ErrInvalidOp))
		return
	}
	if t == MsgLoadRes {
		s.reply(id, nil, rl.LoadResource(ctx, resID, data))
		return
	}
	s.reply(id, nil, rl.UnloadResource(ctx, resID))
}

// fwdSpan stands in the child for the parent's span of a traced call: events and
// attributes added to it are sent to the parent as MsgTrace frames of the call until the
// call answers.
type fwdSpan struct {
	noop.Span
	s    *server
	id   uint64
	done atomic.Bool
}

var _ trace.Span = (*fwdSpan)(nil)

// IsRecording reports whether the call still runs.
func (f *fwdSpan) IsRecording() bool { return !f.done.Load() }

// AddEvent sends the event to the parent.
func (f *fwdSpan) AddEvent(name string, opts ...trace.EventOption) {
	if f.done.Load() {
		return
	}
	c := trace.NewEventConfig(opts...)
	ts := c.Timestamp()
	if ts.IsZero() {
		ts = time.Now()
	}
	var e Encoder
	e.TraceEventBody(0, name, ts, c.Attributes())
	f.s.send(MsgTrace, f.id, e.B)
}

// SetAttributes sends the attributes to the parent.
func (f *fwdSpan) SetAttributes(kv ...attribute.KeyValue) {
	if f.done.Load() || len(kv) == 0 {
		return
	}
	var e Encoder
	e.TraceAttrsBody(0, kv)
	f.s.send(MsgTrace, f.id, e.B)
}
