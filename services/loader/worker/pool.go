package worker

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/services/loader/engine"
	"github.com/rs/zerolog"
)

// Config configures a supervised pool of worker processes.
type Config struct {
	// Name is the engine's name (Engine.Name).
	Name string
	// Command starts one worker: argv[0] and its arguments. The child finds its end of the
	// worker socket in the descriptor named by EnvFD (always 3) and its id in EnvID.
	Command []string
	// Env is added to the loader's environment for every worker (KEY=value).
	Env []string
	// Dir is the workers' working directory (default: the loader's).
	Dir string
	// Size is the number of worker processes (default 1).
	Size int
	// InitTimeout bounds a worker's start-up and Init (default 60 s).
	InitTimeout time.Duration
	// RestartMin and RestartMax bound the exponential restart backoff of a worker that
	// died (defaults 100 ms and 10 s); it starts over once a worker lived 10 × RestartMax.
	RestartMin, RestartMax time.Duration
	// HangGrace is how long a call abandoned at its deadline may still run before its
	// worker is considered hung, killed and restarted (default 2 s).
	HangGrace time.Duration
	// LiveWait is how long a call waits for a live worker while all are restarting
	// (default 5 s), after which it fails with 10109.
	LiveWait time.Duration
	// StopGrace is how long Fini waits for a worker to exit after closing its socket
	// before killing it (default 3 s).
	StopGrace time.Duration
	// Log receives the pool's events and every line the workers write to stdout/stderr.
	Log zerolog.Logger
}

func (c Config) withDefaults() Config {
	if c.Size <= 0 {
		c.Size = 1
	}
	if c.InitTimeout <= 0 {
		c.InitTimeout = 60 * time.Second
	}
	if c.RestartMin <= 0 {
		c.RestartMin = 100 * time.Millisecond
	}
	if c.RestartMax < c.RestartMin {
		c.RestartMax = max(10*time.Second, c.RestartMin)
	}
	if c.HangGrace <= 0 {
		c.HangGrace = 2 * time.Second
	}
	if c.LiveWait <= 0 {
		c.LiveWait = 5 * time.Second
	}
	if c.StopGrace <= 0 {
		c.StopGrace = 3 * time.Second
	}
	if c.Name == "" {
		c.Name = "worker"
	}
	return c
}

// NewEngine returns an engine.Engine that forwards every call to a pool of supervised
// worker processes; see Pool.
func NewEngine(cfg Config) engine.Engine { return NewPool(cfg) }

// Pool is an engine.Engine backed by Size worker processes, each hosting the real engine
// behind Serve. Once requests go to the live worker with the least work in flight; a
// session stays on the worker that opened it. A worker that dies fails its in-flight
// calls and sessions at once with 10109 and is restarted with exponential backoff while
// the others keep serving. A call that overruns its ctx deadline fails with 10102; its
// worker is killed and restarted when the call is still running HangGrace later.
type Pool struct {
	cfg Config
	log zerolog.Logger

	ctx    context.Context // cancelled by Fini or a failed Init: stops the supervisors
	cancel context.CancelFunc
	wg     sync.WaitGroup // supervisors and per-process goroutines
	nextID atomic.Uint64

	restarts atomic.Int64

	// resMu serialises resource loads and unloads with workers going live, so that every
	// live worker holds every loaded resource. Taken before mu.
	resMu sync.Mutex
	res   map[uint32][]engine.Payload // loaded resources, reloaded into restarted workers

	mu      sync.Mutex
	state   int // 0 new, 1 running, 2 stopped
	live    []*proc
	changed chan struct{} // closed and replaced on every liveness change
	initCfg map[string]string
}

const (
	stateNew = iota
	stateRunning
	stateStopped
)

// NewPool returns a pool that starts its workers on Init.
func NewPool(cfg Config) *Pool {
	cfg = cfg.withDefaults()
	p := &Pool{cfg: cfg, log: cfg.Log.With().Str("engine", cfg.Name).Logger(), changed: make(chan struct{}), res: map[uint32][]engine.Payload{}}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.live = make([]*proc, cfg.Size)
	return p
}

var (
	_ engine.Engine         = (*Pool)(nil)
	_ engine.ResourceLoader = (*Pool)(nil)
)

// Name returns the configured engine name.
func (p *Pool) Name() string { return p.cfg.Name }

// Live is the number of workers currently serving.
func (p *Pool) Live() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, w := range p.live {
		if w != nil {
			n++
		}
	}
	return n
}

