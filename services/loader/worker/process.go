package worker

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"
)

// encoders recycles the encoding buffers of Once and Write requests: call copies the body
// into the outgoing frame before it returns, so the buffer is free again afterwards.
var encoders = sync.Pool{New: func() any { return new(Encoder) }}

func getEncoder() *Encoder {
	e := encoders.Get().(*Encoder)
	e.B = e.B[:0]
	return e
}

// putEncoder returns e to the pool unless its buffer grew past 1 MiB.
func putEncoder(e *Encoder) {
	if cap(e.B) <= 1<<20 {
		encoders.Put(e)
	}
}

// proc is one worker process incarnation.
type proc struct {
	pool *Pool
	id   int
	cmd  *exec.Cmd
	conn net.Conn
	log  zerolog.Logger

	// wmu guards out and writing. Frames are appended to out; the sender that finds no
	// write in progress writes out (and whatever other senders append meanwhile) itself,
	// so concurrent calls' frames leave in one write and a lone call costs no hand-off.
	wmu     sync.Mutex
	out     []byte
	spare   []byte // the buffer last written, reused as out
	writing bool

	inflight atomic.Int64
	closing  atomic.Bool // set by shutdown: losing the connection is expected

	// nudgeFD is the parent's end of the hand-off socket (-1: none, or closed); guarded by
	// mu, so that watch never writes to a descriptor number that was closed and reused.
	nudgeFD  int
	watching bool        // watchT is armed (guarded by mu)
	watchT   *time.Timer // runs watch while calls are in flight (nil: no hand-off socket)

	mu       sync.Mutex
	calls    map[uint64]pending
	traces   map[uint64]*callTrace // traced calls in progress, by call id
	sessions map[uint64]*remoteSession
	isDead   bool

	dead    chan struct{} // closed when the connection is lost
	deadErr error         // why; set before dead is closed
	exited  chan struct{} // closed once the process was reaped
	exitErr error         // cmd.Wait's error; set before exited is closed
}

// pending is a call waiting for its answer.
type pending struct {
	ch   chan Message
	sent time.Time // when it was registered (set only for watch, with a hand-off socket)
}

// lost reports whether the worker's connection is lost (it may still be in p.live
// until its supervisor notices).
func (w *proc) lost() bool {
	select {
	case <-w.dead:
		return true
	default:
		return false
	}
}

func (w *proc) load() int64 {
	w.mu.Lock()
	n := len(w.sessions)
	w.mu.Unlock()
	return w.inflight.Load() + int64(n)
}

// start launches worker id and initialises it.
func (p *Pool) start(id int) (*proc, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("worker %d socketpair: %w", id, err)
	}
	mine, theirs := os.NewFile(uintptr(fds[0]), "worker-parent"), os.NewFile(uintptr(fds[1]), "worker-child")
	conn, err := net.FileConn(mine)
	_ = mine.Close()
	if err != nil {
		_ = theirs.Close()
		return nil, fmt.Errorf("worker %d socket: %w", id, err)
	}
	w := &proc{
		pool: p, id: id, conn: conn, calls: map[uint64]pending{}, traces: map[uint64]*callTrace{}, sessions: map[uint64]*remoteSession{},
		dead: make(chan struct{}), exited: make(chan struct{}), nudgeFD: -1,
	}
	cmd := exec.Command(p.cfg.Command[0], p.cfg.Command[1:]...)
	cmd.Dir = p.cfg.Dir
	cmd.Env = append(append(os.Environ(), p.cfg.Env...), envFD+"=3", EnvID+"="+strconv.Itoa(id))
	cmd.ExtraFiles = []*os.File{theirs}
	var nudgeChild *os.File
	if p.cfg.Handoff > 0 {
		nudge, err := handoffSocket()
		if err != nil {
			_ = conn.Close()
			_ = theirs.Close()
			return nil, fmt.Errorf("worker %d hand-off socket: %w", id, err)
		}
		nudgeChild = nudge.child
		w.nudgeFD = nudge.parent
		w.watchT = time.AfterFunc(time.Hour, w.watch)
		w.watchT.Stop()
		cmd.Env = append(cmd.Env, EnvNudgeFD+"=4")
		cmd.ExtraFiles = append(cmd.ExtraFiles, nudge.child)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = time.Second
	w.cmd = cmd
	w.log = p.log.With().Int("worker", id).Logger()
	cmd.Stdout = newLineLog(w.log, "stdout")
	cmd.Stderr = newLineLog(w.log, "stderr")
	err = cmd.Start()
	_ = theirs.Close()
	if nudgeChild != nil {
		_ = nudgeChild.Close()
	}
	if err != nil {
		w.mu.Lock()
		w.closeNudge()
		w.mu.Unlock()
		_ = conn.Close()
		return nil, fmt.Errorf("worker %d start %s: %w", id, p.cfg.Command[0], err)
	}
	w.log = w.log.With().Int("pid", cmd.Process.Pid).Logger()
	w.log.Debug().Msg("worker started")
	p.wg.Add(2)
	go func() {
		defer p.wg.Done()
		w.exitErr = cmd.Wait()
		close(w.exited)
	}()
	go func() {
		defer p.wg.Done()
		w.readLoop()
	}()

	ctx, cancel := context.WithTimeout(p.ctx, p.cfg.InitTimeout)
	defer cancel()
	var e Encoder
	e.Map(p.initCfg)
	if _, err := w.call(ctx, MsgInit, p.nextID.Add(1), e.B); err != nil {
		w.shutdown(0)
		return nil, fmt.Errorf("worker %d: %w", id, err)
	}
	return w, nil
}

