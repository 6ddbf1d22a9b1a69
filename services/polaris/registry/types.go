// Package registry is polaris's service registry: instances keyed by (service, addr),
// liveness by heartbeat with a TTL, operator admin state kept apart from liveness, and
// ordered event streams (a snapshot, then ADDED/REMOVED/CHANGED/LOAD) for watchers.
//
//	r, _ := registry.New(ctx, registry.NewMemStore(), registry.Options{})
//	go r.Run(ctx)                          // TTL sweeper; stops when ctx ends
//	_, _ = r.Register(ctx, registry.Instance{Service: "echo", Addr: "10.0.0.1:5090"}, registry.Load{Live: 1}, 0)
//	known, _ := r.Heartbeat(ctx, registry.Key{Service: "echo", Addr: "10.0.0.1:5090"}, registry.Load{Idle: 4, Live: 1})
//	sub, _ := r.Subscribe("echo", 256)     // first event is the snapshot
//	for ev := range sub.C() { ... }        // closed on overflow or Close; sub.Err() says why
//
// The package imports no transport; gRPC and NATS adapters live in transport/.
package registry

import (
	"time"

	"github.com/athenaserving/asf/libs/aserr"
)

// Kinds of instances.
const (
	// KindProvider serves a service and is routed to.
	KindProvider = "provider"
	// KindConsumer uses a service; it is recorded so operators see who uses what, never routed.
	KindConsumer = "consumer"
)

// Default values.
const (
	// DefaultTTL is how long an instance lives after its last heartbeat.
	DefaultTTL = 3 * time.Second
	// DefaultSweepInterval is how often the sweeper looks for expired instances.
	DefaultSweepInterval = 250 * time.Millisecond
	// DefaultWeight is the admin weight of an instance nobody configured.
	DefaultWeight = 100
)

// Errors of the registry, with their codes.
var (
	// ErrInvalid is returned for a request missing its service or address.
	ErrInvalid = aserr.New(aserr.ErrInvalidParam.Code, "invalid registry request")
)

// Key identifies an instance.
type Key struct {
	Service string `json:"service"`
	Addr    string `json:"addr"`
}

// Instance is what a provider or consumer registers.
type Instance struct {
	Service string            `json:"service"`
	Version string            `json:"version,omitempty"`
	Addr    string            `json:"addr"`
	Labels  map[string]string `json:"labels,omitempty"`
	Kind    string            `json:"kind"`
}

// Key returns the instance's key.
func (i Instance) Key() Key { return Key{Service: i.Service, Addr: i.Addr} }

// Load is the soft state an instance reports with every heartbeat.
type Load struct {
	Total int32 `json:"total"`
	Best  int32 `json:"best"`
	Idle  int32 `json:"idle"`
	Live  int32 `json:"live"`
}

// Admin is operator state, kept apart from liveness.
type Admin struct {
	Enabled bool  `json:"enabled"`
	Weight  int32 `json:"weight"`
}

// DefaultAdmin is the admin state of an instance nobody configured.
func DefaultAdmin() Admin { return Admin{Enabled: true, Weight: DefaultWeight} }

// State is everything the registry knows about a live instance.
type State struct {
	Instance Instance      `json:"instance"`
	Load     Load          `json:"load"`
	Admin    Admin         `json:"admin"`
	LastSeen time.Time     `json:"last_seen"`
	TTL      time.Duration `json:"ttl"`
	// Seq increases with every load report and never repeats within one registry, so
	// consumers can drop stale reports even across re-registrations.
	Seq uint64 `json:"seq"`
}

// EventType tells what an Event reports.
type EventType int

// Event types.
const (
	// EventSnapshot carries every matching instance; it is always a watcher's first event.
	EventSnapshot EventType = iota
	// EventAdded reports a new instance.
	EventAdded
	// EventRemoved reports an instance that deregistered or expired.
	EventRemoved
	// EventChanged reports a re-registration (new labels or version) or an admin change.
	EventChanged
	// EventLoad reports a heartbeat with the instance's latest load.
	EventLoad
)

// String returns the event type's name.
func (t EventType) String() string {
	switch t {
	case EventSnapshot:
		return "SNAPSHOT"
	case EventAdded:
		return "ADDED"
	case EventRemoved:
		return "REMOVED"
	case EventChanged:
		return "CHANGED"
	case EventLoad:
		return "LOAD"
	}
	return "UNKNOWN"
}

// Event is one registry change: the whole set for a snapshot, one instance otherwise.
type Event struct {
	Type      EventType
	Instances []State
}

func cloneInstance(i Instance) Instance {
	if i.Labels != nil {
		l := make(map[string]string, len(i.Labels))
		for k, v := range i.Labels {
			l[k] = v
		}
		i.Labels = l
	}
	return i
}