// PIDs returns the process ids of the live workers, by worker id (0 for none).
func (p *Pool) PIDs() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]int, len(p.live))
	for i, w := range p.live {
		if w != nil {
			out[i] = w.cmd.Process.Pid
		}
	}
	return out
}

// Restarts counts the worker processes started after Init.
func (p *Pool) Restarts() int64 { return p.restarts.Load() }

// Init starts every worker and sends it cfg; it returns once all of them are serving, or
// the first start-up error (the pool is then stopped).
func (p *Pool) Init(ctx context.Context, cfg map[string]string) error {
	if len(p.cfg.Command) == 0 {
		return fmt.Errorf("%s: worker command is empty: %w", p.cfg.Name, aserr.ErrInvalidParam)
	}
	p.mu.Lock()
	if p.state != stateNew {
		p.mu.Unlock()
		return fmt.Errorf("%s: init called twice: %w", p.cfg.Name, aserr.ErrInvalidOp)
	}
	p.state = stateRunning
	p.initCfg = cfg
	p.mu.Unlock()

	first := make(chan error, p.cfg.Size)
	for i := range p.cfg.Size {
		p.wg.Add(1)
		go p.supervise(i, first)
	}
	var err error
	for range p.cfg.Size {
		select {
		case e := <-first:
			if e != nil && err == nil {
				err = e
			}
		case <-ctx.Done():
			err = ctx.Err()
		}
		if err != nil {
			break
		}
	}
	if err != nil {
		p.stop()
		return fmt.Errorf("%s init: %w", p.cfg.Name, err)
	}
	return nil
}

// Fini: (1) refuse new calls, (2) call Fini on every live worker (bounded by ctx), (3) close
// every worker socket so the children exit by themselves, (4) kill those still running
// after StopGrace, (5) wait for the supervisors and process reapers.
func (p *Pool) Fini(ctx context.Context) error {
	p.mu.Lock()
	if p.state != stateRunning {
		p.mu.Unlock()
		return nil
	}
	p.state = stateStopped
	live := append([]*proc(nil), p.live...)
	p.mu.Unlock()
	var errs []error
	for _, w := range live {
		if w == nil || w.lost() {
			continue
		}
		if _, err := w.call(ctx, MsgFini, p.nextID.Add(1), nil); err != nil {
			errs = append(errs, fmt.Errorf("worker %d fini: %w", w.id, err))
		}
	}
	p.stop()
	return errors.Join(errs...)
}

func (p *Pool) stop() {
	p.mu.Lock()
	p.state = stateStopped
	p.mu.Unlock()
	p.cancel()
	p.wg.Wait()
}

// supervise runs worker id: start, serve until it dies, restart with backoff, until the
// pool stops. The result of the first start goes to first; a failed first start ends it.
func (p *Pool) supervise(id int, first chan<- error) {
	defer p.wg.Done()
	backoff := p.cfg.RestartMin
	for n := 0; ; n++ {
		if n > 0 {
			p.restarts.Add(1)
		}
		w, err := p.start(id)
		if err == nil {
			// Live before Init returns, so callers (and PIDs) see every first worker.
			err = p.goLive(id, w)
		}
		if first != nil {
			first <- err
			first = nil
			if err != nil {
				return
			}
		}
		if err != nil {
			p.log.Error().Err(err).Int("worker", id).Dur("backoff", backoff).Msg("worker start failed")
		} else {
			began := time.Now()
			select {
			case <-w.dead:
			case <-p.ctx.Done():
			}
			p.setLive(id, nil)
			w.shutdown(p.cfg.StopGrace)
			if p.ctx.Err() != nil {
				return
			}
			if time.Since(began) > 10*p.cfg.RestartMax {
				backoff = p.cfg.RestartMin
			}
			p.log.Warn().Int("worker", id).Err(w.deadErr).Dur("backoff", backoff).Msg("worker died: restarting")
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-p.ctx.Done():
			t.Stop()
			return
		}
		backoff = min(2*backoff, p.cfg.RestartMax)
	}
}

func (p *Pool) setLive(id int, w *proc) {
	p.mu.Lock()
	p.live[id] = w
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
}

