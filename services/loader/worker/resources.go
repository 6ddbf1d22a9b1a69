package worker

import (
	"context"
	"errors"
	"fmt"

	"github.com/athenaserving/asf/services/loader/engine"
)

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
