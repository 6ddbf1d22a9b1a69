package polarisclient

import (
	"context"
	"fmt"

	polarispb "github.com/athenaserving/asf/libs/proto/polaris/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func unreachable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return true
	}
	return false
}

// GetConfig returns the revision of key this client's caller gets. When polaris cannot
// be reached it returns the copy last applied through WatchConfig and saved in the cache
// directory, if any (logged); otherwise polaris's error.
func (c *Client) GetConfig(ctx context.Context, key *polarispb.ConfigKey) (*polarispb.ConfigFile, error) {
	f, err := c.Config.Get(ctx, &polarispb.GetConfigRequest{Key: key, Caller: c.opt.Caller})
	if err == nil {
		return f, nil
	}
	if unreachable(err) && ctx.Err() == nil {
		cached := &polarispb.ConfigFile{}
		if c.cache.load(kindConfig, configName(key), cached) {
			c.opt.Log.Warn().Err(err).Str("file", key.GetFile()).Int64("revision", cached.GetRevision()).Msg("polaris unreachable: using the cached config")
			return cached, nil
		}
	}
	return nil, fmt.Errorf("get config %s: %w", key.GetFile(), err)
}

// configState is what WatchConfig knows of one file.
type configState struct {
	rev      int64 // revision last handed to reload
	ok       bool  // reload accepted it
	reported bool  // polaris has the report
}

// WatchConfig follows key (prefix: every file of key's directory whose name starts with
// key.File) until ctx ends. Every new revision the caller gets is passed to reload, and
// its result is reported to polaris (ReportApplied: applied when reload returns nil,
// else the error as the reason); revisions reload accepted are saved in the cache
// directory. While polaris cannot be reached before its first snapshot, reload gets the
// cached files, and their reports are sent once polaris is back. A revision is handed
// to reload once, however often the stream reconnects. It returns nil when ctx ends.
func (c *Client) WatchConfig(ctx context.Context, key *polarispb.ConfigKey, prefix bool, reload func(*polarispb.ConfigFile) error) error {
	log := c.opt.Log.With().Str("config", key.GetFile()).Logger()
	state := map[string]*configState{}
	delivered, failures := false, 0
	for {
		live, err := c.watchConfigOnce(ctx, key, prefix, reload, state)
		if ctx.Err() != nil {
			return nil
		}
		if live {
			delivered, failures = true, 0
		}
		log.Warn().Err(err).Msg("config watch ended: reconnecting")
		if !delivered {
			for _, f := range c.cache.configs(key, prefix) {
				log.Warn().Str("file", f.GetKey().GetFile()).Int64("revision", f.GetRevision()).Msg("polaris unreachable: using the cached config")
				st := &configState{rev: f.GetRevision()}
				st.ok = reload(f) == nil
				state[configName(f.GetKey())] = st
				delivered = true
			}
		}
		if !sleepCtx(ctx, c.opt.Backoff.Delay(failures)) {
			return nil
		}
		failures++
	}
}

func (c *Client) watchConfigOnce(ctx context.Context, key *polarispb.ConfigKey, prefix bool, reload func(*polarispb.ConfigFile) error, state map[string]*configState) (live bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.Config.Watch(ctx, &polarispb.WatchConfigRequest{Key: key, Prefix: prefix, Caller: c.opt.Caller})
	if err != nil {
		return false, err
	}
	for {
		ev, err := stream.Recv()
		if err != nil {
			return live, err
		}
		if ev.GetType() == polarispb.ConfigEvent_TYPE_SNAPSHOT {
			live = true
		}
		for _, f := range ev.GetFiles() {
			name := configName(f.GetKey())
			if ev.GetType() == polarispb.ConfigEvent_TYPE_REMOVED {
				delete(state, name)
				c.cache.remove(kindConfig, name)
				continue
			}
			st := state[name]
			if st == nil || st.rev != f.GetRevision() {
				st = &configState{rev: f.GetRevision()}
				state[name] = st
				rerr := reload(f)
				st.ok = rerr == nil
				if st.ok {
					c.cache.save(kindConfig, name, f)
				}
				st.reported = c.report(ctx, f, rerr)
				continue
			}
			if !st.reported {
				var rerr error
				if !st.ok {
					rerr = fmt.Errorf("reload of the cached revision failed")
				}
				st.reported = c.report(ctx, f, rerr)
			}
		}
	}
}

// report files an apply report; it tells whether polaris took it.
func (c *Client) report(ctx context.Context, f *polarispb.ConfigFile, rerr error) bool {
	if c.opt.Caller.GetAddr() == "" {
		return true // anonymous callers do not report
	}
	req := &polarispb.ReportAppliedRequest{Key: f.GetKey(), Revision: f.GetRevision(), Caller: c.opt.Caller, Applied: rerr == nil}
	if rerr != nil {
		req.Reason = rerr.Error()
	}
	if _, err := c.Config.ReportApplied(ctx, req); err != nil {
		c.opt.Log.Warn().Err(err).Str("file", f.GetKey().GetFile()).Msg("report applied failed")
		return false
	}
	return true
}
