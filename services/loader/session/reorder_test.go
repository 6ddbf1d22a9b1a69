package session

import (
	"testing"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/services/loader/engine"
)

func ids(fs []engine.Frame) []int32 {
	out := make([]int32, len(fs))
	for i, f := range fs {
		out[i] = f.SyncID
	}
	return out
}

func eq(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestReorderHoldsUntilGapFills(t *testing.T) {
	r := newReorder(8)
	for _, id := range []int32{2, 1} {
		ready, _, err := r.push(engine.Frame{SyncID: id})
		if err != nil || len(ready) != 0 {
			t.Fatalf("push %d: ready=%v err=%v", id, ids(ready), err)
		}
	}
	ready, _, err := r.push(engine.Frame{SyncID: 0})
	if err != nil || !eq(ids(ready), []int32{0, 1, 2}) {
		t.Fatalf("ready = %v, %v", ids(ready), err)
	}
	if _, _, err := r.push(engine.Frame{SyncID: 1}); aserr.CodeOf(err) != 10009 {
		t.Fatalf("duplicate: %v, want 10009", err)
	}
}

func TestReorderSkipAndLateFrame(t *testing.T) {
	r := newReorder(8)
	_, _, _ = r.push(engine.Frame{SyncID: 0})
	ready, _, _ := r.push(engine.Frame{SyncID: 3})
	if len(ready) != 0 || r.pending() != 1 {
		t.Fatalf("ready=%v pending=%d", ids(ready), r.pending())
	}
	if got := ids(r.skip(nil)); !eq(got, []int32{3}) {
		t.Fatalf("skip = %v", got)
	}
	ready, dropped, err := r.push(engine.Frame{SyncID: 2})
	if err != nil || !dropped || len(ready) != 0 {
		t.Fatalf("late frame: ready=%v dropped=%v err=%v", ids(ready), dropped, err)
	}
}

func TestReorderOverflowSkips(t *testing.T) {
	r := newReorder(2)
	var all []int32
	for _, id := range []int32{1, 2, 3} {
		ready, _, err := r.push(engine.Frame{SyncID: id})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, ids(ready)...)
	}
	if !eq(all, []int32{1, 2, 3}) {
		t.Fatalf("ready = %v, want the held frames once more than 2 wait", all)
	}
}

func TestReorderEnd(t *testing.T) {
	r := newReorder(8)
	_, _, _ = r.push(engine.Frame{SyncID: 1, Status: engine.StatusEnd})
	if _, _, err := r.push(engine.Frame{SyncID: 2}); aserr.CodeOf(err) != 10003 {
		t.Fatalf("frame after end: %v", err)
	}
	if _, _, err := r.push(engine.Frame{SyncID: 3, Status: engine.StatusEnd}); aserr.CodeOf(err) != 10003 {
		t.Fatalf("second end: %v", err)
	}
	if ready, _, err := r.push(engine.Frame{SyncID: 0}); err != nil || !eq(ids(ready), []int32{0, 1}) {
		t.Fatalf("ready = %v, %v", ids(ready), err)
	}
}

// FuzzReorder feeds arbitrary sync_id sequences and checks that frames come out strictly
// increasing, each at most once, and that nothing accepted is lost after a final skip.
func FuzzReorder(f *testing.F) {
	f.Add([]byte{2, 1, 0, 3}, uint8(4))
	f.Add([]byte{0, 0, 5, 9, 1}, uint8(1))
	f.Add([]byte{255, 3, 3}, uint8(0))
	f.Fuzz(func(t *testing.T, seq []byte, max uint8) {
		r := newReorder(int(max % 16))
		accepted := map[int32]bool{}
		var out []int32
		last := int32(-1)
		check := func(fs []engine.Frame) {
			for _, f := range fs {
				if f.SyncID <= last {
					t.Fatalf("out of order: %d after %d (seq %v)", f.SyncID, last, seq)
				}
				last = f.SyncID
				out = append(out, f.SyncID)
			}
		}
		for i, b := range seq {
			id := int32(b)
			st := engine.StatusContinue
			if i == len(seq)-1 {
				st = engine.StatusEnd
			}
			ready, dropped, err := r.push(engine.Frame{SyncID: id, Status: st})
			if err == nil && !dropped {
				accepted[id] = true
			}
			check(ready)
			if i%5 == 4 {
				check(r.skip(nil))
			}
		}
		for r.pending() > 0 {
			check(r.skip(nil))
		}
		if len(out) != len(accepted) {
			t.Fatalf("accepted %d frames, delivered %d (%v)", len(accepted), len(out), out)
		}
	})
}
