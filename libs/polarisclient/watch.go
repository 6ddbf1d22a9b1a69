package polarisclient

import (
	"context"
	"sort"
	"time"

	polarispb "github.com/athenaserving/asf/libs/proto/polaris/v1"
	"google.golang.org/protobuf/proto"
)

// sleepCtx waits d or until ctx ends; it reports whether ctx is still live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Watch follows the instances of service ("" = every service) until ctx ends, calling
// fn with the whole current set (sorted by service and address, consumers included)
// after every change and load report. It reconnects with backoff and starts again from
// polaris's snapshot. While polaris cannot be reached before any snapshot arrived, fn
// gets the snapshot last saved in the cache directory, if any, so a service can start
// on the last known registry. fn runs on Watch's goroutine; it must not keep the slice.
// Watch returns nil when ctx ends.
func (c *Client) Watch(ctx context.Context, service string, fn func(snapshot []*polarispb.InstanceState)) error {
	log := c.opt.Log.With().Str("watch", service).Logger()
	delivered, failures := false, 0
	for {
		live, err := c.watchOnce(ctx, service, fn)
		if ctx.Err() != nil {
			return nil
		}
		if live {
			delivered, failures = true, 0
		}
		log.Warn().Err(err).Msg("registry watch ended: reconnecting")
		if !delivered {
			cached := &polarispb.ListResponse{}
			if c.cache.load(kindRegistry, service, cached) {
				log.Warn().Int("instances", len(cached.GetInstances())).Msg("polaris unreachable: using the cached registry")
				fn(cached.GetInstances())
				delivered = true
			}
		}
		if !sleepCtx(ctx, c.opt.Backoff.Delay(failures)) {
			return nil
		}
		failures++
	}
}

// watchOnce runs one Watch stream; live tells whether a snapshot arrived.
func (c *Client) watchOnce(ctx context.Context, service string, fn func([]*polarispb.InstanceState)) (live bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.Registry.Watch(ctx, &polarispb.WatchRequest{Service: service})
	if err != nil {
		return false, err
	}
	set := map[string]*polarispb.InstanceState{}
	for {
		ev, err := stream.Recv()
		if err != nil {
			return live, err
		}
		membership := true
		switch ev.GetType() {
		case polarispb.RegistryEvent_TYPE_SNAPSHOT:
			live = true
			set = map[string]*polarispb.InstanceState{}
			for _, st := range ev.GetInstances() {
				set[stateKey(st)] = st
			}
		case polarispb.RegistryEvent_TYPE_REMOVED:
			for _, st := range ev.GetInstances() {
				delete(set, stateKey(st))
			}
		case polarispb.RegistryEvent_TYPE_LOAD:
			membership = false
			fallthrough
		default:
			for _, st := range ev.GetInstances() {
				set[stateKey(st)] = st
			}
		}
		if !live {
			continue
		}
		snap := make([]*polarispb.InstanceState, 0, len(set))
		for _, st := range set {
			snap = append(snap, st)
		}
		sort.Slice(snap, func(i, j int) bool { return stateKey(snap[i]) < stateKey(snap[j]) })
		if membership {
			// Load reports (every second per instance) are not worth a disk write.
			c.cache.save(kindRegistry, service, &polarispb.ListResponse{Instances: snap})
		}
		out := make([]*polarispb.InstanceState, len(snap))
		for i, st := range snap {
			out[i] = proto.Clone(st).(*polarispb.InstanceState)
		}
		fn(out)
	}
}

func stateKey(st *polarispb.InstanceState) string {
	return st.GetInstance().GetService() + "\x00" + st.GetInstance().GetAddr()
}
