// Package polarisclient is the SDK services use to talk to polaris: keep an instance
// registered with heartbeats, discover and watch services, get and watch config files
// (reporting back whether each revision was applied), and keep running on a local disk
// cache of the last known registry and config while polaris is unreachable.
//
//	c, _ := polarisclient.DialWith("127.0.0.1:6868", polarisclient.Options{
//	    CacheDir: "/var/cache/asf/atom", Caller: &polarispb.Caller{Addr: addr}, Log: log})
//	defer c.Close()
//	go c.Watch(ctx, "echo", func(snap []*polarispb.InstanceState) { ... })     // reconnects
//	go c.WatchConfig(ctx, key, false, func(f *polarispb.ConfigFile) error { ... }) // reports applied
//	r := c.NewRegistrar(&polarispb.Instance{Service: "echo", Addr: addr, Kind: "provider"},
//	    time.Second, loadFunc, log)
//	go r.Run(ctx)        // heartbeats until ctx ends; r.Notify() sends one at once
//	...
//	r.Offline(shutdownCtx) // live=0, then deregister
package polarisclient

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/athenaserving/asf/libs/grpcx"
	polarispb "github.com/athenaserving/asf/libs/proto/polaris/v1"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/protobuf/proto"
)

// Options configure a Client; the zero value is a client without disk cache.
type Options struct {
	// CacheDir keeps the last known registry snapshots and applied config files; empty
	// disables the cache.
	CacheDir string
	// Caller identifies this instance to the config center: its gray group (label
	// "gray") and the address apply reports are filed under.
	Caller *polarispb.Caller
	// Log receives reconnects and cache use.
	Log zerolog.Logger
	// Backoff spaces reconnects; zero values take DefaultBackoff.
	Backoff Backoff
	// DialOptions are added to the connection's, for example tlsx.DialOption(bundle,
	// "polaris") for mutual TLS (without one the connection is plaintext).
	DialOptions []grpc.DialOption
}

// Client holds one connection to polaris and its registry and config clients.
type Client struct {
	cc        *grpc.ClientConn
	Registry  polarispb.RegistryClient
	Config    polarispb.ConfigClient
	Resources polarispb.ResourcesClient

	opt    Options
	cache  *diskCache
	cached *cachedConfig // CachedConfig; nil without a cache directory
}

// Dial connects to polaris at addr. The connection is lazy: Dial does not fail when
// polaris is down, calls do until it is back.
func Dial(addr string) (*Client, error) { return DialWith(addr, Options{Log: zerolog.Nop()}) }

// DialWith connects to polaris at addr with o; like Dial, it does not wait for polaris.
func DialWith(addr string, o Options) (*Client, error) {
	o.Backoff = o.Backoff.withDefaults()
	// Reconnect at least every second: a restarted polaris must hear from its instances
	// well within their TTL (3 s), or it evicts the ones it restored from its store.
	cc, err := grpcx.Dial(addr, append([]grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
		Backoff:           backoff.Config{BaseDelay: o.Backoff.Min, Multiplier: 2, Jitter: 0.2, MaxDelay: min(o.Backoff.Max, time.Second)},
		MinConnectTimeout: 2 * time.Second,
	})}, o.DialOptions...)...)
	if err != nil {
		return nil, fmt.Errorf("polaris: %w", err)
	}
	c := &Client{cc: cc, Registry: polarispb.NewRegistryClient(cc), Config: polarispb.NewConfigClient(cc),
		Resources: polarispb.NewResourcesClient(cc), opt: o}
	if o.CacheDir != "" {
		c.cache = &diskCache{dir: o.CacheDir, log: o.Log}
		c.cached = newCachedConfig(c.Config, c.cache, o.Log)
	}
	return c, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.cc.Close() }

// Registrar keeps one instance registered: it registers, heartbeats every interval and
// whenever Notify is called (coalesced), and registers again when polaris no longer
// knows the instance (evicted, or polaris restarted without its state) or was unreachable.
type Registrar struct {
	c        *Client
	inst     *polarispb.Instance
	interval time.Duration
	load     func() *polarispb.Load
	log      zerolog.Logger

	kick chan struct{}

	mu         sync.Mutex
	registered bool
	offline    bool
	ready      chan struct{}
	readyOnce  sync.Once
}

