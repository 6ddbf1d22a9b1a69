package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
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
	// worker socket in the descriptor named by envFD (always 3) and its id in EnvID.
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
	// Handoff, when positive, gives every worker a second socket (descriptor 4, named by
	// EnvNudgeFD) on which the pool writes a byte, at most once per Handoff, while a call
	// sent Handoff or longer ago is unanswered. A child that runs calls on the thread that
	// reads them (the Python runtime) waits on it to hand the reading over from a long
	// call, instead of looking at the clock every Handoff itself. 0: no such socket.
	Handoff time.Duration
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
	d := newDecoder(m.Body)
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
