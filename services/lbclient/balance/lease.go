package balance

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrLeaseKeyed is returned by Lease for a service whose strategy orders loaders by the
// pick's key (consistent-hash): a lease's picks are made before their keys are known.
var ErrLeaseKeyed = errors.New("the service's strategy uses the pick key: no leases")

// Lease is picks made in advance for one caller, in the order they were charged. Pick i
// is Picks[i*Per:(i+1)*Per], indices into Addrs, best first.
type Lease struct {
	// Addrs lists every loader the picks name, once.
	Addrs []string
	// Per is how many candidates each pick holds.
	Per int
	// Picks holds Per indices into Addrs for each pick.
	Picks []uint32
}

// Len is the number of picks in the lease.
func (l Lease) Len() int {
	if l.Per == 0 {
		return 0
	}
	return len(l.Picks) / l.Per
}

// Pick returns pick i of the lease.
func (l Lease) Pick(i int) []string {
	out := make([]string, l.Per)
	for j, k := range l.Picks[i*l.Per : (i+1)*l.Per] {
		out[j] = l.Addrs[k]
	}
	return out
}

// usesKey tells whether st orders loaders by the pick's key.
func usesKey(st Strategy) bool {
	_, ok := st.(ConsistentHash)
	return ok
}

// Lease makes up to count (at least 1) picks of serviceName with up to n candidates
// each, no exclude and no key, as that many consecutive calls of Pick at now would: each
// ranked by the service's strategy with the picks before it in flight, each charged
// against its first loader. It stops before the first pick whose first loader has no
// room left, which it does not charge: a lease holds no over-commit, and a caller whose
// lease runs short picks per request (where the loader remains the arbiter). The lease
// may therefore hold fewer picks than asked for, or none.
// Errors: those of Pick, and ErrLeaseKeyed for a service picked by consistent-hash.
func (v *View) Lease(serviceName string, n, count int, now time.Time) (Lease, error) {
	n, count = max(n, 1), max(count, 1)
	if name, _, _ := strings.Cut(serviceName, VersionSep); usesKey(v.strategyOf(name)) {
		return Lease{}, fmt.Errorf("lease %q: %w", serviceName, ErrLeaseKeyed)
	}
	s, cands, err := v.lockCandidates(serviceName, nil, now)
	if err != nil {
		return Lease{}, err
	}
	defer s.mu.Unlock()
	out := Lease{Per: min(n, len(cands)), Picks: make([]uint32, 0, count*min(n, len(cands)))}
	index := make(map[string]uint32, len(cands))
	for range count {
		ranked := s.rankLocked(cands, "", n)
		if ranked[0].Room <= 0 {
			break
		}
		s.chargeLocked(ranked[0], now)
		s.leased++
		for _, c := range ranked {
			k, ok := index[c.Addr]
			if !ok {
				k = uint32(len(out.Addrs))
				index[c.Addr] = k
				out.Addrs = append(out.Addrs, c.Addr)
			}
			out.Picks = append(out.Picks, k)
		}
		// The next pick sees this one in flight, as Pick would.
		for i := range cands {
			if cands[i].Addr == ranked[0].Addr {
				cands[i].Room--
				cands[i].Free--
				break
			}
		}
	}
	return out, nil
}