// pick returns the live worker with the least work in flight, waiting up to LiveWait
// while none is live.
func (p *Pool) pick(ctx context.Context) (*proc, error) {
	var timeout <-chan time.Time
	for {
		p.mu.Lock()
		if p.state != stateRunning {
			p.mu.Unlock()
			return nil, fmt.Errorf("%s: %w", p.cfg.Name, aserr.ErrReleased)
		}
		var best *proc
		var bestLoad int64
		for _, w := range p.live {
			if w == nil || w.lost() {
				continue
			}
			if l := w.load(); best == nil || l < bestLoad {
				best, bestLoad = w, l
			}
		}
		changed := p.changed
		p.mu.Unlock()
		if best != nil {
			return best, nil
		}
		if timeout == nil {
			t := time.NewTimer(p.cfg.LiveWait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-changed:
		case <-timeout:
			return nil, fmt.Errorf("%s: no live worker: %w", p.cfg.Name, aserr.ErrEngineCrashed)
		case <-ctx.Done():
			return nil, ctxError(ctx, p.cfg.Name+": waiting for a live worker")
		}
	}
}

func ctxError(ctx context.Context, what string) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", what, aserr.ErrOnceTimeout)
	}
	return ctx.Err()
}

// Once runs req on the least busy live worker.
func (p *Pool) Once(ctx context.Context, req engine.Request) (engine.Response, error) {
	w, err := p.pick(ctx)
	if err != nil {
		return engine.Response{}, err
	}
	e := getEncoder()
	e.Request(req)
	m, err := w.call(ctx, MsgOnce, p.nextID.Add(1), e.B)
	putEncoder(e)
	if err != nil {
		return engine.Response{}, err
	}
	d := NewDecoder(m.Body)
	resp := d.Response()
	if err := d.Done(); err != nil {
		w.kill()
		return engine.Response{}, fmt.Errorf("worker %d once reply: %v: %w", w.id, err, aserr.ErrEngineCrashed)
	}
	return resp, nil
}