func (w *proc) readLoop() {
	r := bufio.NewReaderSize(w.conn, 64<<10)
	for {
		m, err := readFrame(r)
		if err != nil {
			w.die(err)
			return
		}
		switch m.Type {
		case MsgOK, MsgErr:
			w.mu.Lock()
			c := w.calls[m.ID]
			delete(w.calls, m.ID)
			w.mu.Unlock()
			if c.ch != nil {
				c.ch <- m
			}
		case MsgResult:
			d := newDecoder(m.Body)
			res := d.Result()
			if err := d.Done(); err != nil {
				w.die(fmt.Errorf("session result: %w", err))
				return
			}
			w.mu.Lock()
			rs := w.sessions[m.ID]
			w.mu.Unlock()
			if rs != nil {
				rs.deliver(res)
			}
		case MsgTrace:
			w.mu.Lock()
			ct := w.traces[m.ID]
			w.mu.Unlock()
			if ct == nil {
				continue // the call ended (or was never traced): nothing to add to
			}
			if err := ct.apply(m.Body); err != nil {
				w.die(fmt.Errorf("trace: %w", err))
				return
			}
		default:
			w.die(fmt.Errorf("unexpected message %s: %w", m.Type, errMalformed))
			return
		}
	}
}

// handoff is a hand-off socket pair: parent is a raw non-blocking descriptor the pool
// writes nudges to, child the end the worker inherits.
type handoff struct {
	parent int
	child  *os.File
}

func handoffSocket() (handoff, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC|syscall.SOCK_NONBLOCK, 0)
	if err != nil {
		return handoff{}, err
	}
	// The child blocks on its end: clear O_NONBLOCK there (the flag is per open file).
	if err := syscall.SetNonblock(fds[1], false); err != nil {
		_ = syscall.Close(fds[0])
		_ = syscall.Close(fds[1])
		return handoff{}, err
	}
	return handoff{parent: fds[0], child: os.NewFile(uintptr(fds[1]), "worker-handoff")}, nil
}

// watch runs every Config.Handoff while calls are in flight. When one of them was sent
// Handoff or longer ago it nudges the child (one byte on the hand-off socket): a child
// that runs calls on its reading thread then looks whether its current call has run that
// long and hands the reading over to another thread. Between nudges such a child needs
// no clock of its own, so a stream of short calls wakes nothing but their reader.
func (w *proc) watch() {
	h := w.pool.cfg.Handoff
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.isDead || len(w.calls) == 0 {
		w.watching = false
		return
	}
	w.watchT.Reset(h)
	for _, c := range w.calls {
		if now.Sub(c.sent) >= h {
			if w.nudgeFD >= 0 {
				// Non-blocking: a full socket already holds nudges the child has not read.
				_, _ = syscall.Write(w.nudgeFD, []byte{1})
			}
			return
		}
	}
}

// closeNudge closes the hand-off socket (the child's wait on it ends). Called with mu held.
func (w *proc) closeNudge() {
	if w.nudgeFD >= 0 {
		_ = syscall.Close(w.nudgeFD)
		w.nudgeFD = -1
	}
	if w.watchT != nil {
		w.watchT.Stop()
		w.watching = false
	}
}

// die marks the worker dead: every pending call and open session fails with 10109.
func (w *proc) die(cause error) {
	w.mu.Lock()
	if w.isDead {
		w.mu.Unlock()
		return
	}
	w.isDead = true
	sessions := w.sessions
	w.sessions = map[uint64]*remoteSession{}
	w.calls = map[uint64]pending{}
	w.traces = map[uint64]*callTrace{}
	w.closeNudge()
	w.mu.Unlock()
	_ = w.conn.Close()
	if w.closing.Load() {
		w.deadErr = fmt.Errorf("worker %d stopped: %w", w.id, aserr.ErrEngineCrashed)
		close(w.dead)
		for _, rs := range sessions {
			rs.fail(w.deadErr)
		}
		return
	}
	w.kill()
	reason := cause.Error()
	t := time.NewTimer(500 * time.Millisecond)
	select {
	case <-w.exited:
		if w.exitErr != nil {
			reason = w.exitErr.Error()
		} else {
			reason = "exited"
		}
	case <-t.C:
	}
	t.Stop()
	w.deadErr = fmt.Errorf("worker %d (pid %d): %s: %w", w.id, w.cmd.Process.Pid, reason, aserr.ErrEngineCrashed)
	close(w.dead)
	for _, rs := range sessions {
		rs.fail(w.deadErr)
	}
}

