package balance

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults used when Options leaves a field zero.
const (
	DefaultReportInterval = time.Second
	DefaultStaleAfter     = 3 * DefaultReportInterval
	DefaultForgetAfter    = 10 * DefaultReportInterval
	DefaultWeight         = 100
	// DefaultLease is how long a pick stays charged against a loader after a later
	// report arrived: a report sent before the picked session reached the loader does
	// not count it yet.
	DefaultLease = 100 * time.Millisecond
)

// maxInFlight bounds the picks remembered per loader.
const maxInFlight = 4096

// Load is the soft state a loader reports.
type Load struct {
	Total int32 `json:"total"`
	Best  int32 `json:"best"`
	Idle  int32 `json:"idle"`
	Live  int32 `json:"live"`
}

// Admin is operator state kept apart from liveness.
type Admin struct {
	Enabled bool  `json:"enabled"`
	Weight  int32 `json:"weight"`
}

// DefaultAdmin is the admin state of an instance nobody configured: enabled, weight 100.
var DefaultAdmin = Admin{Enabled: true, Weight: DefaultWeight}

// Instance is one loader as the registry describes it (snapshot and membership events).
type Instance struct {
	Service string
	Addr    string
	// Version is the version of the engine the loader serves ("" when it registered
	// none); a pick for "<service>@<version>" returns only that version's loaders.
	Version string
	Load    Load
	// Admin is nil when the event carried none; DefaultAdmin is assumed for a new loader
	// and an existing loader keeps its admin state.
	Admin *Admin
	Seq   uint64
	// NoLoad says the registry holds no load report for the loader yet (a registry
	// restarted from its store lists it so until the loader's next heartbeat): a loader
	// the view knows keeps its last load and report time then, taking only Seq.
	NoLoad bool
}

// Options configure a View.
type Options struct {
	// StaleAfter takes a loader out of rotation when no report arrived for this long
	// (default 3 × 1 s).
	StaleAfter time.Duration
	// ForgetAfter removes a loader from memory in Sweep when no report arrived for this
	// long (default 10 × 1 s).
	ForgetAfter time.Duration
	// Strategy is the default strategy name ("" means least-load).
	Strategy string
	// Strategies overrides the strategy per service (service → strategy name).
	Strategies map[string]string
	// Lease is how long a pick stays charged after a newer report (default 100 ms);
	// it must cover the time from a pick to the loader's report of that session.
	Lease time.Duration
	// Epsilon is the consistent-hash load slack (default 0.25).
	Epsilon float64
	// ReplicaService is the registry service under which the lbclient replicas that
	// share the loaders register; its members in rotation split every loader's idle
	// slots between them. Empty: this view owns all idle slots.
	ReplicaService string
	// Self is this replica's address in ReplicaService.
	Self string
	// OnDropped, when set, is told of every loader that leaves rotation while live:
	// silent for StaleAfter (found by Expire) or removed by the registry after being
	// silent for half of it (an eviction; a deregistration follows a fresh report). A
	// loader not live, disabled by its admin state or removed on its own request is
	// never reported, nor anything while the view is frozen. It is called without the
	// view's locks held, from the caller of Expire or Remove, and must not block.
	OnDropped func(Dropped)
}

// Dropped is a loader that left rotation while live; Reason is DropSilent or DropEvicted.
type Dropped struct {
	Service, Addr, Reason string
}

// Reasons of a Dropped.
const (
	// DropSilent: no load report for StaleAfter.
	DropSilent = "silent"
	// DropEvicted: the registry removed the loader, silent for at least StaleAfter/2.
	DropEvicted = "evicted"
)

// View holds, per service, the loaders with their last load, admin state, report time
// and report sequence, and the picks this replica made since. It is safe for concurrent
// use: one read-write lock guards the set of services and one mutex each service, so
// picks for different services do not contend. Strategies run under the service lock.
type View struct {
	opts       Options
	strategies map[string]Strategy
	def        Strategy

	mu       sync.RWMutex
	services map[string]*service

	replDirty atomic.Bool
	repl      atomic.Pointer[replicaSet]

	fmu    sync.Mutex // serialises Freeze and Thaw
	freeze atomic.Pointer[freezeState]
}

