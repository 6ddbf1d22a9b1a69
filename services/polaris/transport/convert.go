// Package transport adapts polaris's registry and config center to gRPC
// (polarispb.RegistryServer, polarispb.ConfigServer) and publishes their changes on NATS.
package transport

import (
	"time"

	polarispb "github.com/athenaserving/asf/libs/proto/polaris/v1"
	"github.com/athenaserving/asf/services/polaris/config"
	"github.com/athenaserving/asf/services/polaris/registry"
)

func instanceFromPB(p *polarispb.Instance) registry.Instance {
	return registry.Instance{
		Service: p.GetService(), Version: p.GetVersion(), Addr: p.GetAddr(),
		Labels: p.GetLabels(), Kind: p.GetKind(),
	}
}

func loadFromPB(p *polarispb.Load) registry.Load {
	return registry.Load{Total: p.GetTotal(), Best: p.GetBest(), Idle: p.GetIdle(), Live: p.GetLive()}
}

// StateToPB converts a registry state to its wire form.
func StateToPB(s registry.State) *polarispb.InstanceState {
	return &polarispb.InstanceState{
		Instance: &polarispb.Instance{
			Service: s.Instance.Service, Version: s.Instance.Version, Addr: s.Instance.Addr,
			Labels: s.Instance.Labels, Kind: s.Instance.Kind,
		},
		Load:           &polarispb.Load{Total: s.Load.Total, Best: s.Load.Best, Idle: s.Load.Idle, Live: s.Load.Live},
		Admin:          &polarispb.Admin{Enabled: s.Admin.Enabled, Weight: s.Admin.Weight},
		LastSeenUnixMs: s.LastSeen.UnixMilli(),
		Seq:            s.Seq,
	}
}

var eventTypes = map[registry.EventType]polarispb.RegistryEvent_Type{
	registry.EventSnapshot: polarispb.RegistryEvent_TYPE_SNAPSHOT,
	registry.EventAdded:    polarispb.RegistryEvent_TYPE_ADDED,
	registry.EventRemoved:  polarispb.RegistryEvent_TYPE_REMOVED,
	registry.EventChanged:  polarispb.RegistryEvent_TYPE_CHANGED,
	registry.EventLoad:     polarispb.RegistryEvent_TYPE_LOAD,
}

// EventToPB converts a registry event to its wire form.
func EventToPB(ev registry.Event) *polarispb.RegistryEvent {
	out := &polarispb.RegistryEvent{Type: eventTypes[ev.Type], Instances: make([]*polarispb.InstanceState, 0, len(ev.Instances))}
	for _, s := range ev.Instances {
		out.Instances = append(out.Instances, StateToPB(s))
	}
	return out
}

func keyFromPB(p *polarispb.ConfigKey) config.Key {
	return config.Key{Project: p.GetProject(), Group: p.GetGroup(), Service: p.GetService(), Version: p.GetVersion(), File: p.GetFile()}
}

func keyToPB(k config.Key) *polarispb.ConfigKey {
	return &polarispb.ConfigKey{Project: k.Project, Group: k.Group, Service: k.Service, Version: k.Version, File: k.File}
}

func callerFromPB(p *polarispb.Caller) config.Caller {
	return config.Caller{Addr: p.GetAddr(), Labels: p.GetLabels()}
}

// FileToPB converts a config file revision to its wire form.
func FileToPB(f config.File) *polarispb.ConfigFile {
	out := &polarispb.ConfigFile{Key: keyToPB(f.Key), Content: f.Content, Revision: f.Revision, Comment: f.Comment, Gray: f.Gray}
	if !f.Created.IsZero() {
		out.CreatedUnixMs = f.Created.UnixMilli()
	}
	return out
}

var configEventTypes = map[config.EventType]polarispb.ConfigEvent_Type{
	config.EventSnapshot: polarispb.ConfigEvent_TYPE_SNAPSHOT,
	config.EventUpdated:  polarispb.ConfigEvent_TYPE_UPDATED,
	config.EventRemoved:  polarispb.ConfigEvent_TYPE_REMOVED,
}

// ConfigEventToPB converts a config event to its wire form.
func ConfigEventToPB(ev config.Event) *polarispb.ConfigEvent {
	out := &polarispb.ConfigEvent{Type: configEventTypes[ev.Type], Files: make([]*polarispb.ConfigFile, 0, len(ev.Files))}
	for _, f := range ev.Files {
		out.Files = append(out.Files, FileToPB(f))
	}
	return out
}

func msToDuration(ms int64) time.Duration { return time.Duration(ms) * time.Millisecond }
