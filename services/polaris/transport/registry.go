package transport

import (
	"context"

	"github.com/athenaserving/asf/libs/grpcx"
	polarispb "github.com/athenaserving/asf/libs/proto/polaris/v1"
	"github.com/athenaserving/asf/services/polaris/registry"
)

// DefaultWatchBuffer is how many events a Watch stream may fall behind before it is
// dropped with Unavailable (the client then watches again and gets a fresh snapshot).
const DefaultWatchBuffer = 1024

// RegistryServer serves polarispb.Registry over the registry.
type RegistryServer struct {
	polarispb.UnimplementedRegistryServer
	reg     *registry.Registry
	natsURL func() string
	prefix  string
	buf     int
}

var _ polarispb.RegistryServer = (*RegistryServer)(nil)

// NewRegistryServer returns the gRPC adapter of reg. natsURL reports the event bus URL
// (known once the server started); prefix is the NATS subject prefix; watchBuf ≤ 0
// takes DefaultWatchBuffer.
func NewRegistryServer(reg *registry.Registry, natsURL func() string, prefix string, watchBuf int) *RegistryServer {
	if watchBuf <= 0 {
		watchBuf = DefaultWatchBuffer
	}
	return &RegistryServer{reg: reg, natsURL: natsURL, prefix: prefix, buf: watchBuf}
}

// Register registers an instance.
func (s *RegistryServer) Register(ctx context.Context, req *polarispb.RegisterRequest) (*polarispb.RegisterResponse, error) {
	ttl, err := s.reg.Register(ctx, instanceFromPB(req.GetInstance()), loadFromPB(req.GetLoad()), msToDuration(req.GetTtlMs()))
	if err != nil {
		return nil, grpcx.ToStatus(err)
	}
	return &polarispb.RegisterResponse{TtlMs: ttl.Milliseconds()}, nil
}

// Heartbeat records a load report; known=false tells the caller to register again.
func (s *RegistryServer) Heartbeat(ctx context.Context, req *polarispb.HeartbeatRequest) (*polarispb.HeartbeatResponse, error) {
	known, err := s.reg.Heartbeat(ctx, registry.Key{Service: req.GetService(), Addr: req.GetAddr()}, loadFromPB(req.GetLoad()))
	if err != nil {
		return nil, grpcx.ToStatus(err)
	}
	return &polarispb.HeartbeatResponse{Known: known}, nil
}

// Deregister removes an instance; removing an unknown one is not an error.
func (s *RegistryServer) Deregister(ctx context.Context, req *polarispb.DeregisterRequest) (*polarispb.DeregisterResponse, error) {
	if _, err := s.reg.Deregister(ctx, registry.Key{Service: req.GetService(), Addr: req.GetAddr()}); err != nil {
		return nil, grpcx.ToStatus(err)
	}
	return &polarispb.DeregisterResponse{}, nil
}

// List returns the instances of a service, or of every service.
func (s *RegistryServer) List(_ context.Context, req *polarispb.ListRequest) (*polarispb.ListResponse, error) {
	states := s.reg.List(req.GetService())
	out := &polarispb.ListResponse{Instances: make([]*polarispb.InstanceState, 0, len(states))}
	for _, st := range states {
		out.Instances = append(out.Instances, StateToPB(st))
	}
	return out, nil
}

// Watch sends a SNAPSHOT, then every event, until the client goes away, falls behind or
// the server shuts down.
func (s *RegistryServer) Watch(req *polarispb.WatchRequest, stream polarispb.Registry_WatchServer) error {
	sub, err := s.reg.Subscribe(req.GetService(), s.buf)
	if err != nil {
		return grpcx.ToStatus(err)
	}
	defer sub.Close()
	ctx := stream.Context()
	for {
		select {
		case ev, ok := <-sub.C():
			if !ok {
				return grpcx.ToStatus(sub.Err())
			}
			if err := stream.Send(EventToPB(ev)); err != nil {
				return err
			}
		case <-ctx.Done():
			return grpcx.ToStatus(ctx.Err())
		}
	}
}

// SetAdmin sets the operator state of an instance.
func (s *RegistryServer) SetAdmin(ctx context.Context, req *polarispb.SetAdminRequest) (*polarispb.SetAdminResponse, error) {
	a := registry.Admin{Enabled: req.GetAdmin().GetEnabled(), Weight: req.GetAdmin().GetWeight()}
	if err := s.reg.SetAdmin(ctx, registry.Key{Service: req.GetService(), Addr: req.GetAddr()}, a); err != nil {
		return nil, grpcx.ToStatus(err)
	}
	return &polarispb.SetAdminResponse{}, nil
}

// Info tells where the event bus is.
func (s *RegistryServer) Info(context.Context, *polarispb.InfoRequest) (*polarispb.InfoResponse, error) {
	return &polarispb.InfoResponse{NatsUrl: s.natsURL(), SubjectPrefix: s.prefix, DefaultTtlMs: s.reg.TTL().Milliseconds()}, nil
}
