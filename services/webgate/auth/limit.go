package auth

import (
	"sync"
	"time"
)

// Limiter keeps the per-app runtime state that outlives config reloads: a token bucket
// for QPS and the app's open leases (concurrent once requests, WebSocket connections and
// the sub-sessions of multiplexed sockets beyond their first).
// It is safe for concurrent use. Lock order: Limiter.mu, then appState.mu.
type Limiter struct {
	mu   sync.Mutex
	apps map[string]*appState
	now  func() time.Time
}

type appState struct {
	mu     sync.Mutex
	tokens float64
	last   time.Time
	leases []*Lease // oldest first
}

// Lease is one admitted request or connection; Release it when it ends.
type Lease struct {
	app    string
	kick   func()
	kicked bool
	st     *appState
}

// NewLimiter returns an empty Limiter.
func NewLimiter() *Limiter {
	return &Limiter{apps: map[string]*appState{}, now: time.Now}
}

func (l *Limiter) state(id string) *appState {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.apps[id]
	if st == nil {
		st = &appState{tokens: -1}
		l.apps[id] = st
	}
	return st
}

// Allow takes one token from app's bucket (rate QPS, burst max(1, QPS)); it reports false
// when the bucket is empty. Apps without a QPS limit are always allowed.
func (l *Limiter) Allow(app *App) bool {
	if app.QPS <= 0 {
		return true
	}
	st := l.state(app.ID)
	now := l.now()
	burst := max(1, app.QPS)
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.tokens < 0 { // first use
		st.tokens, st.last = burst, now
	}
	st.tokens = min(burst, st.tokens+now.Sub(st.last).Seconds()*app.QPS)
	st.last = now
	if st.tokens < 1 {
		return false
	}
	st.tokens--
	return true
}

// Acquire admits one more concurrent request or connection of app, or reports false when
// app already has MaxSessions. kick, when not nil, is called (once, from Enforce) to end
// the connection when a lowered limit makes it excess.
func (l *Limiter) Acquire(app *App, kick func()) (*Lease, bool) {
	st := l.state(app.ID)
	st.mu.Lock()
	defer st.mu.Unlock()
	if app.MaxSessions > 0 && st.liveLocked() >= app.MaxSessions {
		return nil, false
	}
	ls := &Lease{app: app.ID, kick: kick, st: st}
	st.leases = append(st.leases, ls)
	return ls, true
}

// Release ends a lease; releasing twice is harmless.
func (l *Limiter) Release(ls *Lease) {
	if ls == nil {
		return
	}
	st := ls.st
	st.mu.Lock()
	defer st.mu.Unlock()
	for i, x := range st.leases {
		if x == ls {
			st.leases = append(st.leases[:i], st.leases[i+1:]...)
			return
		}
	}
}

// Active returns the number of open leases of app id.
func (l *Limiter) Active(id string) int {
	st := l.state(id)
	st.mu.Lock()
	defer st.mu.Unlock()
	return len(st.leases)
}

// liveLocked counts leases not already asked to end.
func (st *appState) liveLocked() int {
	n := 0
	for _, ls := range st.leases {
		if !ls.kicked {
			n++
		}
	}
	return n
}

// Enforce applies set's concurrency limits to open connections: an app over its
// MaxSessions has its newest kickable connections kicked until it is within the limit.
// It returns the number kicked.
func (l *Limiter) Enforce(set *AppSet) int {
	l.mu.Lock()
	states := make(map[string]*appState, len(l.apps))
	for id, st := range l.apps {
		states[id] = st
	}
	l.mu.Unlock()
	kicked := 0
	for id, st := range states {
		app := set.ByID(id)
		if app == nil || app.MaxSessions <= 0 {
			continue
		}
		var kick []func()
		st.mu.Lock()
		excess := st.liveLocked() - app.MaxSessions
		for i := len(st.leases) - 1; i >= 0 && excess > 0; i-- {
			ls := st.leases[i]
			if ls.kicked || ls.kick == nil {
				continue
			}
			ls.kicked = true
			kick = append(kick, ls.kick)
			excess--
		}
		st.mu.Unlock()
		for _, k := range kick {
			k()
			kicked++
		}
	}
	return kicked
}
