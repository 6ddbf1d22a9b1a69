package balance

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strconv"
)

// Strategy names accepted by NewStrategy and in Options.
const (
	StrategyLeastLoad      = "least-load"
	StrategyP2C            = "p2c"
	StrategyRoundRobin     = "round-robin"
	StrategyConsistentHash = "consistent-hash"
)

// Strategies lists every strategy name.
var Strategies = []string{StrategyLeastLoad, StrategyP2C, StrategyRoundRobin, StrategyConsistentHash}

// DefaultEpsilon is the consistent-hash load bound slack: a key stays on its loader while
// that loader is under (1+ε)× the mean utilisation.
const DefaultEpsilon = 0.25

// vnodesPerWeight100 is how many ring points a loader of weight 100 gets.
const vnodesPerWeight100 = 64

// Candidate is a loader in rotation offered to a Strategy.
type Candidate struct {
	Addr string
	// Room is what this replica may still send to the loader: its share of the reported
	// idle slots minus its picks in flight. Room <= 0 means a pick would over-commit.
	Room int32
	// Free estimates the loader's free slots: reported idle minus this replica's picks
	// in flight (other replicas' picks are not known).
	Free   int32
	Load   Load
	Weight int32
	// Hash is a stable 64-bit hash of Addr.
	Hash uint64
}

// score is Room (or Free when there is no room) per licence, scaled by weight: the
// least-load order. Comparing relative idle makes sessions spread in proportion to
// capacity whatever the overall utilisation.
func (c *Candidate) score() float64 {
	v := c.Room
	if v <= 0 {
		v = c.Free
	}
	return float64(v) / float64(max(c.Load.Total, 1)) * float64(max(c.Weight, 0))
}

// State is a strategy's per-service scratch state (round-robin counter, random source,
// hash ring cache). The View owns one per service and guards it with the service lock.
type State struct {
	rr      uint64
	rnd     uint64
	ringSig uint64
	ring    []vnode
	// Epsilon is the consistent-hash load slack (DefaultEpsilon when zero).
	Epsilon float64
}

// NewState returns a state whose random source is seeded from seed (a service name).
func NewState(seed string) *State {
	return &State{rnd: hashString(seed) | 1}
}

