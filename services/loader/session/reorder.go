package session

import (
	"fmt"
	"sort"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/services/loader/engine"
)

// maxSkipped bounds how many skipped sync_id ranges are remembered to recognise late frames.
const maxSkipped = 16

type span struct{ lo, hi int64 } // [lo, hi)

// reorder puts the frames of one session back in sync_id order. It is not safe for
// concurrent use; the session's run goroutine owns it.
type reorder struct {
	next    int64
	held    map[int64]engine.Frame
	max     int
	skipped []span
	endID   int64 // -1 until an END frame was seen
}

func newReorder(max int) *reorder {
	if max < 1 {
		max = 1
	}
	return &reorder{held: map[int64]engine.Frame{}, max: max, endID: -1}
}

// push accepts a frame and returns the frames now ready, in order. dropped is true for a
// late frame whose sync_id was already skipped. A duplicate sync_id, a second END or a
// frame after the END is an error.
func (r *reorder) push(f engine.Frame) (ready []engine.Frame, dropped bool, err error) {
	id := int64(f.SyncID)
	if id < r.next {
		if r.wasSkipped(id) {
			return nil, true, nil
		}
		return nil, false, fmt.Errorf("sync_id %d already received: %w", id, aserr.ErrInvalidData)
	}
	if _, dup := r.held[id]; dup {
		return nil, false, fmt.Errorf("sync_id %d already received: %w", id, aserr.ErrInvalidData)
	}
	if r.endID >= 0 {
		if f.Status == engine.StatusEnd {
			return nil, false, fmt.Errorf("second END frame (sync_id %d): %w", id, aserr.ErrInvalidOp)
		}
		if id > r.endID {
			return nil, false, fmt.Errorf("frame sync_id %d after END sync_id %d: %w", id, r.endID, aserr.ErrInvalidOp)
		}
	}
	if f.Status == engine.StatusEnd {
		r.endID = id
	}
	r.held[id] = f
	ready = r.drain(nil)
	if len(r.held) > r.max {
		ready = r.skip(ready)
	}
	return ready, false, nil
}

// pending is the number of frames held back behind a gap.
func (r *reorder) pending() int { return len(r.held) }

// skip gives up on the current gap: it jumps to the lowest held frame and returns the
// frames then ready, appended to ready.
func (r *reorder) skip(ready []engine.Frame) []engine.Frame {
	if len(r.held) == 0 {
		return ready
	}
	ids := make([]int64, 0, len(r.held))
	for id := range r.held {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	r.skipped = append(r.skipped, span{r.next, ids[0]})
	if len(r.skipped) > maxSkipped {
		r.skipped = r.skipped[len(r.skipped)-maxSkipped:]
	}
	r.next = ids[0]
	return r.drain(ready)
}

func (r *reorder) drain(ready []engine.Frame) []engine.Frame {
	for {
		f, ok := r.held[r.next]
		if !ok {
			return ready
		}
		delete(r.held, r.next)
		ready = append(ready, f)
		r.next++
	}
}

func (r *reorder) wasSkipped(id int64) bool {
	for _, s := range r.skipped {
		if id >= s.lo && id < s.hi {
			return true
		}
	}
	return false
}
