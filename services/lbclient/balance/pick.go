package balance

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
)

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

// VersionSep separates a service from an engine version in a pick: "echo@2.1" picks
// among the loaders of echo that registered engine version 2.1.
const VersionSep = "@"

// ErrUnknownVersion is returned for a pick naming a version no loader of the service
// registered (10404, as an unknown capability).
var ErrUnknownVersion = aserr.New(aserr.ErrNotFound.Code, "engine version not found")

// Pick returns up to n (at least 1) distinct loaders of service that are in rotation and
// not in exclude, best first, as ranked by the service's strategy. The first one
// returned is charged one pick: it counts against this replica's share of the loader's
// idle slots until a report at least Lease younger than the pick. A pick whose first
// loader had no room left is counted as an over-commit.
// Errors: a service never seen wraps aserr.ErrNotFound (10404); a known service
// without a loader to return wraps aserr.ErrNoEngine (10223). serviceName may name an
// engine version ("<service>@<version>", see VersionSep): only loaders that registered it
// are returned, and a version none registered wraps ErrUnknownVersion (10404).
func (v *View) Pick(serviceName string, n int, exclude []string, key string, now time.Time) ([]string, error) {
	n = max(n, 1)
	s, cands, err := v.lockCandidates(serviceName, exclude, now)
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	ranked := s.rankLocked(cands, key, n)
	out := make([]string, len(ranked))
	for i, c := range ranked {
		out[i] = c.Addr
	}
	s.chargeLocked(ranked[0], now)
	return out, nil
}

// lockCandidates returns the service with its lock held and its loaders in rotation
// and not in exclude, sorted by address, with their room and free slots at now. On an
// error the lock is not held.
func (v *View) lockCandidates(serviceName string, exclude []string, now time.Time) (*service, []Candidate, error) {
	name, version, pinned := strings.Cut(serviceName, VersionSep)
	s := v.get(name)
	if s == nil {
		return nil, nil, fmt.Errorf("pick %q: %w", serviceName, aserr.ErrNotFound)
	}
	repl := v.replicas(now)
	fz := v.freeze.Load()
	s.mu.Lock()
	if s.order == nil {
		s.order = make([]*loader, 0, len(s.loaders))
		for _, l := range s.loaders {
			s.order = append(s.order, l)
		}
		slices.SortFunc(s.order, func(a, b *loader) int { return strings.Compare(a.addr, b.addr) })
	}
	cands := make([]Candidate, 0, len(s.order))
	known := !pinned
	for _, l := range s.order {
		if pinned && l.version != version {
			continue
		}
		known = true
		if ok, _ := v.inRotation(l, now, fz); !ok || slices.Contains(exclude, l.addr) {
			continue
		}
		infl := int32(len(l.inflight))
		cands = append(cands, Candidate{
			Addr: l.addr, Room: share(l.load.Idle, l.hash, repl) - infl, Free: l.load.Idle - infl,
			Load: l.load, Weight: l.admin.Weight, Hash: l.hash,
		})
	}
	switch {
	case !known:
		s.mu.Unlock()
		return nil, nil, fmt.Errorf("pick %q: no loader of %s serves engine version %q: %w", serviceName, name, version, ErrUnknownVersion)
	case len(cands) == 0:
		loaders := len(s.loaders)
		s.mu.Unlock()
		return nil, nil, fmt.Errorf("pick %q: %d loaders known, none in rotation: %w", serviceName, loaders, aserr.ErrNoEngine)
	}
	return s, cands, nil
}

// rankLocked ranks cands (not empty) with the service's strategy and keeps the first n.
// cands is left as it was.
func (s *service) rankLocked(cands []Candidate, key string, n int) []Candidate {
	ranked := s.strategy.Rank(s.state, cands, key, n)
	if len(ranked) > n {
		ranked = ranked[:n]
	}
	return ranked
}

// chargeLocked counts a pick whose first loader is first: in flight against the loader
// from now, and an over-commit when it had no room left.
func (s *service) chargeLocked(first Candidate, now time.Time) {
	if first.Room <= 0 {
		s.overcommits++
	}
	l := s.loaders[first.Addr]
	if len(l.inflight) >= maxInFlight {
		l.inflight = append(l.inflight[:0], l.inflight[maxInFlight/2:]...)
	}
	l.inflight = append(l.inflight, now)
	s.picks++
}