// next returns a pseudo-random number (splitmix64).
func (s *State) next() uint64 {
	s.rnd += 0x9e3779b97f4a7c15
	z := s.rnd
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Strategy ranks the candidates of one pick. Rank gets the candidates sorted by address
// and returns them (a reordering of them) best first; the caller keeps the first n, so
// a strategy may leave the order after the n-th arbitrary. key is the caller's affinity
// key (uid or app_id). Rank is called with the service lock held and must not call back
// into the View.
type Strategy interface {
	Name() string
	Rank(st *State, cands []Candidate, key string, n int) []Candidate
}

// NewStrategy returns the strategy called name ("" is least-load).
func NewStrategy(name string) (Strategy, error) {
	switch name {
	case "", StrategyLeastLoad:
		return LeastLoad{}, nil
	case StrategyP2C:
		return P2C{}, nil
	case StrategyRoundRobin:
		return RoundRobin{}, nil
	case StrategyConsistentHash:
		return ConsistentHash{}, nil
	}
	return nil, fmt.Errorf("unknown strategy %q (want one of %v)", name, Strategies)
}

// LeastLoad ranks loaders with room before loaders without, then by idle licences per
// licence (scaled by admin weight), most first. Ties rotate per call so equal loaders
// share traffic. A loader with no room therefore never comes before one with room.
type LeastLoad struct{}

// Name is "least-load".
func (LeastLoad) Name() string { return StrategyLeastLoad }

// Rank orders cands by room, rotating the order of equal ones on every call.
func (LeastLoad) Rank(st *State, cands []Candidate, _ string, _ int) []Candidate {
	out := rotate(cands, st.rr)
	st.rr++
	sortLeastLoad(out)
	return out
}

func sortLeastLoad(c []Candidate) {
	slices.SortStableFunc(c, func(a, b Candidate) int {
		if ra, rb := a.Room > 0, b.Room > 0; ra != rb {
			if ra {
				return -1
			}
			return 1
		}
		return cmp.Compare(b.score(), a.score())
	})
}

// P2C is the power of two choices: two loaders drawn at random in proportion to their
// admin weight (among those with room, when any has room), the one with more idle per
// licence first, then the rest in least-load order.
type P2C struct{}

// Name is "p2c".
func (P2C) Name() string { return StrategyP2C }

// Rank draws two candidates and puts the better one first.
func (P2C) Rank(st *State, cands []Candidate, _ string, _ int) []Candidate {
	out := slices.Clone(cands)
	if len(out) < 2 {
		return out
	}
	pool := make([]int, 0, len(out))
	for i := range out {
		if out[i].Room > 0 {
			pool = append(pool, i)
		}
	}
	if len(pool) == 0 {
		for i := range out {
			pool = append(pool, i)
		}
	}
	a := drawWeighted(st, out, pool, -1)
	b := drawWeighted(st, out, pool, a)
	win := a
	if b >= 0 && out[b].score() > out[a].score() {
		win = b
	}
	first := out[win]
	rest := append(out[:win:win], out[win+1:]...)
	sortLeastLoad(rest)
	return append([]Candidate{first}, rest...)
}

// drawWeighted draws an index of pool (not skip) with probability proportional to its
// weight (weight <= 0 counts as 1 when every weight is <= 0, else as 0); -1 when the
// pool has nothing else.
func drawWeighted(st *State, c []Candidate, pool []int, skip int) int {
	var total uint64
	for _, i := range pool {
		if i != skip {
			total += uint64(max(c[i].Weight, 0))
		}
	}
	if total == 0 {
		var others []int
		for _, i := range pool {
			if i != skip {
				others = append(others, i)
			}
		}
		if len(others) == 0 {
			return -1
		}
		return others[st.next()%uint64(len(others))]
	}
	r := st.next() % total
	for _, i := range pool {
		if i == skip {
			continue
		}
		w := uint64(max(c[i].Weight, 0))
		if r < w {
			return i
		}
		r -= w
	}
	return -1
}

// RoundRobin returns loaders in turn regardless of load.
type RoundRobin struct{}

// Name is "round-robin".
func (RoundRobin) Name() string { return StrategyRoundRobin }

// Rank rotates cands by one more position on every call.
func (RoundRobin) Rank(st *State, cands []Candidate, _ string, _ int) []Candidate {
	out := rotate(cands, st.rr)
	st.rr++
	return out
}

// ConsistentHash maps key onto a hash ring of the candidates (64 points per weight
// 100) with bounded load: walking clockwise from the key, the first loader that has
// room and whose utilisation after the pick stays within (1+ε)× the mean comes first.
// The bound for loader i is max(ceil((1+ε)·(U+1)·Tᵢ/T), ceil(ε·Tᵢ)) sessions, with U
// the sessions in use over the service, T its licences and Tᵢ the loader's: a loader
// under ε of its capacity always keeps its keys. Adding a loader moves only the keys
// whose ring arc it takes. An empty key is hashed as "" (every caller shares a point).
type ConsistentHash struct{}

// Name is "consistent-hash".
func (ConsistentHash) Name() string { return StrategyConsistentHash }

type vnode struct {
	point uint64
	owner int32 // index into the candidates the ring was built from
}

// Rank walks the ring from key.
func (ConsistentHash) Rank(st *State, cands []Candidate, key string, n int) []Candidate {
	if len(cands) <= 1 {
		return slices.Clone(cands)
	}
	buildRing(st, cands)
	eps := st.Epsilon
	if eps <= 0 {
		eps = DefaultEpsilon
	}
	var used, total float64
	for i := range cands {
		t := max(cands[i].Load.Total, 1)
		total += float64(t)
		used += float64(max(t-cands[i].Free, 0))
	}
	fits := func(c *Candidate) bool {
		if c.Room <= 0 {
			return false
		}
		t := float64(max(c.Load.Total, 1))
		bound := math.Max(math.Ceil((1+eps)*(used+1)*t/total), math.Ceil(eps*t))
		inUse := float64(max(c.Load.Total-c.Free, 0))
		return inUse+1 <= bound
	}
	h := hashString(key)
	start, _ := slices.BinarySearchFunc(st.ring, h, func(v vnode, p uint64) int { return cmp.Compare(v.point, p) })
	seen := make([]bool, len(cands))
	out := make([]Candidate, 0, len(cands))
	var spill []Candidate
	nseen := 0
	for k := 0; k < len(st.ring) && nseen < len(cands) && len(out) < n; k++ {
		v := st.ring[(start+k)%len(st.ring)]
		if seen[v.owner] {
			continue
		}
		seen[v.owner] = true
		nseen++
		c := cands[v.owner]
		if fits(&c) {
			out = append(out, c)
		} else {
			spill = append(spill, c)
		}
	}
	out = append(out, spill...)
	for i := range cands {
		if !seen[i] {
			out = append(out, cands[i])
		}
	}
	return out
}

// buildRing rebuilds st.ring when the candidate set or weights changed.
func buildRing(st *State, cands []Candidate) {
	var sig uint64 = 14695981039346656037
	for i := range cands {
		sig = (sig ^ cands[i].Hash) * 1099511628211
		sig = (sig ^ uint64(uint32(cands[i].Weight))) * 1099511628211
	}
	if sig == st.ringSig && st.ring != nil {
		return
	}
	ring := st.ring[:0]
	for i := range cands {
		vn := int(max(cands[i].Weight, 0)) * vnodesPerWeight100 / DefaultWeight
		vn = max(vn, 1)
		for j := range vn {
			ring = append(ring, vnode{point: hashString(cands[i].Addr + "#" + strconv.Itoa(j)), owner: int32(i)})
		}
	}
	slices.SortFunc(ring, func(a, b vnode) int { return cmp.Compare(a.point, b.point) })
	st.ring, st.ringSig = ring, sig
}

// hashString is FNV-1a 64 followed by a finaliser, so nearby strings spread on the ring.
func hashString(s string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(s))
	z := h.Sum64()
	z = (z ^ (z >> 33)) * 0xff51afd7ed558ccd
	z = (z ^ (z >> 33)) * 0xc4ceb9fe1a85ec53
	return z ^ (z >> 33)
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
