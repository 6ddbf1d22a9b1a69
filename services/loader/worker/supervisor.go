package worker

import (
	"context"
	"fmt"
	"time"
)

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