// NewSession opens a session on the least busy live worker; it stays there.
func (p *Pool) NewSession(ctx context.Context, sp engine.SessionParams, emit engine.Emit) (engine.Session, error) {
	w, err := p.pick(ctx)
	if err != nil {
		return nil, err
	}
	id := p.nextID.Add(1)
	rs := newRemoteSession(w, id, emit)
	if !w.addSession(rs) {
		rs.stopDelivery()
		return nil, fmt.Errorf("worker %d: %w", w.id, aserr.ErrEngineCrashed)
	}
	var e Encoder
	e.SessionParams(sp)
	if _, err := w.call(ctx, MsgOpen, id, e.B); err != nil {
		w.removeSession(id)
		rs.stopDelivery()
		return nil, err
	}
	return rs, nil
}

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

	wmu sync.Mutex // serialises frame writes
	buf []byte

	inflight atomic.Int64
	closing  atomic.Bool // set by shutdown: losing the connection is expected

	mu       sync.Mutex
	calls    map[uint64]chan Message
	sessions map[uint64]*remoteSession
	isDead   bool

	dead    chan struct{} // closed when the connection is lost
	deadErr error         // why; set before dead is closed
	exited  chan struct{} // closed once the process was reaped
	exitErr error         // cmd.Wait's error; set before exited is closed
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
		pool: p, id: id, conn: conn, calls: map[uint64]chan Message{}, sessions: map[uint64]*remoteSession{},
		dead: make(chan struct{}), exited: make(chan struct{}),
	}
	cmd := exec.Command(p.cfg.Command[0], p.cfg.Command[1:]...)
	cmd.Dir = p.cfg.Dir
	cmd.Env = append(append(os.Environ(), p.cfg.Env...), EnvFD+"=3", EnvID+"="+strconv.Itoa(id))
	cmd.ExtraFiles = []*os.File{theirs}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = time.Second
	w.cmd = cmd
	w.log = p.log.With().Int("worker", id).Logger()
	cmd.Stdout = newLineLog(w.log, "stdout")
	cmd.Stderr = newLineLog(w.log, "stderr")
	err = cmd.Start()
	_ = theirs.Close()
	if err != nil {
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
		m, err := ReadFrame(r)
		if err != nil {
			w.die(err)
			return
		}
		switch m.Type {
		case MsgOK, MsgErr:
			w.mu.Lock()
			ch := w.calls[m.ID]
			delete(w.calls, m.ID)
			w.mu.Unlock()
			if ch != nil {
				ch <- m
			}
		case MsgResult:
			d := NewDecoder(m.Body)
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
		default:
			w.die(fmt.Errorf("unexpected message %s: %w", m.Type, ErrMalformed))
			return
		}
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
	w.calls = map[uint64]chan Message{}
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

func (w *proc) send(t MsgType, id uint64, body []byte) error {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	w.buf = AppendFrame(w.buf[:0], t, id, body)
	_, err := w.conn.Write(w.buf)
	if cap(w.buf) > 1<<20 {
		w.buf = nil
	}
	return err
}

// call sends a request and waits for its answer. The worker's death fails it with 10109;
// ctx's deadline with 10102, after which the worker is killed if the call is still
// running HangGrace later.
func (w *proc) call(ctx context.Context, t MsgType, id uint64, body []byte) (Message, error) {
	ch := make(chan Message, 1)
	w.mu.Lock()
	if w.isDead {
		w.mu.Unlock()
		<-w.dead
		return Message{}, w.deadErr
	}
	w.calls[id] = ch
	w.mu.Unlock()
	w.inflight.Add(1)
	defer w.inflight.Add(-1)
	if err := w.send(t, id, body); err != nil {
		w.die(fmt.Errorf("send %s: %w", t, err))
		<-w.dead
		return Message{}, w.deadErr
	}
	select {
	case m := <-ch:
		if m.Type == MsgErr {
			d := NewDecoder(m.Body)
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

// remoteSession is a session open on one worker. Results are handed to emit by the
// session's own delivery goroutine, so a slow consumer never stalls the worker's reader;
// Close stops it.
type remoteSession struct {
	w    *proc
	id   uint64
	emit engine.Emit

	mu     sync.Mutex
	queue  []engine.Result
	failed error
	closed bool

	signal    chan struct{}
	quit      chan struct{}
	delivered chan struct{}
	closeOnce sync.Once
}

func newRemoteSession(w *proc, id uint64, emit engine.Emit) *remoteSession {
	rs := &remoteSession{w: w, id: id, emit: emit, signal: make(chan struct{}, 1), quit: make(chan struct{}), delivered: make(chan struct{})}
	go rs.deliverLoop()
	return rs
}

func (rs *remoteSession) deliverLoop() {
	defer close(rs.delivered)
	for {
		select {
		case <-rs.signal:
		case <-rs.quit:
			return
		}
		for {
			rs.mu.Lock()
			if len(rs.queue) == 0 || rs.closed {
				rs.mu.Unlock()
				break
			}
			r := rs.queue[0]
			rs.queue[0] = engine.Result{}
			rs.queue = rs.queue[1:]
			rs.mu.Unlock()
			rs.emit(r)
		}
	}
}

func (rs *remoteSession) deliver(r engine.Result) {
	rs.mu.Lock()
	if rs.closed || rs.failed != nil {
		rs.mu.Unlock()
		return
	}
	rs.queue = append(rs.queue, r)
	rs.mu.Unlock()
	select {
	case rs.signal <- struct{}{}:
	default:
	}
}

func (rs *remoteSession) fail(err error) {
	rs.mu.Lock()
	if rs.closed || rs.failed != nil {
		rs.mu.Unlock()
		return
	}
	rs.failed = err
	rs.queue = append(rs.queue, engine.Result{Err: err})
	rs.mu.Unlock()
	select {
	case rs.signal <- struct{}{}:
	default:
	}
}

func (rs *remoteSession) stopDelivery() {
	rs.mu.Lock()
	rs.closed = true
	rs.mu.Unlock()
	close(rs.quit)
	<-rs.delivered
}

// Write sends one frame to the worker and waits until the engine took it.
func (rs *remoteSession) Write(ctx context.Context, f engine.Frame) error {
	rs.mu.Lock()
	failed, closed := rs.failed, rs.closed
	rs.mu.Unlock()
	switch {
	case failed != nil:
		return failed
	case closed:
		return fmt.Errorf("write after close: %w", aserr.ErrInvalidOp)
	}
	e := getEncoder()
	e.Write(rs.id, f)
	_, err := rs.w.call(ctx, MsgWrite, rs.w.pool.nextID.Add(1), e.B)
	putEncoder(e)
	return err
}

// closeTimeout bounds the engine's destroy of one session.
const closeTimeout = 5 * time.Second

// Close destroys the session on the worker (unless the worker died) and stops delivery.
func (rs *remoteSession) Close() error {
	var err error
	rs.closeOnce.Do(func() {
		rs.mu.Lock()
		failed := rs.failed
		rs.closed = true
		rs.mu.Unlock()
		if failed == nil {
			ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
			var e Encoder
			e.SessionID(rs.id)
			_, err = rs.w.call(ctx, MsgClose, rs.w.pool.nextID.Add(1), e.B)
			cancel()
			if errors.Is(err, aserr.ErrEngineCrashed) {
				err = nil
			}
		}
		rs.w.removeSession(rs.id)
		close(rs.quit)
		<-rs.delivered
	})
	return err
}

// lineLog writes each line a worker prints to the log.
type lineLog struct {
	log    zerolog.Logger
	stream string
	mu     sync.Mutex
	part   []byte
}

func newLineLog(log zerolog.Logger, stream string) *lineLog {
	return &lineLog{log: log, stream: stream}
}

const maxLogLine = 16 << 10

func (l *lineLog) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			l.part = append(l.part, b...)
			if len(l.part) > maxLogLine {
				l.flush()
			}
			break
		}
		l.part = append(l.part, b[:i]...)
		l.flush()
		b = b[i+1:]
	}
	return n, nil
}

func (l *lineLog) flush() {
	if len(l.part) > 0 {
		l.log.Info().Str("stream", l.stream).Msg(string(l.part))
	}
	l.part = l.part[:0]
}

var _ io.Writer = (*lineLog)(nil)

// goLive loads every loaded resource into the new worker w, then makes it live; both
// under resMu, so a concurrent LoadResource either finds w live or its resource
// already in the set w loads. A resource w refuses fails w's start.
func (p *Pool) goLive(id int, w *proc) error {
	p.resMu.Lock()
	defer p.resMu.Unlock()
	if len(p.res) > 0 {
		ctx, cancel := context.WithTimeout(p.ctx, p.cfg.InitTimeout)
		defer cancel()
		for rid, data := range p.res {
			e := getEncoder()
			e.LoadRes(rid, data)
			_, err := w.call(ctx, MsgLoadRes, p.nextID.Add(1), e.B)
			putEncoder(e)
			if err != nil {
				w.shutdown(0)
				return fmt.Errorf("worker %d: reload resource %d: %w", id, rid, err)
			}
		}
		w.log.Info().Int("resources", len(p.res)).Msg("worker reloaded the personalisation resources")
	}
	p.setLive(id, w)
	return nil
}

func (p *Pool) liveWorkers() []*proc {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*proc, 0, len(p.live))
	for _, w := range p.live {
		if w != nil && !w.lost() {
			out = append(out, w)
		}
	}
	return out
}

