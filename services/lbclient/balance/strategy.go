package balance

import (
	"fmt"
	"sort"
)

// Strategy names accepted by NewStrategy.
const (
	StrategyLeastLoad  = "least-load"
	StrategyRoundRobin = "round-robin"
)

// Candidate is a loader in rotation offered to a Strategy.
type Candidate struct {
	Addr string
	// EffIdle is the reported idle minus the picks made here since that report.
	EffIdle int32
	Load    Load
	Weight  int32
}

// Strategy ranks the candidates of one pick. Rank gets the candidates sorted by address
// and returns them (or a reordering of them) best first; the caller keeps the first n.
// key is the caller's affinity key (uid or app_id) for hashing strategies. Rank is
// called with the View's lock held, so an implementation needs no lock of its own for
// state it keeps per service, and must not call back into the View.
type Strategy interface {
	Name() string
	Rank(service string, cands []Candidate, key string) []Candidate
}

// NewStrategy returns the strategy called name.
func NewStrategy(name string) (Strategy, error) {
	switch name {
	case "", StrategyLeastLoad:
		return NewLeastLoad(), nil
	case StrategyRoundRobin:
		return NewRoundRobin(), nil
	}
	return nil, fmt.Errorf("unknown strategy %q (want %s or %s)", name, StrategyLeastLoad, StrategyRoundRobin)
}

// LeastLoad ranks loaders by effective idle, most first. Ties are broken round-robin
// per service so that equal loaders share traffic. A loader with no room (effective
// idle <= 0) therefore never comes before one with room, yet is still returned last.
type LeastLoad struct{ rr map[string]uint64 }

// NewLeastLoad returns the least-load strategy.
func NewLeastLoad() *LeastLoad { return &LeastLoad{rr: map[string]uint64{}} }

// Name is "least-load".
func (*LeastLoad) Name() string { return StrategyLeastLoad }

// Rank orders cands by effective idle, rotating the order of equal ones on every call.
func (s *LeastLoad) Rank(service string, cands []Candidate, _ string) []Candidate {
	out := rotate(cands, s.rr[service])
	s.rr[service]++
	sort.SliceStable(out, func(i, j int) bool { return out[i].EffIdle > out[j].EffIdle })
	return out
}

// RoundRobin returns loaders in turn regardless of load.
type RoundRobin struct{ rr map[string]uint64 }

// NewRoundRobin returns the round-robin strategy.
func NewRoundRobin() *RoundRobin { return &RoundRobin{rr: map[string]uint64{}} }

// Name is "round-robin".
func (*RoundRobin) Name() string { return StrategyRoundRobin }

// Rank rotates cands by one more position on every call.
func (s *RoundRobin) Rank(service string, cands []Candidate, _ string) []Candidate {
	out := rotate(cands, s.rr[service])
	s.rr[service]++
	return out
}

// rotate returns a copy of c starting at position by mod len(c).
func rotate(c []Candidate, by uint64) []Candidate {
	out := make([]Candidate, 0, len(c))
	if len(c) == 0 {
		return out
	}
	k := int(by % uint64(len(c)))
	out = append(out, c[k:]...)
	return append(out, c[:k]...)
}