// NewRegistrar returns a Registrar for inst; load is called for every heartbeat.
func (c *Client) NewRegistrar(inst *polarispb.Instance, interval time.Duration, load func() *polarispb.Load, log zerolog.Logger) *Registrar {
	if interval <= 0 {
		interval = time.Second
	}
	return &Registrar{
		c: c, inst: proto.Clone(inst).(*polarispb.Instance), interval: interval, load: load,
		log:  log.With().Str("service", inst.GetService()).Str("addr", inst.GetAddr()).Logger(),
		kick: make(chan struct{}, 1), ready: make(chan struct{}),
	}
}

// Registered is closed after the first successful registration.
func (r *Registrar) Registered() <-chan struct{} { return r.ready }

// Notify asks for a heartbeat now; calls made while one is pending are merged.
func (r *Registrar) Notify() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Run registers and heartbeats until ctx ends. It never gives up on an unreachable
// polaris: after a failure it tries again with backoff (from interval/4 up to
// 4×interval), and at once on Notify.
func (r *Registrar) Run(ctx context.Context) error {
	bo := Backoff{Min: r.interval / 4, Max: 4 * r.interval}
	failures := 0
	t := time.NewTimer(0)
	defer t.Stop()
	// Heartbeats asked for by Notify are at least minGap apart: under load, licence changes
	// come thousands of times a second, and one report per gap carries them all.
	minGap := min(r.interval/20, 50*time.Millisecond)
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-r.kick:
			if wait := minGap - time.Since(last); wait > 0 {
				gap := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					gap.Stop()
					return nil
				case <-gap.C:
				}
			}
		}
		last = time.Now()
		next := r.interval
		if r.beat(ctx) {
			failures = 0
		} else {
			next = bo.Delay(failures)
			failures++
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(next)
	}
}

// beat sends one heartbeat (or registration) and reports whether polaris answered.
func (r *Registrar) beat(ctx context.Context) bool {
	r.mu.Lock()
	registered, offline := r.registered, r.offline
	r.mu.Unlock()
	if offline {
		return true
	}
	cctx, cancel := context.WithTimeout(ctx, r.interval)
	defer cancel()
	if registered {
		resp, err := r.c.Registry.Heartbeat(cctx, &polarispb.HeartbeatRequest{Service: r.inst.GetService(), Addr: r.inst.GetAddr(), Load: r.load()})
		if err == nil && resp.GetKnown() {
			return true
		}
		if err != nil {
			if ctx.Err() == nil {
				r.log.Warn().Err(err).Msg("heartbeat failed")
			}
			return false
		}
		r.log.Warn().Msg("polaris no longer knows this instance: registering again")
	}
	if _, err := r.c.Registry.Register(cctx, &polarispb.RegisterRequest{Instance: r.inst, Load: r.load()}); err != nil {
		if ctx.Err() == nil {
			r.log.Warn().Err(err).Msg("register failed")
		}
		r.setRegistered(false)
		return false
	}
	r.setRegistered(true)
	r.readyOnce.Do(func() { close(r.ready) })
	r.log.Info().Msg("registered")
	return true
}

func (r *Registrar) setRegistered(v bool) {
	r.mu.Lock()
	r.registered = v
	r.mu.Unlock()
}

// Offline reports live=0 so routers drop the instance at once, then deregisters it.
// Heartbeats stop for good; Run keeps running until its ctx ends but sends nothing.
func (r *Registrar) Offline(ctx context.Context) error {
	r.mu.Lock()
	r.offline = true
	r.mu.Unlock()
	l := proto.Clone(r.load()).(*polarispb.Load)
	l.Live = 0
	if _, err := r.c.Registry.Heartbeat(ctx, &polarispb.HeartbeatRequest{Service: r.inst.GetService(), Addr: r.inst.GetAddr(), Load: l}); err != nil {
		return fmt.Errorf("report offline: %w", err)
	}
	if _, err := r.c.Registry.Deregister(ctx, &polarispb.DeregisterRequest{Service: r.inst.GetService(), Addr: r.inst.GetAddr()}); err != nil {
		return fmt.Errorf("deregister: %w", err)
	}
	return nil
}
