// Package hotswap holds a loader's engine so its configuration can change while it
// serves: Swap initialises a new engine instance beside the running one, moves new once
// requests and sessions to it once its Init succeeded, and lets the old instance finish
// what it runs (bounded) before its Fini. When the new instance's Init fails, the old one
// keeps serving and Swap returns the error.
//
//	e := hotswap.New(first, hotswap.Options{Retire: 30 * time.Second, Log: log})
//	_ = e.Init(ctx, cfg)                  // first's Init
//	err := e.Swap(ctx, second, newCfg)    // second's Init; on success new work goes to second
//	_ = e.Fini(ctx)                       // the current instance's Fini, and every retiring one's
//
// Personalisation resources loaded through e (engine.ResourceLoader, when the first
// instance provides it) are loaded into the new instance before it takes work.
package hotswap

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/services/loader/engine"
	"github.com/rs/zerolog"
)

// Options configure an Engine.
type Options struct {
	// Retire bounds how long a replaced instance may keep finishing its once requests and
	// sessions before its Fini (default 30 s).
	Retire time.Duration
	// Log receives swaps and retirements.
	Log zerolog.Logger
}

// instance is one engine instance and the work it runs.
type instance struct {
	eng  engine.Engine
	gen  int
	busy sync.WaitGroup // once requests and sessions running on eng
}

// Engine is an engine.Engine whose instance can be replaced by Swap. Its lock order:
// swapMu (held by Swap and the resource calls) before mu.
type Engine struct {
	opt Options

	swapMu    sync.Mutex
	resources map[uint32][]engine.Payload // loaded through the engine, replayed into a new instance

	mu      sync.Mutex
	cur     *instance
	retired sync.WaitGroup // retiring instances until their Fini returned
	stop    chan struct{}  // closed by Fini: retiring instances are finished at once
	closed  bool
}

// New returns an Engine serving first (not yet initialised). When first implements
// engine.ResourceLoader, so does the returned engine.
func New(first engine.Engine, opt Options) engine.Engine {
	e := newEngine(first, opt)
	if _, ok := first.(engine.ResourceLoader); ok {
		return &resourceEngine{e}
	}
	return e
}

func newEngine(first engine.Engine, opt Options) *Engine {
	if opt.Retire <= 0 {
		opt.Retire = 30 * time.Second
	}
	return &Engine{opt: opt, cur: &instance{eng: first, gen: 1}, stop: make(chan struct{}), resources: map[uint32][]engine.Payload{}}
}

// Of returns the *Engine behind e when New built it.
func Of(e engine.Engine) (*Engine, bool) {
	switch x := e.(type) {
	case *Engine:
		return x, true
	case *resourceEngine:
		return x.Engine, true
	}
	return nil, false
}

// Name is the current instance's name.
func (e *Engine) Name() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cur.eng.Name()
}

// Generation counts the instances that served: 1 until the first successful Swap.
func (e *Engine) Generation() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cur.gen
}

// Init initialises the first instance.
func (e *Engine) Init(ctx context.Context, cfg map[string]string) error {
	e.mu.Lock()
	cur := e.cur
	e.mu.Unlock()
	return cur.eng.Init(ctx, cfg)
}

// acquire returns the current instance with one more unit of work counted on it.
func (e *Engine) acquire() (*instance, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, fmt.Errorf("engine: %w", aserr.ErrReleased)
	}
	e.cur.busy.Add(1)
	return e.cur, nil
}

// Once runs req on the current instance.
func (e *Engine) Once(ctx context.Context, req engine.Request) (engine.Response, error) {
	in, err := e.acquire()
	if err != nil {
		return engine.Response{}, err
	}
	defer in.busy.Done()
	return in.eng.Once(ctx, req)
}

// NewSession opens a session on the current instance; it stays there until it closes.
func (e *Engine) NewSession(ctx context.Context, p engine.SessionParams, emit engine.Emit) (engine.Session, error) {
	in, err := e.acquire()
	if err != nil {
		return nil, err
	}
	s, err := in.eng.NewSession(ctx, p, emit)
	if err != nil {
		in.busy.Done()
		return nil, err
	}
	return &session{Session: s, in: in}, nil
}

type session struct {
	engine.Session
	in   *instance
	once sync.Once
}

func (s *session) Close() error {
	err := s.Session.Close()
	s.once.Do(s.in.busy.Done)
	return err
}

