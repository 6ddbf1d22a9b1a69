// Package capwatch keeps a capability.Registry in step with the schemas in polaris's
// config center: a watch of the schema files (a SNAPSHOT, then changes), each file parsed
// and applied, and an apply report per file back to polaris. Loop is the watch itself,
// reconnecting with backoff, for any other config a service follows.
//
//	reg := capability.NewRegistry()
//	w := capwatch.New(polaris.CachedConfig(), reg, nil, capwatch.Options{Caller: caller}, log)
//	go w.Run(ctx)
//	<-w.Synced() // the first snapshot is applied
package capwatch

import (
	"context"
	"sync"
	"time"

	"github.com/athenaserving/asf/libs/capability"
	polarispb "github.com/athenaserving/asf/libs/proto/polaris/v1"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"
)

// DefaultKey is where capability schemas live in polaris: every file of
// asf/default/capabilities/v1 whose name starts with "schema_".
func DefaultKey() *polarispb.ConfigKey {
	return &polarispb.ConfigKey{Project: "asf", Group: "default", Service: "capabilities", Version: "v1", File: "schema_"}
}

// Options tune a config watch.
type Options struct {
	// Caller identifies this instance to polaris (gray selection, apply reports).
	Caller *polarispb.Caller
	// MinBackoff and MaxBackoff bound the wait between reconnects (defaults 100 ms, 5 s).
	MinBackoff, MaxBackoff time.Duration
}

// Loop watches key (prefix: key.File is a file name prefix) on polaris and calls
// handle with every event, the SNAPSHOT first, until ctx ends. A broken watch is opened
// again with exponential backoff; every (re)connection starts with a fresh SNAPSHOT, so
// handle must treat a snapshot as the whole current set. It returns nil when ctx ends.
func Loop(ctx context.Context, client polarispb.ConfigClient, key *polarispb.ConfigKey, prefix bool,
	opts Options, log zerolog.Logger, handle func(*polarispb.ConfigEvent)) error {
	minB, maxB := opts.MinBackoff, opts.MaxBackoff
	if minB <= 0 {
		minB = 100 * time.Millisecond
	}
	if maxB < minB {
		maxB = max(5*time.Second, minB)
	}
	backoff := minB
	for {
		got, err := watchOnce(ctx, client, key, prefix, opts.Caller, handle)
		if ctx.Err() != nil {
			return nil
		}
		if got {
			backoff = minB
		}
		log.Warn().Err(err).Str("file", key.GetFile()).Dur("retry_in", backoff).Msg("config watch broken; keeping the last good config")
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(backoff*2, maxB)
	}
}

func watchOnce(ctx context.Context, client polarispb.ConfigClient, key *polarispb.ConfigKey, prefix bool,
	caller *polarispb.Caller, handle func(*polarispb.ConfigEvent)) (bool, error) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := client.Watch(wctx, &polarispb.WatchConfigRequest{Key: key, Prefix: prefix, Caller: caller})
	if err != nil {
		return false, err
	}
	got := false
	for {
		ev, err := stream.Recv()
		if err != nil {
			return got, err
		}
		got = true
		handle(ev)
	}
}

// Watcher keeps a Registry in step with the schema files in polaris. A file whose new
// revision fails to parse keeps its previous revision, and the failure is reported to
// polaris with ReportApplied(applied=false, reason).
type Watcher struct {
	client polarispb.ConfigClient
	reg    *capability.Registry
	key    *polarispb.ConfigKey
	opts   Options
	log    zerolog.Logger

	synced   chan struct{}
	syncOnce sync.Once
}

// New returns a Watcher filling reg from the files of key (key.File is the name
// prefix; nil key means DefaultKey()).
func New(client polarispb.ConfigClient, reg *capability.Registry, key *polarispb.ConfigKey, opts Options, log zerolog.Logger) *Watcher {
	if key == nil {
		key = DefaultKey()
	}
	return &Watcher{
		client: client, reg: reg, key: proto.Clone(key).(*polarispb.ConfigKey), opts: opts,
		log: log.With().Str("component", "capability-watcher").Logger(), synced: make(chan struct{}),
	}
}

// Synced is closed once the first snapshot has been applied.
func (w *Watcher) Synced() <-chan struct{} { return w.synced }

// Run watches until ctx ends.
func (w *Watcher) Run(ctx context.Context) error {
	return Loop(ctx, w.client, w.key, true, w.opts, w.log, func(ev *polarispb.ConfigEvent) { w.apply(ctx, ev) })
}

func (w *Watcher) apply(ctx context.Context, ev *polarispb.ConfigEvent) {
	switch ev.GetType() {
	case polarispb.ConfigEvent_TYPE_SNAPSHOT:
		keep := map[string]bool{}
		for _, f := range ev.GetFiles() {
			keep[f.GetKey().GetFile()] = true
		}
		w.reg.Retain(keep)
		for _, f := range ev.GetFiles() {
			w.put(ctx, f)
		}
		w.syncOnce.Do(func() { close(w.synced) })
		w.log.Info().Int("schemas", w.reg.Len()).Msg("capability schemas loaded")
	case polarispb.ConfigEvent_TYPE_UPDATED:
		for _, f := range ev.GetFiles() {
			w.put(ctx, f)
		}
	case polarispb.ConfigEvent_TYPE_REMOVED:
		for _, f := range ev.GetFiles() {
			if w.reg.Remove(f.GetKey().GetFile()) {
				w.log.Info().Str("file", f.GetKey().GetFile()).Msg("capability schema removed")
			}
		}
	}
}

func (w *Watcher) put(ctx context.Context, f *polarispb.ConfigFile) {
	name := f.GetKey().GetFile()
	if cur := w.current(name); cur != nil && cur.Revision() == f.GetRevision() {
		return // already applied (a snapshot after a reconnect)
	}
	sch, err := w.reg.Put(name, f.GetRevision(), f.GetContent())
	reason := ""
	if err != nil {
		reason = err.Error()
		w.log.Error().Err(err).Str("file", name).Int64("revision", f.GetRevision()).Msg("capability schema rejected; the previous revision stays")
	} else {
		w.log.Info().Str("file", name).Str("capability", sch.ID()).Int64("revision", f.GetRevision()).Msg("capability schema applied")
	}
	w.report(ctx, f, err == nil, reason)
}

func (w *Watcher) current(file string) *capability.Schema {
	return w.reg.File(file)
}

func (w *Watcher) report(ctx context.Context, f *polarispb.ConfigFile, applied bool, reason string) {
	if w.opts.Caller.GetAddr() == "" {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := w.client.ReportApplied(rctx, &polarispb.ReportAppliedRequest{
		Key: f.GetKey(), Revision: f.GetRevision(), Caller: w.opts.Caller, Applied: applied, Reason: reason,
	}); err != nil && ctx.Err() == nil {
		w.log.Warn().Err(err).Str("file", f.GetKey().GetFile()).Msg("report applied")
	}
}