type service struct {
	name     string
	strategy Strategy

	mu      sync.Mutex
	loaders map[string]*loader
	order   []*loader // loaders sorted by address; nil when membership changed
	state   *State
	// tombstones remember the seq of removed loaders so a load report that was
	// published before the removal but processed after it does not bring them back.
	tombstones  map[string]tombstone
	overcommits uint64 // picks whose first loader had no room left
	picks       uint64
	leased      uint64 // picks made by Lease (counted in picks too)
}

type tombstone struct {
	seq uint64
	at  time.Time
}

type loader struct {
	addr       string
	hash       uint64
	load       Load
	admin      Admin
	version    string // engine version ("" = none registered)
	lastReport time.Time
	seq        uint64
	// inflight are the times of this replica's picks not yet assumed to be counted by
	// the loader's report: every pick since the last report, and those within Lease
	// before it.
	inflight []time.Time
	// dropped is set once the loader was reported to OnDropped; its next report clears it.
	dropped bool
}

// NewView returns an empty view; it fails on an unknown strategy name.
func NewView(opts Options) (*View, error) {
	if opts.StaleAfter <= 0 {
		opts.StaleAfter = DefaultStaleAfter
	}
	if opts.ForgetAfter <= 0 {
		opts.ForgetAfter = DefaultForgetAfter
	}
	if opts.ForgetAfter < opts.StaleAfter {
		opts.ForgetAfter = opts.StaleAfter
	}
	if opts.Lease <= 0 {
		opts.Lease = DefaultLease
	}
	if opts.Epsilon <= 0 {
		opts.Epsilon = DefaultEpsilon
	}
	def, err := NewStrategy(opts.Strategy)
	if err != nil {
		return nil, err
	}
	v := &View{opts: opts, def: def, strategies: map[string]Strategy{}, services: map[string]*service{}}
	var errs []error
	for svc, name := range opts.Strategies {
		st, err := NewStrategy(name)
		if err != nil {
			errs = append(errs, fmt.Errorf("service %s: %w", svc, err))
			continue
		}
		v.strategies[svc] = st
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	v.replDirty.Store(true)
	v.freeze.Store(&freezeState{})
	return v, nil
}

// MustNewView is NewView for options known to be valid (tests, fixed strategies).
func MustNewView(opts Options) *View {
	v, err := NewView(opts)
	if err != nil {
		panic(err)
	}
	return v
}

// StaleAfter is the staleness limit in force (Options.StaleAfter or its default).
func (v *View) StaleAfter() time.Duration { return v.opts.StaleAfter }

// StrategyName is the name of the strategy the service is picked with.
func (v *View) StrategyName(serviceName string) string { return v.strategyOf(serviceName).Name() }

// strategyOf is the strategy the service is picked with.
func (v *View) strategyOf(serviceName string) Strategy {
	if st, ok := v.strategies[serviceName]; ok {
		return st
	}
	return v.def
}

// get returns the service or nil.
func (v *View) get(name string) *service {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.services[name]
}

// svcLocked returns the service, creating it; v.mu must be held for writing.
func (v *View) svcLocked(name string) *service {
	s := v.services[name]
	if s == nil {
		st := v.def
		if o, ok := v.strategies[name]; ok {
			st = o
		}
		state := NewState(name)
		state.Epsilon = v.opts.Epsilon
		s = &service{name: name, strategy: st, loaders: map[string]*loader{}, state: state, tombstones: map[string]tombstone{}}
		v.services[name] = s
	}
	return s
}

// svc returns the service, creating it.
func (v *View) svc(name string) *service {
	if s := v.get(name); s != nil {
		return s
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.svcLocked(name)
}

func (v *View) touched(serviceName string) {
	if v.opts.ReplicaService != "" && serviceName == v.opts.ReplicaService {
		v.replDirty.Store(true)
	}
}

// Apply replaces the view's membership with a full registry snapshot taken at now:
// loaders missing from it are removed; loaders in it take its admin state, and its load
// and seq when the seq differs from the one held (a snapshot repeating the last report
// is no fresh report, so staleness keeps counting; a lower seq means the registry
// restarted). Services seen before stay known.
func (v *View) Apply(snapshot []Instance, now time.Time) {
	by := map[string][]Instance{}
	for _, in := range snapshot {
		if in.Service == "" || in.Addr == "" {
			continue
		}
		by[in.Service] = append(by[in.Service], in)
	}
	v.mu.Lock()
	for name := range by {
		v.svcLocked(name)
	}
	all := make([]*service, 0, len(v.services))
	for _, s := range v.services {
		all = append(all, s)
	}
	v.mu.Unlock()
	for _, s := range all {
		s.mu.Lock()
		keep := make(map[string]bool, len(by[s.name]))
		for _, in := range by[s.name] {
			keep[in.Addr] = true
			delete(s.tombstones, in.Addr)
			l, existed := s.upsertLocked(in)
			switch {
			case existed && in.NoLoad:
				l.seq = in.Seq
			case !existed || in.Seq == 0 || in.Seq != l.seq:
				l.setLoad(in.Load, in.Seq, now, v.opts.Lease)
			}
		}
		for addr := range s.loaders {
			if !keep[addr] {
				delete(s.loaders, addr)
				s.order = nil
			}
		}
		s.mu.Unlock()
		v.touched(s.name)
	}
}

// upsertLocked returns the loader, adding it with DefaultAdmin; existed tells whether
// it was there.
func (s *service) upsertLocked(in Instance) (l *loader, existed bool) {
	l = s.loaders[in.Addr]
	existed = l != nil
	if l == nil {
		l = &loader{addr: in.Addr, hash: hashString(in.Addr), admin: DefaultAdmin}
		s.loaders[in.Addr] = l
		s.order = nil
	}
	if in.Admin != nil {
		l.admin = *in.Admin
	}
	if in.Version != "" { // load reports carry no version: keep the registered one
		l.version = in.Version
	}
	return l, existed
}

// setLoad records a report received at now and forgets the picks made more than lease
// before it (the report is assumed to count them).
func (l *loader) setLoad(ld Load, seq uint64, now time.Time, lease time.Duration) {
	l.load = ld
	l.seq = seq
	l.lastReport = now
	l.dropped = false
	cut := now.Add(-lease)
	k := 0
	for k < len(l.inflight) && !l.inflight[k].After(cut) {
		k++
	}
	if k == len(l.inflight) {
		l.inflight = l.inflight[:0]
	} else if k > 0 {
		l.inflight = append(l.inflight[:0], l.inflight[k:]...)
	}
}

// Upsert records a membership event (added or admin changed). A new loader takes the
// event's load as its first report; an existing one takes it only when its seq is
// higher than the one the view holds.
func (v *View) Upsert(in Instance, now time.Time) {
	if in.Service == "" || in.Addr == "" {
		return
	}
	s := v.svc(in.Service)
	s.mu.Lock()
	delete(s.tombstones, in.Addr)
	l, existed := s.upsertLocked(in)
	// An admin change usually repeats the last load with the same seq: keep the local
	// accounting then.
	switch {
	case existed && in.NoLoad:
		l.seq = max(l.seq, in.Seq)
	case !existed || in.Seq > l.seq:
		l.setLoad(in.Load, in.Seq, now, v.opts.Lease)
	}
	s.mu.Unlock()
	v.touched(in.Service)
}

// Remove takes a loader out of the view at once (registry REMOVED). seq is the last
// seq the registry held for it; load reports up to it that arrive later are dropped.
// A live loader silent for StaleAfter/2 or more is reported to OnDropped as evicted.
func (v *View) Remove(serviceName, addr string, seq uint64, now time.Time) {
	s := v.svc(serviceName)
	fz := v.freeze.Load()
	evicted := false
	s.mu.Lock()
	if l := s.loaders[addr]; l != nil {
		if l.seq > seq {
			seq = l.seq
		}
		if age, ok := fz.age(l, now); ok && l.load.Live != 0 && !l.dropped && age >= v.opts.StaleAfter/2 {
			evicted = true
		}
		delete(s.loaders, addr)
		s.order = nil
	}
	s.tombstones[addr] = tombstone{seq: seq, at: now}
	s.mu.Unlock()
	v.touched(serviceName)
	if evicted && v.opts.OnDropped != nil {
		v.opts.OnDropped(Dropped{Service: serviceName, Addr: addr, Reason: DropEvicted})
	}
}

// Expire reports to OnDropped every live loader that has gone without a report for
// StaleAfter since it was last reported (none while the view is frozen) and returns
// them. Run it often (every StaleAfter/30 or so): how soon a silent loader's callers hear
// of it depends on it.
func (v *View) Expire(now time.Time) []Dropped {
	var out []Dropped
	fz := v.freeze.Load()
	if fz.frozen {
		return nil
	}
	for _, s := range v.all() {
		s.mu.Lock()
		for _, l := range s.loaders {
			if l.dropped || l.load.Live == 0 {
				continue
			}
			if age, ok := fz.age(l, now); ok && age > v.opts.StaleAfter {
				l.dropped = true
				out = append(out, Dropped{Service: s.name, Addr: l.addr, Reason: DropSilent})
			}
		}
		s.mu.Unlock()
	}
	if v.opts.OnDropped != nil {
		for _, d := range out {
			v.opts.OnDropped(d)
		}
	}
	return out
}

func (v *View) staleLocked(l *loader, now time.Time) bool {
	return now.Sub(l.lastReport) > v.opts.StaleAfter
}

// Report records a load report of (service, addr) with sequence seq received at now.
// Reports older than the last accepted seq are ignored and Report returns false; seq 0
// means "unsequenced" and is always taken, and an older seq is taken once the loader is
// stale (the registry restarted and counts from 1 again). A report for an unknown
// loader adds it with DefaultAdmin, unless the loader was removed after that report
// was sent.
func (v *View) Report(serviceName, addr string, ld Load, seq uint64, now time.Time) bool {
	if serviceName == "" || addr == "" {
		return false
	}
	s := v.svc(serviceName)
	s.mu.Lock()
	l := s.loaders[addr]
	if l == nil {
		if t, ok := s.tombstones[addr]; ok && seq != 0 && seq <= t.seq {
			s.mu.Unlock()
			return false
		}
		delete(s.tombstones, addr)
		l, _ = s.upsertLocked(Instance{Service: serviceName, Addr: addr})
	} else if seq != 0 && seq <= l.seq && !v.staleLocked(l, now) {
		s.mu.Unlock()
		return false
	}
	l.setLoad(ld, seq, now, v.opts.Lease)
	s.mu.Unlock()
	v.touched(serviceName)
	return true
}

// Sweep forgets loaders without a report for ForgetAfter (none while the view is
// frozen; after a thaw counted from the thaw at the earliest), and tombstones as old,
// and returns how many loaders it forgot. Services stay known.
func (v *View) Sweep(now time.Time) int {
	n := 0
	fz := v.freeze.Load()
	for _, s := range v.all() {
		s.mu.Lock()
		for addr, l := range s.loaders {
			if age, ok := fz.age(l, now); ok && age > v.opts.ForgetAfter {
				delete(s.loaders, addr)
				s.order = nil
				n++
			}
		}
		for k, t := range s.tombstones {
			if now.Sub(t.at) > v.opts.ForgetAfter {
				delete(s.tombstones, k)
			}
		}
		s.mu.Unlock()
		v.touched(s.name)
	}
	return n
}
