package balance

import (
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
)

// Defaults used when Options leaves a field zero.
const (
	DefaultReportInterval = time.Second
	DefaultStaleAfter     = 3 * DefaultReportInterval
	DefaultForgetAfter    = 10 * DefaultReportInterval
	DefaultWeight         = 100
)

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
}

// Options configure a View.
type Options struct {
	// StaleAfter takes a loader out of rotation when no report arrived for this long
	// (default 3 × 1 s).
	StaleAfter time.Duration
	// ForgetAfter removes a loader from memory in Sweep when no report arrived for this
	// long (default 10 × 1 s).
	ForgetAfter time.Duration
	// Strategy ranks candidates; nil means least-load.
	Strategy Strategy
}

// View holds, per service, the loaders with their last load, admin state, report time
// and report sequence. It is safe for concurrent use; one mutex guards everything,
// and the Strategy is called with it held.
type View struct {
	opts Options

	mu       sync.Mutex
	services map[string]*service
	// tombstones remember the seq of removed loaders so a load report that was
	// published before the removal but processed after it does not bring them back.
	tombstones map[key]tombstone
}

type key struct{ service, addr string }

type tombstone struct {
	seq uint64
	at  time.Time
}

type service struct {
	loaders map[string]*loader
	// overcommits counts picks whose first loader had no room left.
	overcommits uint64
	picks       uint64
}

type loader struct {
	addr       string
	load       Load
	admin      Admin
	lastReport time.Time
	seq        uint64
	// picked counts picks that returned this loader first since its last report.
	picked int32
}

func (l *loader) effIdle() int32 { return l.load.Idle - l.picked }

// NewView returns an empty view.
func NewView(opts Options) *View {
	if opts.StaleAfter <= 0 {
		opts.StaleAfter = DefaultStaleAfter
	}
	if opts.ForgetAfter <= 0 {
		opts.ForgetAfter = DefaultForgetAfter
	}
	if opts.ForgetAfter < opts.StaleAfter {
		opts.ForgetAfter = opts.StaleAfter
	}
	if opts.Strategy == nil {
		opts.Strategy = NewLeastLoad()
	}
	return &View{opts: opts, services: map[string]*service{}, tombstones: map[key]tombstone{}}
}

// StrategyName is the name of the view's strategy.
func (v *View) StrategyName() string { return v.opts.Strategy.Name() }

func (v *View) svc(name string) *service {
	s := v.services[name]
	if s == nil {
		s = &service{loaders: map[string]*loader{}}
		v.services[name] = s
	}
	return s
}

// Apply replaces the view's membership with a full registry snapshot taken at now:
// loaders missing from it are removed; loaders in it take its load, seq and admin
// state (the snapshot is authoritative, so a restarted registry's lower seqs are
// accepted). Services seen before stay known.
func (v *View) Apply(snapshot []Instance, now time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	keep := make(map[key]bool, len(snapshot))
	for _, in := range snapshot {
		if in.Service == "" || in.Addr == "" {
			continue
		}
		keep[key{in.Service, in.Addr}] = true
		delete(v.tombstones, key{in.Service, in.Addr})
		l := v.upsertLocked(in)
		l.setLoad(in.Load, in.Seq, now)
	}
	for name, s := range v.services {
		for addr := range s.loaders {
			if !keep[key{name, addr}] {
				delete(s.loaders, addr)
			}
		}
	}
}

func (v *View) upsertLocked(in Instance) *loader {
	s := v.svc(in.Service)
	l := s.loaders[in.Addr]
	if l == nil {
		l = &loader{addr: in.Addr, admin: DefaultAdmin}
		s.loaders[in.Addr] = l
	}
	if in.Admin != nil {
		l.admin = *in.Admin
	}
	return l
}

func (l *loader) setLoad(ld Load, seq uint64, now time.Time) {
	l.load = ld
	l.seq = seq
	l.lastReport = now
	l.picked = 0
}