// LoadResource loads resource id into every live worker (MsgLoadRes) and keeps data so
// that restarted workers load it before they take work. When a worker refuses, the
// others unload it again and the first refusal is returned.
func (p *Pool) LoadResource(ctx context.Context, id uint32, data []engine.Payload) error {
	if _, err := p.pick(ctx); err != nil { // wait (LiveWait) for a live worker
		return err
	}
	p.resMu.Lock()
	defer p.resMu.Unlock()
	e := getEncoder()
	e.LoadRes(id, data)
	defer putEncoder(e)
	var done []*proc
	for _, w := range p.liveWorkers() {
		if _, err := w.call(ctx, MsgLoadRes, p.nextID.Add(1), e.B); err != nil {
			p.unloadFrom(done, id)
			return fmt.Errorf("%s worker %d: load resource %d: %w", p.cfg.Name, w.id, id, err)
		}
		done = append(done, w)
	}
	kept := make([]engine.Payload, len(data))
	for i, pl := range data {
		kept[i] = engine.Payload{Meta: pl.Meta, Data: append([]byte(nil), pl.Data...)}
	}
	p.res[id] = kept
	return nil
}

// UnloadResource unloads resource id from every live worker (MsgUnloadRes); restarted
// workers no longer load it. It returns the first worker's refusal.
func (p *Pool) UnloadResource(ctx context.Context, id uint32) error {
	p.resMu.Lock()
	defer p.resMu.Unlock()
	delete(p.res, id)
	var errs []error
	e := getEncoder()
	e.ResID(id)
	defer putEncoder(e)
	for _, w := range p.liveWorkers() {
		if _, err := w.call(ctx, MsgUnloadRes, p.nextID.Add(1), e.B); err != nil {
			errs = append(errs, fmt.Errorf("%s worker %d: unload resource %d: %w", p.cfg.Name, w.id, id, err))
		}
	}
	return errors.Join(errs...)
}

// unloadFrom unloads id from ws, best effort (undoing a partial load).
func (p *Pool) unloadFrom(ws []*proc, id uint32) {
	var e Encoder
	e.ResID(id)
	ctx, cancel := context.WithTimeout(p.ctx, p.cfg.InitTimeout)
	defer cancel()
	for _, w := range ws {
		if _, err := w.call(ctx, MsgUnloadRes, p.nextID.Add(1), e.B); err != nil {
			w.log.Warn().Err(err).Uint32("resource", id).Msg("undo a partial resource load")
		}
	}
}
