package polarisclient

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	polarispb "github.com/athenaserving/asf/libs/proto/polaris/v1"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

// kindWatch caches the whole current set of one config watch (key and prefix flag) as a
// SNAPSHOT ConfigEvent.
const kindWatch = "watch"

// kindGet caches the last answer of CachedConfig's Get for a key.
const kindGet = "get"

// CachedConfig returns a config client for code that drives the Config service itself
// (capwatch.Watcher, webgate's apps watcher) and should still start while polaris is
// down. Without a cache directory it is c.Config. With one:
//
//   - Watch keeps, per watched key, the set of files the caller accepted (a revision the
//     caller reports with ReportApplied(applied=false) is not kept; one it does not report
//     is kept once the caller asks for the next event) in the cache directory;
//   - when polaris cannot be reached before a watch's first snapshot, that watch's first
//     Recv returns the cached set as a SNAPSHOT (once per key per client), and the
//     following one the error, so the caller's reconnect loop goes on;
//   - ReportApplied calls polaris polaris could not take (cached revisions) are sent
//     again once polaris answers a snapshot holding the same revision;
//   - Get falls back to the file last got, when polaris cannot be reached.
func (c *Client) CachedConfig() polarispb.ConfigClient {
	if c.cached == nil {
		return c.Config
	}
	return c.cached
}

// cachedConfig is CachedConfig's client; mu guards every watchCache.
type cachedConfig struct {
	polarispb.ConfigClient
	cache *diskCache
	log   zerolog.Logger

	mu      sync.Mutex
	watches map[string]*watchCache
}

// watchCache is what the cache knows of one watched key.
type watchCache struct {
	key    *polarispb.ConfigKey
	prefix bool
	name   string
	live   bool // polaris sent a snapshot
	served bool // the cached set was handed out
	good   map[string]*polarispb.ConfigFile
	// pending holds revisions handed to the caller and not yet accepted or rejected.
	pending map[string]*polarispb.ConfigFile
	// unsent holds apply reports polaris did not take, by file name.
	unsent map[string]*polarispb.ReportAppliedRequest
}

func newCachedConfig(raw polarispb.ConfigClient, cache *diskCache, log zerolog.Logger) *cachedConfig {
	return &cachedConfig{ConfigClient: raw, cache: cache, log: log, watches: map[string]*watchCache{}}
}

func watchName(key *polarispb.ConfigKey, prefix bool) string {
	p := "file"
	if prefix {
		p = "prefix"
	}
	return configName(key) + "\x00" + p
}

func (cc *cachedConfig) watch(key *polarispb.ConfigKey, prefix bool) *watchCache {
	name := watchName(key, prefix)
	cc.mu.Lock()
	defer cc.mu.Unlock()
	w := cc.watches[name]
	if w == nil {
		w = &watchCache{key: proto.Clone(key).(*polarispb.ConfigKey), prefix: prefix, name: name,
			good: map[string]*polarispb.ConfigFile{}, pending: map[string]*polarispb.ConfigFile{},
			unsent: map[string]*polarispb.ReportAppliedRequest{}}
		cc.watches[name] = w
	}
	return w
}

// Watch opens polaris's watch of in's key; see CachedConfig.
func (cc *cachedConfig) Watch(ctx context.Context, in *polarispb.WatchConfigRequest, opts ...grpc.CallOption) (grpc.ServerStreamingClient[polarispb.ConfigEvent], error) {
	w := cc.watch(in.GetKey(), in.GetPrefix())
	st, err := cc.ConfigClient.Watch(ctx, in, opts...)
	if err != nil {
		if ev := cc.fallback(w, err); ev != nil {
			return &watchStream{cc: cc, w: w, ctx: ctx, held: ev, err: err}, nil
		}
		return nil, err
	}
	return &watchStream{ServerStreamingClient: st, cc: cc, w: w, ctx: ctx}, nil
}

