package balance

import (
	"slices"
	"sort"
	"time"
)

// replicaRefresh bounds how long a computed replica set is reused.
const replicaRefresh = 20 * time.Millisecond

// replicaSet is the lbclient replicas sharing the loaders, as seen at a moment.
type replicaSet struct {
	members []string // sorted addresses in rotation
	self    int      // index of Self in members; -1 when absent
	at      time.Time
}

// replicas returns the replica set at now, recomputing it when the replica service
// changed or the cached one is older than replicaRefresh. Nil without replica
// accounting.
func (v *View) replicas(now time.Time) *replicaSet {
	if v.opts.ReplicaService == "" {
		return nil
	}
	if r := v.repl.Load(); r != nil && !v.replDirty.Load() && now.Sub(r.at) < replicaRefresh && !now.Before(r.at) {
		return r
	}
	v.replDirty.Store(false)
	r := &replicaSet{self: -1, at: now}
	fz := v.freeze.Load()
	if s := v.get(v.opts.ReplicaService); s != nil {
		s.mu.Lock()
		for _, l := range s.loaders {
			if ok, _ := v.inRotation(l, now, fz); ok {
				r.members = append(r.members, l.addr)
			}
		}
		s.mu.Unlock()
	}
	sort.Strings(r.members)
	r.self = slices.Index(r.members, v.opts.Self)
	v.repl.Store(r)
	return r
}

// share is the part of idle slots this replica may use: idle split evenly between the
// R replicas in address order, the remainder going to the replicas that follow the
// loader's hash position (so remainders of different loaders land on different
// replicas). The shares of all replicas add up to idle. Without replica accounting
// (r nil, or no replica registered yet) the share is all of idle; a replica that does
// not see itself registered while others are gets none.
func share(idle int32, h uint64, r *replicaSet) int32 {
	if r == nil || len(r.members) == 0 {
		return idle
	}
	if r.self < 0 || idle <= 0 {
		return 0
	}
	n := len(r.members)
	q, rem := idle/int32(n), idle%int32(n)
	pos := (r.self - int(h%uint64(n)) + n) % n
	if int32(pos) < rem {
		q++
	}
	return q
}

// Replicas returns the lbclient replicas sharing the loaders' idle slots at now (sorted)
// and this replica's index among them (-1 when it is not among them). Empty without
// replica accounting.
func (v *View) Replicas(now time.Time) ([]string, int) {
	r := v.replicas(now)
	if r == nil {
		return nil, -1
	}
	return slices.Clone(r.members), r.self
}
