// Package resource keeps personalisation resources (AIGES wrapperLoadRes data): blobs
// uploaded by an operator or an app's backend, addressed by service + app_id + res_id,
// that loaders fetch on demand and load into their engine when a request names them
// (ASE header res_id / patch_id). Each upload gets the next revision; a change or a
// delete is an Event that loaders follow to unload what they hold.
//
//	svc := resource.New(resource.NewMemStore(), resource.Options{MaxSize: 4 << 20})
//	m, _ := svc.Put(ctx, resource.Key{Service: "iat", AppID: "app1", ID: "hotwords"}, data)
//	r, _ := svc.Get(ctx, m.Key)                 // 10166 when it does not exist
//	w := svc.Watch("iat", 64)                    // Updated/Removed events of service iat
//	for ev := range w.C() { ... }
//
// The package imports no transport: the admin API, the gRPC Resources service and the
// NATS relay live in adminapi/ and transport/.
package resource

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
)

// DefaultMaxSize bounds a resource's size unless Options.MaxSize says otherwise. The
// Consul backend stores larger values in 256 KiB chunks (Consul's KV values are limited
// to 512 KiB), so the bound is about engine memory and upload time, not the store.
const DefaultMaxSize = 4 << 20

// MaxMaxSize is the largest size bound polaris accepts: loaders accept gRPC messages
// up to this size when they fetch a resource.
const MaxMaxSize = 64 << 20

// MaxIDLen bounds every part of a Key.
const MaxIDLen = 128

// Errors of the resource store, with their codes.
var (
	// ErrNotFound is returned for a resource that does not exist (10166).
	ErrNotFound = aserr.ErrResNotFound
	// ErrInvalid is returned for a malformed key (10107).
	ErrInvalid = aserr.New(aserr.ErrInvalidParam.Code, "invalid resource key")
	// ErrTooLarge is returned for data over the size bound (10413, HTTP 413).
	ErrTooLarge = aserr.New(10413, "resource too large")
)

// Key addresses a resource: the service (the loaders' registered service name) it is
// for, the app that owns it and its id within the app, so apps never collide.
type Key struct {
	Service string `json:"service"`
	AppID   string `json:"app_id"`
	ID      string `json:"res_id"`
}

// String renders the key as service/app_id/res_id.
func (k Key) String() string { return k.Service + "/" + k.AppID + "/" + k.ID }

// Validate checks that every part is 1 to MaxIDLen characters of [A-Za-z0-9._-] and
// not "." or "..".
func (k Key) Validate() error {
	for _, p := range []struct{ name, v string }{{"service", k.Service}, {"app_id", k.AppID}, {"res_id", k.ID}} {
		if !validPart(p.v) {
			return fmt.Errorf("%s %q: want 1 to %d of [A-Za-z0-9._-]: %w", p.name, p.v, MaxIDLen, ErrInvalid)
		}
	}
	return nil
}

