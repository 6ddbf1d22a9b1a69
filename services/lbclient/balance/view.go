package balance

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
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

// replicaRefresh bounds how long a computed replica set is reused.
const replicaRefresh = 20 * time.Millisecond

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
	lastReport time.Time
	seq        uint64
	// inflight are the times of this replica's picks not yet assumed to be counted by
	// the loader's report: every pick since the last report, and those within Lease
	// before it.
	inflight []time.Time
	// dropped is set once the loader was reported to OnDropped; its next report clears it.
	dropped bool
}

// replicaSet is the lbclient replicas sharing the loaders, as seen at a moment.
type replicaSet struct {
	members []string // sorted addresses in rotation
	self    int      // index of Self in members; -1 when absent
	at      time.Time
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

// StrategyName is the name of the strategy the service is picked with.
func (v *View) StrategyName(serviceName string) string {
	if st, ok := v.strategies[serviceName]; ok {
		return st.Name()
	}
	return v.def.Name()
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

// inRotation tells whether l may be picked under fz, and if not, why.
func (v *View) inRotation(l *loader, now time.Time, fz *freezeState) (bool, string) {
	switch {
	case l.load.Live == 0:
		return false, "not live"
	case !l.admin.Enabled:
		return false, "disabled"
	}
	if age, ok := fz.age(l, now); ok && age > v.opts.StaleAfter {
		return false, "stale"
	}
	return true, ""
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

// Pick returns up to n (at least 1) distinct loaders of service that are in rotation and
// not in exclude, best first, as ranked by the service's strategy. The first one
// returned is charged one pick: it counts against this replica's share of the loader's
// idle slots until a report at least Lease younger than the pick. A pick whose first
// loader had no room left is counted as an over-commit.
// Errors: a service never seen wraps aserr.ErrNotFound (10404); a known service
// without a loader to return wraps aserr.ErrNoEngine (10223).
func (v *View) Pick(serviceName string, n int, exclude []string, key string, now time.Time) ([]string, error) {
	if n <= 0 {
		n = 1
	}
	s := v.get(serviceName)
	if s == nil {
		return nil, fmt.Errorf("pick %q: %w", serviceName, aserr.ErrNotFound)
	}
	repl := v.replicas(now)
	fz := v.freeze.Load()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.order == nil {
		s.order = make([]*loader, 0, len(s.loaders))
		for _, l := range s.loaders {
			s.order = append(s.order, l)
		}
		slices.SortFunc(s.order, func(a, b *loader) int { return strings.Compare(a.addr, b.addr) })
	}
	cands := make([]Candidate, 0, len(s.order))
	for _, l := range s.order {
		if ok, _ := v.inRotation(l, now, fz); !ok || slices.Contains(exclude, l.addr) {
			continue
		}
		infl := int32(len(l.inflight))
		cands = append(cands, Candidate{
			Addr: l.addr, Room: share(l.load.Idle, l.hash, repl) - infl, Free: l.load.Idle - infl,
			Load: l.load, Weight: l.admin.Weight, Hash: l.hash,
		})
	}
	if len(cands) == 0 {
		return nil, fmt.Errorf("pick %q: %d loaders known, none in rotation: %w", serviceName, len(s.loaders), aserr.ErrNoEngine)
	}
	ranked := s.strategy.Rank(s.state, cands, key, n)
	if len(ranked) > n {
		ranked = ranked[:n]
	}
	out := make([]string, len(ranked))
	for i, c := range ranked {
		out[i] = c.Addr
	}
	if ranked[0].Room <= 0 {
		s.overcommits++
	}
	first := s.loaders[out[0]]
	if len(first.inflight) >= maxInFlight {
		first.inflight = append(first.inflight[:0], first.inflight[maxInFlight/2:]...)
	}
	first.inflight = append(first.inflight, now)
	s.picks++
	return out, nil
}

// LoaderLoad returns the last load and seq the view holds for (service, addr).
func (v *View) LoaderLoad(serviceName, addr string) (Load, uint64, bool) {
	s := v.get(serviceName)
	if s == nil {
		return Load{}, 0, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.loaders[addr]
	if l == nil {
		return Load{}, 0, false
	}
	return l.load, l.seq, true
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

// all returns every service, sorted by name.
func (v *View) all() []*service {
	v.mu.RLock()
	out := make([]*service, 0, len(v.services))
	for _, s := range v.services {
		out = append(out, s)
	}
	v.mu.RUnlock()
	slices.SortFunc(out, func(a, b *service) int { return strings.Compare(a.name, b.name) })
	return out
}

// Known tells whether service was ever seen (a pick for it does not fail with 10404).
func (v *View) Known(serviceName string) bool { return v.get(serviceName) != nil }

// Live is the number of loaders of service in rotation at now.
func (v *View) Live(serviceName string, now time.Time) int {
	s := v.get(serviceName)
	if s == nil {
		return 0
	}
	fz := v.freeze.Load()
	s.mu.Lock()
	defer s.mu.Unlock()
	live := 0
	for _, l := range s.loaders {
		if ok, _ := v.inRotation(l, now, fz); ok {
			live++
		}
	}
	return live
}

// ServiceStats are the counters of one service, for metrics.
type ServiceStats struct {
	Service     string
	Strategy    string
	Known       int // loaders held in memory
	Live        int // loaders in rotation
	Picks       uint64
	Overcommits uint64 // picks whose first loader had no room left
}

// Stats returns per-service counters at now, sorted by service.
func (v *View) Stats(now time.Time) []ServiceStats {
	all := v.all()
	fz := v.freeze.Load()
	out := make([]ServiceStats, 0, len(all))
	for _, s := range all {
		s.mu.Lock()
		st := ServiceStats{Service: s.name, Strategy: s.strategy.Name(), Known: len(s.loaders), Picks: s.picks, Overcommits: s.overcommits}
		for _, l := range s.loaders {
			if ok, _ := v.inRotation(l, now, fz); ok {
				st.Live++
			}
		}
		s.mu.Unlock()
		out = append(out, st)
	}
	return out
}

// LoaderDump is one loader in a Dump.
type LoaderDump struct {
	Addr       string    `json:"addr"`
	Load       Load      `json:"load"`
	Admin      Admin     `json:"admin"`
	LastReport time.Time `json:"last_report"`
	Seq        uint64    `json:"seq"`
	// InFlight are this replica's picks not yet assumed counted by a report.
	InFlight int32 `json:"in_flight"`
	// Share is this replica's share of the reported idle slots.
	Share      int32 `json:"share"`
	InRotation bool  `json:"in_rotation"`
	// Reason says why the loader is out of rotation (not live, disabled, stale).
	Reason string `json:"reason,omitempty"`
}

// ServiceDump is one service in a Dump.
type ServiceDump struct {
	Service     string       `json:"service"`
	Strategy    string       `json:"strategy"`
	Live        int          `json:"live"`
	Picks       uint64       `json:"picks"`
	Overcommits uint64       `json:"overcommits"`
	Loaders     []LoaderDump `json:"loaders"`
}

// Dump returns the whole view as seen at now, sorted by service and address, for the
// admin endpoint.
func (v *View) Dump(now time.Time) []ServiceDump {
	repl := v.replicas(now)
	all := v.all()
	fz := v.freeze.Load()
	out := make([]ServiceDump, 0, len(all))
	for _, s := range all {
		s.mu.Lock()
		sd := ServiceDump{Service: s.name, Strategy: s.strategy.Name(), Picks: s.picks, Overcommits: s.overcommits, Loaders: []LoaderDump{}}
		for _, l := range s.loaders {
			ok, why := v.inRotation(l, now, fz)
			if ok {
				sd.Live++
			}
			sd.Loaders = append(sd.Loaders, LoaderDump{
				Addr: l.addr, Load: l.load, Admin: l.admin, LastReport: l.lastReport, Seq: l.seq,
				InFlight: int32(len(l.inflight)), Share: share(l.load.Idle, l.hash, repl), InRotation: ok, Reason: why,
			})
		}
		s.mu.Unlock()
		sort.Slice(sd.Loaders, func(i, j int) bool { return sd.Loaders[i].Addr < sd.Loaders[j].Addr })
		out = append(out, sd)
	}
	return out
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
