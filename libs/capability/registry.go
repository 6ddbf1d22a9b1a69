package capability

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// Registry holds the current set of capability schemas, keyed by config file. Readers see
// an immutable snapshot swapped atomically, so lookups never block and a session holding
// a *Schema keeps it while newer revisions come in. It is safe for concurrent use.
type Registry struct {
	cur atomic.Pointer[set]
	mu  sync.Mutex // serialises writers
}

type set struct {
	files   map[string]*Schema
	byID    map[string]*Schema
	byRoute map[string]*Schema
	byAPI   map[string]*Schema // WebAPI 2.0 routes
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry {
	r := &Registry{}
	r.cur.Store(index(map[string]*Schema{}))
	return r
}

func index(files map[string]*Schema) *set {
	s := &set{files: files, byID: make(map[string]*Schema, len(files)), byRoute: make(map[string]*Schema, len(files)),
		byAPI: map[string]*Schema{}}
	for _, sch := range files {
		s.byID[sch.id] = sch
		s.byRoute[sch.route] = sch
		if sch.webapi != nil {
			s.byAPI[sch.webapi.Route()] = sch
		}
	}
	return s
}

// Get returns the schema of capability id.
func (r *Registry) Get(id string) (*Schema, bool) {
	s, ok := r.cur.Load().byID[id]
	return s, ok
}

// ByRoute returns the schema whose route is path (a trailing slash is ignored).
func (r *Registry) ByRoute(path string) (*Schema, bool) {
	if len(path) > 1 {
		path = strings.TrimSuffix(path, "/")
	}
	s, ok := r.cur.Load().byRoute[path]
	return s, ok
}

// ByWebAPIRoute returns the schema whose WebAPI 2.0 route (webapi.route) is path (a
// trailing slash is ignored).
func (r *Registry) ByWebAPIRoute(path string) (*Schema, bool) {
	if len(path) > 1 {
		path = strings.TrimSuffix(path, "/")
	}
	s, ok := r.cur.Load().byAPI[path]
	return s, ok
}

// File returns the schema loaded from file (the config file name), nil when none is.
func (r *Registry) File(file string) *Schema { return r.cur.Load().files[file] }

// Len is the number of schemas.
func (r *Registry) Len() int { return len(r.cur.Load().byID) }

// List returns every schema, sorted by capability id.
func (r *Registry) List() []*Schema {
	s := r.cur.Load()
	out := make([]*Schema, 0, len(s.byID))
	for _, sch := range s.byID {
		out = append(out, sch)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// Put parses data as revision rev of file and, when it is valid and does not claim the
// capability id or route of another file, makes it current. On error the previous revision
// of file (if any) stays.
func (r *Registry) Put(file string, rev int64, data []byte) (*Schema, error) {
	sch, err := Parse(data)
	if err != nil {
		return nil, err
	}
	sch.file, sch.revision = file, rev
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.cur.Load()
	if err := conflict(old.files, file, sch); err != nil {
		return nil, err
	}
	files := make(map[string]*Schema, len(old.files)+1)
	for k, v := range old.files {
		files[k] = v
	}
	files[file] = sch
	r.cur.Store(index(files))
	return sch, nil
}

// Remove drops file; it reports whether file was present.
func (r *Registry) Remove(file string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.cur.Load()
	if _, ok := old.files[file]; !ok {
		return false
	}
	files := make(map[string]*Schema, len(old.files))
	for k, v := range old.files {
		if k != file {
			files[k] = v
		}
	}
	r.cur.Store(index(files))
	return true
}

// Retain drops every file not in keep.
func (r *Registry) Retain(keep map[string]bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.cur.Load()
	files := make(map[string]*Schema, len(old.files))
	for k, v := range old.files {
		if keep[k] {
			files[k] = v
		}
	}
	if len(files) != len(old.files) {
		r.cur.Store(index(files))
	}
}

func conflict(files map[string]*Schema, file string, sch *Schema) error {
	for f, other := range files {
		if f == file {
			continue
		}
		if other.id == sch.id {
			return fmt.Errorf("capability schema %s: serviceId already defined by %s", sch.id, f)
		}
		if other.route == sch.route {
			return fmt.Errorf("capability schema %s: route %s already used by %s", sch.id, sch.route, f)
		}
		for _, a := range routesOf(sch) {
			for _, b := range routesOf(other) {
				if a == b {
					return fmt.Errorf("capability schema %s: route %s already used by %s", sch.id, a, f)
				}
			}
		}
	}
	return nil
}

// routesOf is the schema's ASE route and its WebAPI 2.0 route, when it has one.
func routesOf(s *Schema) []string {
	if s.webapi == nil {
		return []string{s.route}
	}
	return []string{s.route, s.webapi.Route()}
}
