package balance

import (
	"slices"
	"sort"
	"strings"
	"time"
)

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
	Leased      uint64 // picks made by Lease (counted in Picks too)
}

// Stats returns per-service counters at now, sorted by service.
func (v *View) Stats(now time.Time) []ServiceStats {
	all := v.all()
	fz := v.freeze.Load()
	out := make([]ServiceStats, 0, len(all))
	for _, s := range all {
		s.mu.Lock()
		st := ServiceStats{Service: s.name, Strategy: s.strategy.Name(), Known: len(s.loaders), Picks: s.picks, Overcommits: s.overcommits, Leased: s.leased}
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
	Addr string `json:"addr"`
	// Version is the engine version the loader registered ("" = none).
	Version    string    `json:"version,omitempty"`
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
	Leased      uint64       `json:"leased"`
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
		sd := ServiceDump{Service: s.name, Strategy: s.strategy.Name(), Picks: s.picks, Overcommits: s.overcommits, Leased: s.leased, Loaders: []LoaderDump{}}
		for _, l := range s.loaders {
			ok, why := v.inRotation(l, now, fz)
			if ok {
				sd.Live++
			}
			sd.Loaders = append(sd.Loaders, LoaderDump{
				Addr: l.addr, Version: l.version, Load: l.load, Admin: l.admin, LastReport: l.lastReport, Seq: l.seq,
				InFlight: int32(len(l.inflight)), Share: share(l.load.Idle, l.hash, repl), InRotation: ok, Reason: why,
			})
		}
		s.mu.Unlock()
		sort.Slice(sd.Loaders, func(i, j int) bool { return sd.Loaders[i].Addr < sd.Loaders[j].Addr })
		out = append(out, sd)
	}
	return out
}
