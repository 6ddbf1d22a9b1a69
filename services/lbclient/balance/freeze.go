package balance

import "time"

// freezeState is the view's frozen mode as of its last change.
type freezeState struct {
	frozen bool
	since  time.Time // when the view froze (frozen) or thawed (not frozen)
	// thawed is when the last frozen period ended: staleness and forgetting count from
	// it at the earliest, so a loader gets StaleAfter after a thaw to report again.
	thawed time.Time
}

// age is how long l counts as silent at now under fz; frozen, no loader ages.
func (fz *freezeState) age(l *loader, now time.Time) (time.Duration, bool) {
	if fz.frozen {
		return 0, false
	}
	from := l.lastReport
	if fz.thawed.After(from) {
		from = fz.thawed
	}
	return now.Sub(from), true
}

// Freeze puts the view in frozen mode at now, for when its source is cut off from the
// registry (no event can arrive, so silence says nothing about a loader): loaders stop
// going stale and Sweep forgets none, so picks go on over the last known loads. Loaders
// not live, disabled or removed stay out of rotation. It returns false when the view
// was frozen already.
func (v *View) Freeze(now time.Time) bool {
	v.fmu.Lock()
	defer v.fmu.Unlock()
	if v.freeze.Load().frozen {
		return false
	}
	v.freeze.Store(&freezeState{frozen: true, since: now})
	v.replDirty.Store(true)
	return true
}

// Thaw ends frozen mode at now (the source is back): staleness applies again at once,
// counted from now at the earliest, so every loader has StaleAfter to report again. It
// returns false when the view was not frozen.
func (v *View) Thaw(now time.Time) bool {
	v.fmu.Lock()
	defer v.fmu.Unlock()
	if !v.freeze.Load().frozen {
		return false
	}
	v.freeze.Store(&freezeState{since: now, thawed: now})
	v.replDirty.Store(true)
	return true
}

// Frozen tells whether the view is in frozen mode, and since when.
func (v *View) Frozen() (bool, time.Time) {
	fz := v.freeze.Load()
	if !fz.frozen {
		return false, time.Time{}
	}
	return true, fz.since
}