func validPart(s string) bool {
	if s == "" || len(s) > MaxIDLen || s == "." || s == ".." {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// Meta describes a stored resource without its data.
type Meta struct {
	Key
	// Revision counts uploads of the key, from 1; a re-upload after a delete starts
	// again from 1.
	Revision int64     `json:"revision"`
	Size     int64     `json:"size"`
	SHA256   string    `json:"sha256"`
	Updated  time.Time `json:"updated"`
}

// Resource is a stored resource with its data.
type Resource struct {
	Meta
	Data []byte `json:"data"`
}

// Store keeps resources. Backends: MemStore here, the bbolt file (store/bolt) and
// Consul KV (store/consul); store/storetest checks them all. Writes are atomic.
type Store interface {
	// PutResource stores r.Data under r.Key as the next revision (1 for a new key),
	// with r.Updated, and returns the stored meta (Size and SHA256 filled in).
	PutResource(ctx context.Context, r Resource) (Meta, error)
	// GetResource returns the resource of k.
	GetResource(ctx context.Context, k Key) (Resource, bool, error)
	// DeleteResource removes k; it reports whether it existed.
	DeleteResource(ctx context.Context, k Key) (bool, error)
	// ListResources returns the metas of service's resources, of appID only when it
	// is not empty, sorted by app_id then res_id.
	ListResources(ctx context.Context, service, appID string) ([]Meta, error)
}

// Stamp fills in m's Size and SHA256 from data; stores call it so they agree.
func Stamp(m Meta, data []byte) Meta {
	sum := sha256.Sum256(data)
	m.Size, m.SHA256 = int64(len(data)), hex.EncodeToString(sum[:])
	return m
}

// SortMetas sorts metas by app_id then res_id.
func SortMetas(ms []Meta) {
	sort.Slice(ms, func(i, j int) bool {
		if ms[i].AppID != ms[j].AppID {
			return ms[i].AppID < ms[j].AppID
		}
		return ms[i].ID < ms[j].ID
	})
}

// MemStore is a Store in memory.
type MemStore struct {
	mu   sync.Mutex
	recs map[Key]Resource
}

var _ Store = (*MemStore)(nil)

// NewMemStore returns an empty in-memory store.
func NewMemStore() *MemStore { return &MemStore{recs: map[Key]Resource{}} }

// PutResource stores r as the next revision of r.Key.
func (m *MemStore) PutResource(_ context.Context, r Resource) (Meta, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	meta := Stamp(Meta{Key: r.Key, Revision: m.recs[r.Key].Revision + 1, Updated: r.Updated}, r.Data)
	m.recs[r.Key] = Resource{Meta: meta, Data: append([]byte{}, r.Data...)}
	return meta, nil
}

// GetResource returns the resource of k.
func (m *MemStore) GetResource(_ context.Context, k Key) (Resource, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.recs[k]
	if !ok {
		return Resource{}, false, nil
	}
	r.Data = append([]byte{}, r.Data...)
	return r, true, nil
}

// DeleteResource removes k.
func (m *MemStore) DeleteResource(_ context.Context, k Key) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.recs[k]
	delete(m.recs, k)
	return ok, nil
}

// ListResources returns the metas of service (and appID when not empty).
func (m *MemStore) ListResources(_ context.Context, service, appID string) ([]Meta, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []Meta{}
	for k, r := range m.recs {
		if k.Service == service && (appID == "" || k.AppID == appID) {
			out = append(out, r.Meta)
		}
	}
	SortMetas(out)
	return out, nil
}

// EventType tells what an Event reports.
type EventType int

// Event types.
const (
	// EventUpdated: the resource was uploaded (Meta has its new revision).
	EventUpdated EventType = iota + 1
	// EventRemoved: the resource was deleted.
	EventRemoved
)

// String returns the type's name.
func (t EventType) String() string {
	switch t {
	case EventUpdated:
		return "UPDATED"
	case EventRemoved:
		return "REMOVED"
	}
	return "UNKNOWN"
}

// Event is one change of a resource.
type Event struct {
	Type EventType
	Meta Meta
}

// Options configure a Service.
type Options struct {
	// MaxSize bounds a resource's data; 0 is DefaultMaxSize.
	MaxSize int64
	// Now is the clock (time.Now by default).
	Now func() time.Time
}

// Service validates and stores resources and tells watchers about changes.
//
// Changes reach watchers through Deliver: by default Put and Delete deliver their own
// events; with SetPublisher they hand them to the publisher instead (polaris publishes
// on NATS and relays every replica's events back through Deliver, so watchers of
// every replica see every change).
type Service struct {
	st  Store
	opt Options

	mu       sync.Mutex
	publish  func(Event)
	watchers map[*Watcher]struct{}
	closed   bool
}

// New returns a service on st.
func New(st Store, o Options) *Service {
	if o.MaxSize <= 0 {
		o.MaxSize = DefaultMaxSize
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Service{st: st, opt: o, watchers: map[*Watcher]struct{}{}}
}

// MaxSize is the size bound of a resource.
func (s *Service) MaxSize() int64 { return s.opt.MaxSize }

// SetPublisher makes Put and Delete hand their events to publish instead of
// delivering them; publish must arrange for Deliver to be called.
func (s *Service) SetPublisher(publish func(Event)) {
	s.mu.Lock()
	s.publish = publish
	s.mu.Unlock()
}

func (s *Service) emit(ev Event) {
	s.mu.Lock()
	pub := s.publish
	s.mu.Unlock()
	if pub != nil {
		pub(ev)
		return
	}
	s.Deliver(ev)
}

// Put stores data under k as its next revision: 10107 for a bad key, 10413 over MaxSize.
func (s *Service) Put(ctx context.Context, k Key, data []byte) (Meta, error) {
	if err := k.Validate(); err != nil {
		return Meta{}, fmt.Errorf("put resource: %w", err)
	}
	if int64(len(data)) > s.opt.MaxSize {
		return Meta{}, fmt.Errorf("put resource %s: %d bytes, limit %d: %w", k, len(data), s.opt.MaxSize, ErrTooLarge)
	}
	if data == nil {
		data = []byte{}
	}
	m, err := s.st.PutResource(ctx, Resource{Meta: Meta{Key: k, Updated: s.opt.Now().UTC()}, Data: data})
	if err != nil {
		return Meta{}, fmt.Errorf("put resource %s: %w", k, err)
	}
	s.emit(Event{Type: EventUpdated, Meta: m})
	return m, nil
}

// Get returns the resource of k; 10166 when it does not exist.
func (s *Service) Get(ctx context.Context, k Key) (Resource, error) {
	if err := k.Validate(); err != nil {
		return Resource{}, fmt.Errorf("get resource: %w", err)
	}
	r, ok, err := s.st.GetResource(ctx, k)
	if err != nil {
		return Resource{}, fmt.Errorf("get resource %s: %w", k, err)
	}
	if !ok {
		return Resource{}, fmt.Errorf("resource %s: %w", k, ErrNotFound)
	}
	return r, nil
}

// Delete removes k; 10166 when it does not exist.
func (s *Service) Delete(ctx context.Context, k Key) error {
	if err := k.Validate(); err != nil {
		return fmt.Errorf("delete resource: %w", err)
	}
	ok, err := s.st.DeleteResource(ctx, k)
	if err != nil {
		return fmt.Errorf("delete resource %s: %w", k, err)
	}
	if !ok {
		return fmt.Errorf("resource %s: %w", k, ErrNotFound)
	}
	s.emit(Event{Type: EventRemoved, Meta: Meta{Key: k}})
	return nil
}

// List returns the metas of service's resources (of appID only when not empty).
func (s *Service) List(ctx context.Context, service, appID string) ([]Meta, error) {
	if !validPart(service) || (appID != "" && !validPart(appID)) {
		return nil, fmt.Errorf("list resources %q/%q: %w", service, appID, ErrInvalid)
	}
	ms, err := s.st.ListResources(ctx, service, appID)
	if err != nil {
		return nil, fmt.Errorf("list resources %s: %w", service, err)
	}
	return ms, nil
}

// Watcher receives the events of one service.
type Watcher struct {
	s       *Service
	service string
	c       chan Event
	once    sync.Once
	dropped bool
}

// C delivers the events; it is closed when the watcher is closed, dropped for falling
// behind (Dropped reports true then) or the service closes.
func (w *Watcher) C() <-chan Event { return w.c }

// Dropped reports whether the watcher was closed for falling behind; its owner has
// missed events and must resynchronise.
func (w *Watcher) Dropped() bool {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	return w.dropped
}

// Close stops the watcher.
func (w *Watcher) Close() {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	w.closeLocked()
}

func (w *Watcher) closeLocked() {
	w.once.Do(func() {
		delete(w.s.watchers, w)
		close(w.c)
	})
}

// Watch returns a watcher of service's events with room for buf of them.
func (s *Service) Watch(service string, buf int) *Watcher {
	w := &Watcher{s: s, service: service, c: make(chan Event, max(buf, 1))}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		w.closeLocked()
		return w
	}
	s.watchers[w] = struct{}{}
	return w
}

// Watchers counts the open watchers.
func (s *Service) Watchers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.watchers)
}

// Deliver hands ev to every watcher of its service; a watcher whose buffer is full is
// dropped.
func (s *Service) Deliver(ev Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for w := range s.watchers {
		if w.service != ev.Meta.Service {
			continue
		}
		select {
		case w.c <- ev:
		default:
			w.dropped = true
			w.closeLocked()
		}
	}
}

// Close closes every watcher; later Watch calls get closed watchers.
func (s *Service) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for w := range s.watchers {
		w.closeLocked()
	}
}