// kill ends the process at once.
func (w *proc) kill() { _ = w.cmd.Process.Kill() }

// shutdown closes the socket, waits up to grace for the process to exit, kills it and
// waits until it was reaped.
func (w *proc) shutdown(grace time.Duration) {
	w.closing.Store(true)
	_ = w.conn.Close()
	if grace > 0 {
		t := time.NewTimer(grace)
		select {
		case <-w.exited:
		case <-t.C:
		}
		t.Stop()
	}
	w.kill()
	<-w.exited
	<-w.dead
}

// send queues a frame for writing and, unless another sender is writing already, writes
// the queue. A frame left to another sender reports no error here: a failed write kills
// the worker (die), which fails every call waiting on it.
func (w *proc) send(t MsgType, id uint64, body []byte) error {
	w.wmu.Lock()
	w.out = appendFrame(w.out, t, id, body)
	if w.writing {
		w.wmu.Unlock()
		return nil
	}
	w.writing = true
	if w.inflight.Load() > 1 {
		// Other calls are in flight, and the callers their replies just woke may be about
		// to send: let them append first, so that their frames share this write.
		w.wmu.Unlock()
		runtime.Gosched()
		w.wmu.Lock()
	}
	var err error
	for len(w.out) > 0 && err == nil {
		buf := w.out
		w.out = w.spare[:0]
		w.wmu.Unlock()
		_, err = w.conn.Write(buf)
		w.wmu.Lock()
		if cap(buf) > 1<<20 {
			buf = nil
		}
		w.spare = buf
	}
	w.out = w.out[:0]
	w.writing = false
	w.wmu.Unlock()
	return err
}

// call sends a request and waits for its answer. The worker's death fails it with 10109;
// ctx's deadline with 10102, after which the worker is killed if the call is still
// running HangGrace later.
//
// A call whose ctx holds a recording span is sent traced: what the child reports on it
// while it runs becomes child spans, events and attributes of that span (trace.go).
func (w *proc) call(ctx context.Context, t MsgType, id uint64, body []byte) (Message, error) {
	ch := make(chan Message, 1)
	wire := t
	var ct *callTrace
	if sp := trace.SpanFromContext(ctx); sp.IsRecording() {
		ct, wire = newCallTrace(sp), t|flagTraced
		defer w.endTrace(id, ct)
	}
	w.mu.Lock()
	if w.isDead {
		w.mu.Unlock()
		<-w.dead
		return Message{}, w.deadErr
	}
	c := pending{ch: ch}
	if w.watchT != nil { // only watch reads the age
		c.sent = time.Now()
		if !w.watching {
			w.watching = true
			w.watchT.Reset(w.pool.cfg.Handoff)
		}
	}
	w.calls[id] = c
	if ct != nil {
		w.traces[id] = ct
	}
	w.mu.Unlock()
	w.inflight.Add(1)
	defer w.inflight.Add(-1)
	if err := w.send(wire, id, body); err != nil {
		w.die(fmt.Errorf("send %s: %w", t, err))
		<-w.dead
		return Message{}, w.deadErr
	}
	select {
	case m := <-ch:
		if m.Type == MsgErr {
			d := newDecoder(m.Body)
			err := d.Error()
			if derr := d.Done(); derr != nil {
				return Message{}, fmt.Errorf("worker %d %s reply: %v: %w", w.id, t, derr, aserr.ErrEngineCrashed)
			}
			return Message{}, err
		}
		return m, nil
	case <-w.dead:
		return Message{}, w.deadErr
	case <-ctx.Done():
		time.AfterFunc(w.pool.cfg.HangGrace, func() {
			w.mu.Lock()
			_, running := w.calls[id]
			w.mu.Unlock()
			if running {
				w.log.Warn().Str("call", t.String()).Dur("grace", w.pool.cfg.HangGrace).Msg("worker hung past a call's deadline: killing it")
				w.kill()
			}
		})
		return Message{}, ctxError(ctx, fmt.Sprintf("worker %d %s", w.id, t))
	}
}

// endTrace stops applying the child's reports on call id and ends the spans it left open.
func (w *proc) endTrace(id uint64, ct *callTrace) {
	w.mu.Lock()
	delete(w.traces, id)
	w.mu.Unlock()
	ct.finish()
}

func (w *proc) addSession(rs *remoteSession) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.isDead {
		return false
	}
	w.sessions[rs.id] = rs
	return true
}

func (w *proc) removeSession(id uint64) {
	w.mu.Lock()
	delete(w.sessions, id)
	w.mu.Unlock()
}