// fallback returns w's cached set when err says polaris is unreachable and nothing was
// heard from polaris or the cache for w yet.
func (cc *cachedConfig) fallback(w *watchCache, err error) *polarispb.ConfigEvent {
	if !unreachable(err) {
		return nil
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if w.live || w.served {
		return nil
	}
	ev := &polarispb.ConfigEvent{}
	if !cc.cache.load(kindWatch, w.name, ev) {
		return nil
	}
	w.served = true
	ev.Type = polarispb.ConfigEvent_TYPE_SNAPSHOT
	for _, f := range ev.GetFiles() {
		w.good[f.GetKey().GetFile()] = f
	}
	cc.log.Warn().Err(err).Str("config", w.key.GetFile()).Int("files", len(ev.GetFiles())).Msg("polaris unreachable: using the cached config")
	return ev
}

// observe records an event polaris sent on w's watch.
func (cc *cachedConfig) observe(ctx context.Context, w *watchCache, ev *polarispb.ConfigEvent) {
	cc.mu.Lock()
	changed := false
	var resend []*polarispb.ReportAppliedRequest
	switch ev.GetType() {
	case polarispb.ConfigEvent_TYPE_SNAPSHOT:
		w.live = true
		keep := map[string]bool{}
		for _, f := range ev.GetFiles() {
			keep[f.GetKey().GetFile()] = true
		}
		for name := range w.good {
			if !keep[name] {
				delete(w.good, name)
				changed = true
			}
		}
		for name := range w.pending {
			if !keep[name] {
				delete(w.pending, name)
			}
		}
		for _, f := range ev.GetFiles() {
			if r := w.unsent[f.GetKey().GetFile()]; r != nil {
				delete(w.unsent, f.GetKey().GetFile())
				if r.GetRevision() == f.GetRevision() {
					resend = append(resend, r)
				}
			}
		}
		// The first snapshot makes the cache hold exactly polaris's set, even when empty.
		changed = changed || len(ev.GetFiles()) == 0
		fallthrough
	case polarispb.ConfigEvent_TYPE_UPDATED:
		for _, f := range ev.GetFiles() {
			name := f.GetKey().GetFile()
			if g := w.good[name]; g != nil && g.GetRevision() == f.GetRevision() {
				continue
			}
			w.pending[name] = f
		}
	case polarispb.ConfigEvent_TYPE_REMOVED:
		for _, f := range ev.GetFiles() {
			name := f.GetKey().GetFile()
			if _, ok := w.good[name]; ok {
				delete(w.good, name)
				changed = true
			}
			delete(w.pending, name)
			delete(w.unsent, name)
		}
	}
	if changed {
		cc.saveLocked(w)
	}
	cc.mu.Unlock()
	for _, r := range resend {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if _, err := cc.ConfigClient.ReportApplied(rctx, r); err != nil && ctx.Err() == nil {
			cc.log.Warn().Err(err).Str("file", r.GetKey().GetFile()).Msg("report applied of a cached revision")
		}
		cancel()
	}
}

// promote keeps every revision the caller had the chance to reject and did not.
func (cc *cachedConfig) promote(w *watchCache) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if len(w.pending) == 0 {
		return
	}
	for name, f := range w.pending {
		w.good[name] = f
		delete(w.pending, name)
	}
	cc.saveLocked(w)
}

func (cc *cachedConfig) saveLocked(w *watchCache) {
	ev := &polarispb.ConfigEvent{Type: polarispb.ConfigEvent_TYPE_SNAPSHOT}
	for _, f := range w.good {
		ev.Files = append(ev.Files, f)
	}
	cc.cache.save(kindWatch, w.name, ev)
}

