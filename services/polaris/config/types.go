// Package config is polaris's config center: files addressed by project → group →
// service → version → file, every push stored as a new revision, history, rollback
// (pushed as a new revision), gray revisions for a labelled group of callers, watches
// by exact file or file-name prefix, and per-instance apply reports.
//
//	c, _ := config.New(config.NewMemStore(), config.Options{})
//	k := config.Key{Project: "asf", Group: "default", Service: "atom", Version: "1", File: "atom.toml"}
//	f, _ := c.Push(ctx, k, []byte("a=1"), "first", "")   // revision 1
//	w, _ := c.Watch(k, false, config.Caller{Addr: "10.0.0.1:9988"}, 64)
//	for ev := range w.C() { ... }                          // SNAPSHOT, then UPDATED/REMOVED
//
// The package imports no transport; gRPC and NATS adapters live in transport/.
package config

import (
	"strings"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
)

// GrayLabel is the caller label naming its gray group.
const GrayLabel = "gray"

// Errors of the config center, with their codes.
var (
	// ErrNotFound is returned for a file or revision that does not exist.
	ErrNotFound = aserr.New(aserr.ErrNotFound.Code, "config not found")
	// ErrInvalid is returned for a key missing one of its parts.
	ErrInvalid = aserr.New(aserr.ErrInvalidParam.Code, "invalid config key")
)

// Key addresses a file.
type Key struct {
	Project string `json:"project"`
	Group   string `json:"group"`
	Service string `json:"service"`
	Version string `json:"version"`
	File    string `json:"file"`
}

// String renders the key as a path.
func (k Key) String() string {
	return strings.Join([]string{k.Project, k.Group, k.Service, k.Version, k.File}, "/")
}

// Dir is the key without its file: the set of files a prefix watch looks at.
func (k Key) Dir() Key { k.File = ""; return k }

// Matches tells whether file key f is watched by k: equal, or with the same directory
// and a file name starting with k.File when prefix is set.
func (k Key) Matches(f Key, prefix bool) bool {
	if !prefix {
		return k == f
	}
	return k.Dir() == f.Dir() && strings.HasPrefix(f.File, k.File)
}

func (k Key) valid(needFile bool) bool {
	if k.Project == "" || k.Group == "" || k.Service == "" || k.Version == "" {
		return false
	}
	return !needFile || k.File != ""
}

// File is one revision of a file.
type File struct {
	Key      Key       `json:"key"`
	Content  []byte    `json:"content"`
	Revision int64     `json:"revision"`
	Created  time.Time `json:"created"`
	Comment  string    `json:"comment,omitempty"`
	// GrayGroup names the gray group this revision was pushed to ("" = everyone).
	GrayGroup string `json:"gray_group,omitempty"`
	// Gray is set on a revision served to a caller because of its gray group.
	Gray bool `json:"gray,omitempty"`
}

// Caller identifies who asks, for gray selection and apply reports.
type Caller struct {
	Addr   string            `json:"addr"`
	Labels map[string]string `json:"labels,omitempty"`
}

// Applied is one instance's report on a revision.
type Applied struct {
	Key      Key       `json:"key"`
	Addr     string    `json:"addr"`
	Revision int64     `json:"revision"`
	Applied  bool      `json:"applied"`
	Reason   string    `json:"reason,omitempty"`
	At       time.Time `json:"at"`
}

// EventType tells what an Event reports.
type EventType int

// Event types.
const (
	// EventSnapshot carries every matching file; it is always a watcher's first event.
	EventSnapshot EventType = iota
	// EventUpdated carries a file whose revision (as the watcher sees it) changed.
	EventUpdated
	// EventRemoved carries a deleted file (key only).
	EventRemoved
)

// String returns the event type's name.
func (t EventType) String() string {
	switch t {
	case EventSnapshot:
		return "SNAPSHOT"
	case EventUpdated:
		return "UPDATED"
	case EventRemoved:
		return "REMOVED"
	}
	return "UNKNOWN"
}

// Event is one config change seen by a watcher.
type Event struct {
	Type  EventType
	Files []File
}

func cloneFile(f File) File {
	f.Content = append([]byte(nil), f.Content...)
	return f
}