// Swap initialises next with cfg and, when that succeeds, makes it the current instance:
// later once requests and sessions run on next, while the replaced instance finishes
// its running work (at most Options.Retire) and is then Fini'd in the background. When
// next's Init (or loading the resources loaded so far into it) fails, next is Fini'd,
// the current instance keeps serving and the error is returned.
func (e *Engine) Swap(ctx context.Context, next engine.Engine, cfg map[string]string) error {
	e.swapMu.Lock()
	defer e.swapMu.Unlock()
	e.mu.Lock()
	closed := e.closed
	e.mu.Unlock()
	if closed {
		return fmt.Errorf("engine swap: %w", aserr.ErrReleased)
	}
	if err := next.Init(ctx, cfg); err != nil {
		_ = next.Fini(context.WithoutCancel(ctx))
		return fmt.Errorf("new engine instance init: %w", err)
	}
	if len(e.resources) > 0 {
		rl, ok := next.(engine.ResourceLoader)
		for id, data := range e.resources {
			var err error
			if !ok {
				err = fmt.Errorf("engine %s cannot load resources: %w", next.Name(), aserr.ErrInvalidOp)
			} else {
				err = rl.LoadResource(ctx, id, data)
			}
			if err != nil {
				_ = next.Fini(context.WithoutCancel(ctx))
				return fmt.Errorf("new engine instance: resource %d: %w", id, err)
			}
		}
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		_ = next.Fini(context.WithoutCancel(ctx))
		return fmt.Errorf("engine swap: %w", aserr.ErrReleased)
	}
	old := e.cur
	e.cur = &instance{eng: next, gen: old.gen + 1}
	e.retired.Add(1)
	e.mu.Unlock()
	e.opt.Log.Info().Int("generation", old.gen+1).Str("engine", next.Name()).Msg("engine instance replaced: new work goes to the new instance")
	go e.retire(old)
	return nil
}

// retire waits for old's work (at most Options.Retire, or until Fini) and Finis it.
func (e *Engine) retire(old *instance) {
	defer e.retired.Done()
	done := make(chan struct{})
	go func() { old.busy.Wait(); close(done) }() // ends when the last session closes
	t := time.NewTimer(e.opt.Retire)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		e.opt.Log.Warn().Int("generation", old.gen).Dur("retire", e.opt.Retire).Msg("replaced engine instance still busy: finishing it")
	case <-e.stop:
	}
	if err := old.eng.Fini(context.Background()); err != nil {
		e.opt.Log.Warn().Err(err).Int("generation", old.gen).Msg("replaced engine instance fini")
		return
	}
	e.opt.Log.Info().Int("generation", old.gen).Msg("replaced engine instance finished")
}

// Fini finishes every retiring instance at once, then the current one.
func (e *Engine) Fini(ctx context.Context) error {
	e.mu.Lock()
	if !e.closed {
		e.closed = true
		close(e.stop)
	}
	cur := e.cur
	e.mu.Unlock()
	e.retired.Wait()
	return cur.eng.Fini(ctx)
}

// resourceEngine is an Engine whose first instance loads personalisation resources.
type resourceEngine struct{ *Engine }

var _ engine.ResourceLoader = (*resourceEngine)(nil)

// LoadResource loads id into the current instance and keeps data for later instances.
func (r *resourceEngine) LoadResource(ctx context.Context, id uint32, data []engine.Payload) error {
	r.swapMu.Lock()
	defer r.swapMu.Unlock()
	r.mu.Lock()
	cur := r.cur
	r.mu.Unlock()
	rl, ok := cur.eng.(engine.ResourceLoader)
	if !ok {
		return fmt.Errorf("engine %s cannot load resources: %w", cur.eng.Name(), aserr.ErrInvalidOp)
	}
	if err := rl.LoadResource(ctx, id, data); err != nil {
		return err
	}
	r.resources[id] = data
	return nil
}

// UnloadResource unloads id from the current instance.
func (r *resourceEngine) UnloadResource(ctx context.Context, id uint32) error {
	r.swapMu.Lock()
	defer r.swapMu.Unlock()
	delete(r.resources, id)
	r.mu.Lock()
	cur := r.cur
	r.mu.Unlock()
	rl, ok := cur.eng.(engine.ResourceLoader)
	if !ok {
		return errors.New("engine cannot unload resources")
	}
	return rl.UnloadResource(ctx, id)
}