// Upsert records a membership event (added or admin changed). A new loader takes the
// event's load as its first report; an existing one takes it only when its seq is
// higher than the one the view holds.
func (v *View) Upsert(in Instance, now time.Time) {
	if in.Service == "" || in.Addr == "" {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.tombstones, key{in.Service, in.Addr})
	existed := v.services[in.Service] != nil && v.services[in.Service].loaders[in.Addr] != nil
	l := v.upsertLocked(in)
	// An admin change usually repeats the last load with the same seq: keep the local
	// accounting then.
	if !existed || in.Seq > l.seq {
		l.setLoad(in.Load, in.Seq, now)
	}
}

// Remove takes a loader out of the view at once (registry REMOVED). seq is the last
// seq the registry held for it; load reports up to it that arrive later are dropped.
func (v *View) Remove(serviceName, addr string, seq uint64, now time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	s := v.svc(serviceName)
	if l := s.loaders[addr]; l != nil && l.seq > seq {
		seq = l.seq
	}
	delete(s.loaders, addr)
	v.tombstones[key{serviceName, addr}] = tombstone{seq: seq, at: now}
}

// acceptLocked tells whether a report with seq is newer than what l holds. seq 0 means
// "unsequenced" and is always taken. An older seq is taken once l is stale, so a
// registry that restarted (and counts from 1 again) is followed after StaleAfter.
func (v *View) acceptLocked(l *loader, seq uint64, now time.Time) bool {
	return seq == 0 || seq > l.seq || v.staleLocked(l, now)
}

func (v *View) staleLocked(l *loader, now time.Time) bool {
	return now.Sub(l.lastReport) > v.opts.StaleAfter
}