// ReportApplied settles the reported revision in the cache, then files the report.
func (cc *cachedConfig) ReportApplied(ctx context.Context, in *polarispb.ReportAppliedRequest, opts ...grpc.CallOption) (*polarispb.ReportAppliedResponse, error) {
	name := in.GetKey().GetFile()
	var mine []*watchCache
	cc.mu.Lock()
	for _, w := range cc.watches {
		if !keyMatches(w.key, in.GetKey(), w.prefix) {
			continue
		}
		mine = append(mine, w)
		if p := w.pending[name]; p != nil && p.GetRevision() == in.GetRevision() {
			delete(w.pending, name)
			if in.GetApplied() {
				w.good[name] = p
				cc.saveLocked(w)
			}
		}
	}
	cc.mu.Unlock()
	resp, err := cc.ConfigClient.ReportApplied(ctx, in, opts...)
	if err != nil && unreachable(err) {
		cc.mu.Lock()
		for _, w := range mine {
			if !w.live {
				w.unsent[name] = proto.Clone(in).(*polarispb.ReportAppliedRequest)
			}
		}
		cc.mu.Unlock()
	}
	return resp, err
}

// Get returns polaris's answer, or the file last got while polaris cannot be reached.
func (cc *cachedConfig) Get(ctx context.Context, in *polarispb.GetConfigRequest, opts ...grpc.CallOption) (*polarispb.ConfigFile, error) {
	f, err := cc.ConfigClient.Get(ctx, in, opts...)
	name := configName(in.GetKey())
	if err == nil {
		cc.cache.save(kindGet, name, f)
		return f, nil
	}
	cached := &polarispb.ConfigFile{}
	if unreachable(err) && ctx.Err() == nil && cc.cache.load(kindGet, name, cached) {
		cc.log.Warn().Err(err).Str("file", in.GetKey().GetFile()).Int64("revision", cached.GetRevision()).Msg("polaris unreachable: using the cached config")
		return cached, nil
	}
	return nil, err
}

// watchStream is a Watch stream seen through the cache: held is an event (the cached
// set) returned before the stream's own, err the error returned after it when there is
// no stream.
type watchStream struct {
	grpc.ServerStreamingClient[polarispb.ConfigEvent] // nil when polaris was not reached
	cc                                                *cachedConfig
	w                                                 *watchCache
	ctx                                               context.Context
	got                                               bool
	held                                              *polarispb.ConfigEvent
	err                                               error
}

func (s *watchStream) Recv() (*polarispb.ConfigEvent, error) {
	s.cc.promote(s.w) // the caller handled the previous event, and reported it
	if s.held != nil {
		ev := s.held
		s.held = nil
		return ev, nil
	}
	if s.ServerStreamingClient == nil {
		return nil, s.err
	}
	if s.err != nil {
		return nil, s.err
	}
	ev, err := s.ServerStreamingClient.Recv()
	if err != nil {
		if !s.got {
			if cached := s.cc.fallback(s.w, err); cached != nil {
				s.err = err
				return cached, nil
			}
		}
		return nil, err
	}
	s.got = true
	s.cc.observe(s.ctx, s.w, ev)
	return ev, nil
}

var errNoStream = errors.New("polaris not reached: no stream")

// The grpc.ClientStream methods of a stream that polaris never opened.

func (s *watchStream) Header() (metadata.MD, error) {
	if s.ServerStreamingClient == nil {
		return nil, errNoStream
	}
	return s.ServerStreamingClient.Header()
}

func (s *watchStream) Trailer() metadata.MD {
	if s.ServerStreamingClient == nil {
		return nil
	}
	return s.ServerStreamingClient.Trailer()
}

func (s *watchStream) CloseSend() error {
	if s.ServerStreamingClient == nil {
		return nil
	}
	return s.ServerStreamingClient.CloseSend()
}

func (s *watchStream) Context() context.Context {
	if s.ServerStreamingClient == nil {
		return s.ctx
	}
	return s.ServerStreamingClient.Context()
}

func (s *watchStream) SendMsg(m any) error {
	if s.ServerStreamingClient == nil {
		return io.EOF
	}
	return s.ServerStreamingClient.SendMsg(m)
}

func (s *watchStream) RecvMsg(m any) error {
	if s.ServerStreamingClient == nil {
		return s.err
	}
	return s.ServerStreamingClient.RecvMsg(m)
}
