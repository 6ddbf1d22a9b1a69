// Package polarisclient is the SDK services use to talk to polaris: keep an instance
// registered with heartbeats, and read the registry.
//
//	c, _ := polarisclient.Dial("127.0.0.1:6868")
//	defer c.Close()
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
	"google.golang.org/protobuf/proto"
)

// Client holds one connection to polaris and its registry and config clients.
type Client struct {
	cc       *grpc.ClientConn
	Registry polarispb.RegistryClient
	Config   polarispb.ConfigClient
}

// Dial connects to polaris at addr. The connection is lazy: Dial does not fail when
// polaris is down, calls do until it is back.
func Dial(addr string) (*Client, error) {
	cc, err := grpcx.Dial(addr)
	if err != nil {
		return nil, fmt.Errorf("polaris: %w", err)
	}
	return &Client{cc: cc, Registry: polarispb.NewRegistryClient(cc), Config: polarispb.NewConfigClient(cc)}, nil
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
		log: log.With().Str("service", inst.GetService()).Str("addr", inst.GetAddr()).Logger(),
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
// polaris: it logs and tries again at the next tick.
func (r *Registrar) Run(ctx context.Context) error {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	r.beat(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-r.kick:
		}
		r.beat(ctx)
	}
}

func (r *Registrar) beat(ctx context.Context) {
	r.mu.Lock()
	registered, offline := r.registered, r.offline
	r.mu.Unlock()
	if offline {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, r.interval)
	defer cancel()
	if registered {
		resp, err := r.c.Registry.Heartbeat(cctx, &polarispb.HeartbeatRequest{Service: r.inst.GetService(), Addr: r.inst.GetAddr(), Load: r.load()})
		if err == nil && resp.GetKnown() {
			return
		}
		if err != nil {
			if ctx.Err() == nil {
				r.log.Warn().Err(err).Msg("heartbeat failed")
			}
			return
		}
		r.log.Warn().Msg("polaris no longer knows this instance: registering again")
	}
	if _, err := r.c.Registry.Register(cctx, &polarispb.RegisterRequest{Instance: r.inst, Load: r.load()}); err != nil {
		if ctx.Err() == nil {
			r.log.Warn().Err(err).Msg("register failed")
		}
		r.setRegistered(false)
		return
	}
	r.setRegistered(true)
	r.readyOnce.Do(func() { close(r.ready) })
	r.log.Info().Msg("registered")
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
