package transport

import (
	"context"
	"time"

	"github.com/athenaserving/asf/libs/grpcx"
	polarispb "github.com/athenaserving/asf/libs/proto/polaris/v1"
	"github.com/athenaserving/asf/services/polaris/registry"
	"github.com/athenaserving/asf/services/polaris/service"
)

// DefaultWatchBuffer is how many events a Watch stream may fall behind before it is
// dropped with Unavailable (the client then watches again and gets a fresh snapshot).
const DefaultWatchBuffer = service.DefaultWatchBuffer

// RegistryServer serves polarispb.Registry through the service layer's endpoints.
type RegistryServer struct {
	polarispb.UnimplementedRegistryServer
	svc *service.Service
	eps service.Endpoints
}

var _ polarispb.RegistryServer = (*RegistryServer)(nil)

// NewRegistryServer returns the gRPC adapter of the registry operations of eps; svc
// authenticates the callers' tokens.
func NewRegistryServer(svc *service.Service, eps service.Endpoints) *RegistryServer {
	return &RegistryServer{svc: svc, eps: eps}
}

func call[T any](ctx context.Context, svc *service.Service, eps service.Endpoints, req service.Request) (T, error) {
	v, err := service.Do[T](withCaller(ctx, svc), eps, req)
	if err != nil {
		return v, grpcx.ToStatus(err)
	}
	return v, nil
}

// Register registers an instance.
func (s *RegistryServer) Register(ctx context.Context, req *polarispb.RegisterRequest) (*polarispb.RegisterResponse, error) {
	ttl, err := call[time.Duration](ctx, s.svc, s.eps, service.RegisterRequest{
		Instance: instanceFromPB(req.GetInstance()), Load: loadFromPB(req.GetLoad()), TTL: msToDuration(req.GetTtlMs())})
	if err != nil {
		return nil, err
	}
	return &polarispb.RegisterResponse{TtlMs: ttl.Milliseconds()}, nil
}

// Heartbeat records a load report; known=false tells the caller to register again.
func (s *RegistryServer) Heartbeat(ctx context.Context, req *polarispb.HeartbeatRequest) (*polarispb.HeartbeatResponse, error) {
	r, err := call[service.HeartbeatResponse](ctx, s.svc, s.eps, service.HeartbeatRequest{
		Key: registry.Key{Service: req.GetService(), Addr: req.GetAddr()}, Load: loadFromPB(req.GetLoad())})
	if err != nil {
		return nil, err
	}
	return &polarispb.HeartbeatResponse{Known: r.Known}, nil
}

// Deregister removes an instance; removing an unknown one is not an error.
func (s *RegistryServer) Deregister(ctx context.Context, req *polarispb.DeregisterRequest) (*polarispb.DeregisterResponse, error) {
	if _, err := call[struct{}](ctx, s.svc, s.eps, service.DeregisterRequest{Key: registry.Key{Service: req.GetService(), Addr: req.GetAddr()}}); err != nil {
		return nil, err
	}
	return &polarispb.DeregisterResponse{}, nil
}

// List returns the instances of a service, or of every service.
func (s *RegistryServer) List(ctx context.Context, req *polarispb.ListRequest) (*polarispb.ListResponse, error) {
	states, err := call[[]registry.State](ctx, s.svc, s.eps, service.ListRequest{Service: req.GetService()})
	if err != nil {
		return nil, err
	}
	out := &polarispb.ListResponse{Instances: make([]*polarispb.InstanceState, 0, len(states))}
	for _, st := range states {
		out.Instances = append(out.Instances, StateToPB(st))
	}
	return out, nil
}

// Watch sends a SNAPSHOT, then every event, until the client goes away, falls behind or
// the server shuts down. Opening it passes the same authorization as every operation.
func (s *RegistryServer) Watch(req *polarispb.WatchRequest, stream polarispb.Registry_WatchServer) error {
	ctx := stream.Context()
	sub, err := call[*registry.Subscription](ctx, s.svc, s.eps, service.WatchRequest{Service: req.GetService()})
	if err != nil {
		return err
	}
	defer sub.Close()
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

// SetAdmin sets the operator state of an instance: the message carries the whole state
// (enabled and weight), validated as the admin API validates it.
func (s *RegistryServer) SetAdmin(ctx context.Context, req *polarispb.SetAdminRequest) (*polarispb.SetAdminResponse, error) {
	r := service.SetAdminRequest{Key: registry.Key{Service: req.GetService(), Addr: req.GetAddr()}}
	if a := req.GetAdmin(); a != nil {
		en, w := a.GetEnabled(), a.GetWeight()
		r.Enabled, r.Weight = &en, &w
	}
	if _, err := call[registry.Admin](ctx, s.svc, s.eps, r); err != nil {
		return nil, err
	}
	return &polarispb.SetAdminResponse{}, nil
}

// Info tells where the event bus is.
func (s *RegistryServer) Info(ctx context.Context, _ *polarispb.InfoRequest) (*polarispb.InfoResponse, error) {
	r, err := call[service.InfoResponse](ctx, s.svc, s.eps, service.InfoRequest{})
	if err != nil {
		return nil, err
	}
	return &polarispb.InfoResponse{NatsUrl: r.NATSURL, SubjectPrefix: r.Prefix, DefaultTtlMs: r.DefaultTTL.Milliseconds()}, nil
}
