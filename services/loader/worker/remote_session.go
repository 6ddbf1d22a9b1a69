package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/services/loader/engine"
)

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