// Report records a load report of (service, addr) with sequence seq received at now.
// Reports older than the last accepted seq are ignored and Report returns false. A
// report for an unknown loader adds it with DefaultAdmin, unless the loader was removed
// after that report was sent.
func (v *View) Report(serviceName, addr string, ld Load, seq uint64, now time.Time) bool {
	if serviceName == "" || addr == "" {
		return false
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	s := v.svc(serviceName)
	l := s.loaders[addr]
	if l == nil {
		if t, ok := v.tombstones[key{serviceName, addr}]; ok && seq != 0 && seq <= t.seq {
			return false
		}
		delete(v.tombstones, key{serviceName, addr})
		l = &loader{addr: addr, admin: DefaultAdmin}
		s.loaders[addr] = l
	} else if !v.acceptLocked(l, seq, now) {
		return false
	}
	l.setLoad(ld, seq, now)
	return true
}

// inRotation tells whether l may be picked, and if not, why.
func (v *View) inRotation(l *loader, now time.Time) (bool, string) {
	switch {
	case l.load.Live == 0:
		return false, "not live"
	case !l.admin.Enabled:
		return false, "disabled"
	case v.staleLocked(l, now):
		return false, "stale"
	}
	return true, ""
}

// Pick returns up to n distinct loaders of service that are in rotation and not in
// exclude, best first, as ranked by the view's strategy. The first one returned is
// charged one local pick (its effective idle drops by one until its next report).
// Errors: a service never seen wraps aserr.ErrNotFound (10404); a known service
// without a loader to return wraps aserr.ErrNoEngine (10223).
func (v *View) Pick(serviceName string, n int, exclude []string, key string, now time.Time) ([]string, error) {
	if n <= 0 {
		n = 1
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	s := v.services[serviceName]
	if s == nil {
		return nil, fmt.Errorf("pick %q: %w", serviceName, aserr.ErrNotFound)
	}
	cands := make([]Candidate, 0, len(s.loaders))
	for _, l := range s.loaders {
		if ok, _ := v.inRotation(l, now); !ok || slices.Contains(exclude, l.addr) {
			continue
		}
		cands = append(cands, Candidate{Addr: l.addr, EffIdle: l.effIdle(), Load: l.load, Weight: l.admin.Weight})
	}
	if len(cands) == 0 {
		return nil, fmt.Errorf("pick %q: %d loaders known, none in rotation: %w", serviceName, len(s.loaders), aserr.ErrNoEngine)
	}
	// A deterministic base order keeps strategies independent of map iteration.
	sort.Slice(cands, func(i, j int) bool { return cands[i].Addr < cands[j].Addr })
	ranked := v.opts.Strategy.Rank(serviceName, cands, key)
	if len(ranked) > n {
		ranked = ranked[:n]
	}
	out := make([]string, len(ranked))
	for i, c := range ranked {
		out[i] = c.Addr
	}
	first := s.loaders[out[0]]
	if first.effIdle() <= 0 {
		s.overcommits++
	}
	first.picked++
	s.picks++
	return out, nil
}

// Known tells whether service was ever seen (a pick for it does not fail with 10404).
func (v *View) Known(serviceName string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.services[serviceName] != nil
}

// Live is the number of loaders of service in rotation at now.
func (v *View) Live(serviceName string, now time.Time) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	s := v.services[serviceName]
	if s == nil {
		return 0
	}
	live := 0
	for _, l := range s.loaders {
		if ok, _ := v.inRotation(l, now); ok {
			live++
		}
	}
	return live
}

// ServiceStats are the counters of one service, for metrics.
type ServiceStats struct {
	Service     string
	Known       int // loaders held in memory
	Live        int // loaders in rotation
	Picks       uint64
	Overcommits uint64 // picks whose first loader had effective idle <= 0
}

// Stats returns per-service counters at now, sorted by service.
func (v *View) Stats(now time.Time) []ServiceStats {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make([]ServiceStats, 0, len(v.services))
	for name, s := range v.services {
		st := ServiceStats{Service: name, Known: len(s.loaders), Picks: s.picks, Overcommits: s.overcommits}
		for _, l := range s.loaders {
			if ok, _ := v.inRotation(l, now); ok {
				st.Live++
			}
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Service < out[j].Service })
	return out
}

// LoaderDump is one loader in a Dump.
type LoaderDump struct {
	Addr       string    `json:"addr"`
	Load       Load      `json:"load"`
	Admin      Admin     `json:"admin"`
	LastReport time.Time `json:"last_report"`
	Seq        uint64    `json:"seq"`
	EffIdle    int32     `json:"effective_idle"`
	InRotation bool      `json:"in_rotation"`
	// Reason says why the loader is out of rotation (not live, disabled, stale).
	Reason string `json:"reason,omitempty"`
}

// ServiceDump is one service in a Dump.
type ServiceDump struct {
	Service     string       `json:"service"`
	Live        int          `json:"live"`
	Picks       uint64       `json:"picks"`
	Overcommits uint64       `json:"overcommits"`
	Loaders     []LoaderDump `json:"loaders"`
}

// Dump returns the whole view as seen at now, sorted by service and address, for the
// admin endpoint.
func (v *View) Dump(now time.Time) []ServiceDump {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make([]ServiceDump, 0, len(v.services))
	for name, s := range v.services {
		sd := ServiceDump{Service: name, Picks: s.picks, Overcommits: s.overcommits, Loaders: []LoaderDump{}}
		for _, l := range s.loaders {
			ok, why := v.inRotation(l, now)
			if ok {
				sd.Live++
			}
			sd.Loaders = append(sd.Loaders, LoaderDump{
				Addr: l.addr, Load: l.load, Admin: l.admin, LastReport: l.lastReport, Seq: l.seq,
				EffIdle: l.effIdle(), InRotation: ok, Reason: why,
			})
		}
		sort.Slice(sd.Loaders, func(i, j int) bool { return sd.Loaders[i].Addr < sd.Loaders[j].Addr })
		out = append(out, sd)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Service < out[j].Service })
	return out
}

// Sweep forgets loaders without a report for ForgetAfter, and tombstones as old, and
// returns how many loaders it forgot. Services stay known.
func (v *View) Sweep(now time.Time) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	n := 0
	for _, s := range v.services {
		for addr, l := range s.loaders {
			if now.Sub(l.lastReport) > v.opts.ForgetAfter {
				delete(s.loaders, addr)
				n++
			}
		}
	}
	for k, t := range v.tombstones {
		if now.Sub(t.at) > v.opts.ForgetAfter {
			delete(v.tombstones, k)
		}
	}
	return n
}
