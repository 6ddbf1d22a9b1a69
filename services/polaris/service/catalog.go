package service

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/services/polaris/config"
	"github.com/rs/zerolog"
)

// catalogBuffer is how many config changes the catalog may fall behind before its
// watch is dropped and taken again.
const catalogBuffer = 4096

// KeyLister lists every config file a durable store holds; the catalog asks it at start
// so files pushed before a restart are listed.
type KeyLister func(ctx context.Context) ([]config.Key, error)

// Catalog indexes the config files polaris holds, so they can be listed and browsed by
// project, group, service and version. It follows the config center's change stream
// (every push and delete, from any client) and starts from a KeyLister when one is given.
type Catalog struct {
	center *config.Center
	list   KeyLister
	log    zerolog.Logger

	mu   sync.Mutex
	keys map[config.Key]struct{}
	sub  *config.Watch
}

// NewCatalog returns a catalog of center's files and takes its change watch at once,
// so no push made after NewCatalog returns is missed. list may be nil.
func NewCatalog(ctx context.Context, center *config.Center, list KeyLister, log zerolog.Logger) (*Catalog, error) {
	c := &Catalog{center: center, list: list, log: log, keys: map[config.Key]struct{}{}}
	sub, err := center.Changes(catalogBuffer)
	if err != nil {
		return nil, fmt.Errorf("config catalog: %w", err)
	}
	c.sub = sub
	if list != nil {
		ks, err := list(ctx)
		if err != nil {
			sub.Close()
			return nil, fmt.Errorf("config catalog: %w", err)
		}
		for _, k := range ks {
			c.keys[k] = struct{}{}
		}
	}
	return c, nil
}

// Run follows the change stream until ctx ends or the config center closes. A watch
// dropped for falling behind is taken again.
func (c *Catalog) Run(ctx context.Context) {
	defer func() {
		c.mu.Lock()
		c.sub.Close()
		c.mu.Unlock()
	}()
	for {
		c.mu.Lock()
		sub := c.sub
		c.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-sub.C():
			if ok {
				c.apply(ev)
				continue
			}
			// Dropped for falling behind, or the center closed: then watching
			// again fails and Run ends.
			next, err := c.center.Changes(catalogBuffer)
			if err != nil {
				return
			}
			c.log.Warn().Err(sub.Err()).Msg("config catalog watch dropped: watching again")
			c.mu.Lock()
			c.sub = next
			c.mu.Unlock()
		}
	}
}

func (c *Catalog) apply(ev config.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range ev.Files {
		switch ev.Type {
		case config.EventUpdated:
			c.keys[f.Key] = struct{}{}
		case config.EventRemoved:
			delete(c.keys, f.Key)
		}
	}
}

// Add records k (the API calls it after its own push, so a list right after sees it).
func (c *Catalog) Add(k config.Key) {
	c.mu.Lock()
	c.keys[k] = struct{}{}
	c.mu.Unlock()
}

// Remove forgets k.
func (c *Catalog) Remove(k config.Key) {
	c.mu.Lock()
	delete(c.keys, k)
	c.mu.Unlock()
}

// FileSummary describes one config file.
type FileSummary struct {
	Key       config.Key       `json:"key"`
	Current   int64            `json:"current"`
	Revisions int              `json:"revisions"`
	Gray      map[string]int64 `json:"gray,omitempty"`
	Updated   string           `json:"updated,omitempty"`
}

// Files lists the files matching filter (empty parts match everything), sorted by key.
// A filter part naming nothing polaris holds is ErrNotFound ("unknown project x").
func (c *Catalog) Files(ctx context.Context, filter config.Key) ([]FileSummary, error) {
	c.mu.Lock()
	keys := make([]config.Key, 0, len(c.keys))
	for k := range c.keys {
		keys = append(keys, k)
	}
	c.mu.Unlock()
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })

	parts := []struct {
		name, want string
		get        func(config.Key) string
	}{
		{"project", filter.Project, func(k config.Key) string { return k.Project }},
		{"group", filter.Group, func(k config.Key) string { return k.Group }},
		{"service", filter.Service, func(k config.Key) string { return k.Service }},
		{"version", filter.Version, func(k config.Key) string { return k.Version }},
		{"file", filter.File, func(k config.Key) string { return k.File }},
	}
	for _, p := range parts {
		if p.want == "" {
			continue
		}
		kept := keys[:0]
		for _, k := range keys {
			if p.get(k) == p.want {
				kept = append(kept, k)
			}
		}
		if len(kept) == 0 {
			return nil, fmt.Errorf("unknown %s %q: %w", p.name, p.want, aserr.ErrNotFound)
		}
		keys = kept
	}
	out := make([]FileSummary, 0, len(keys))
	for _, k := range keys {
		s, err := summarize(ctx, c.center, k)
		if errors.Is(err, config.ErrNotFound) {
			c.Remove(k) // deleted while the change was in flight
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// summarize describes file k: its current revision, revision count and live gray groups.
func summarize(ctx context.Context, center *config.Center, k config.Key) (FileSummary, error) {
	revs, err := center.History(ctx, k)
	if err != nil {
		return FileSummary{}, err
	}
	s := FileSummary{Key: k, Revisions: len(revs)}
	if cur, err := center.Get(ctx, k, config.Caller{}); err == nil {
		s.Current = cur.Revision
	}
	gray, err := grayGroups(ctx, center, k, revs)
	if err != nil {
		return FileSummary{}, err
	}
	if len(gray) > 0 {
		s.Gray = gray
	}
	if n := len(revs); n > 0 {
		s.Updated = revs[n-1].Created.UTC().Format("2006-01-02 15:04:05Z")
	}
	return s, nil
}

// grayGroups returns the gray groups of k still in force and the revision each gets;
// revs is k's history.
func grayGroups(ctx context.Context, center *config.Center, k config.Key, revs []config.File) (map[string]int64, error) {
	out := map[string]int64{}
	for _, f := range revs {
		g := f.GrayGroup
		if _, done := out[g]; g == "" || done {
			continue
		}
		got, err := center.Get(ctx, k, config.Caller{Labels: map[string]string{config.GrayLabel: g}})
		if err != nil {
			if errors.Is(err, config.ErrNotFound) {
				continue
			}
			return nil, err
		}
		if got.Gray {
			out[g] = got.Revision
		}
	}
	return out, nil
}
