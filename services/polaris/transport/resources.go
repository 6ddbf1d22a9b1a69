package transport

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/grpcx"
	"github.com/athenaserving/asf/libs/natsbus"
	polarispb "github.com/athenaserving/asf/libs/proto/polaris/v1"
	"github.com/athenaserving/asf/services/polaris/resource"
	"github.com/athenaserving/asf/services/polaris/service"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"
)

// ResourcesServer serves polarispb.Resources through the service layer's endpoints.
type ResourcesServer struct {
	polarispb.UnimplementedResourcesServer
	svc *service.Service
	eps service.Endpoints
}

var _ polarispb.ResourcesServer = (*ResourcesServer)(nil)

// NewResourcesServer returns the gRPC adapter of the resource operations of eps.
func NewResourcesServer(svc *service.Service, eps service.Endpoints) *ResourcesServer {
	return &ResourcesServer{svc: svc, eps: eps}
}

// ResourceMetaToPB converts a meta.
func ResourceMetaToPB(m resource.Meta) *polarispb.ResourceMeta {
	pb := &polarispb.ResourceMeta{Service: m.Service, AppId: m.AppID, ResId: m.ID, Revision: m.Revision, Size: m.Size, Sha256: m.SHA256}
	if !m.Updated.IsZero() {
		pb.UpdatedUnixMs = m.Updated.UnixMilli()
	}
	return pb
}

// ResourceMetaFromPB converts a meta back.
func ResourceMetaFromPB(pb *polarispb.ResourceMeta) resource.Meta {
	m := resource.Meta{Key: resource.Key{Service: pb.GetService(), AppID: pb.GetAppId(), ID: pb.GetResId()},
		Revision: pb.GetRevision(), Size: pb.GetSize(), SHA256: pb.GetSha256()}
	if ms := pb.GetUpdatedUnixMs(); ms != 0 {
		m.Updated = time.UnixMilli(ms).UTC()
	}
	return m
}

// ResourceEventToPB converts an event.
func ResourceEventToPB(ev resource.Event) *polarispb.ResourceEvent {
	t := polarispb.ResourceEvent_TYPE_UPDATED
	if ev.Type == resource.EventRemoved {
		t = polarispb.ResourceEvent_TYPE_REMOVED
	}
	return &polarispb.ResourceEvent{Type: t, Resources: []*polarispb.ResourceMeta{ResourceMetaToPB(ev.Meta)}}
}

// Get returns a resource with its data: 10166 when it does not exist.
func (s *ResourcesServer) Get(ctx context.Context, req *polarispb.GetResourceRequest) (*polarispb.Resource, error) {
	r, err := call[resource.Resource](ctx, s.svc, s.eps, service.ResourceGetRequest{
		Key: resource.Key{Service: req.GetService(), AppID: req.GetAppId(), ID: req.GetResId()}})
	if err != nil {
		return nil, err
	}
	return &polarispb.Resource{Meta: ResourceMetaToPB(r.Meta), Data: r.Data}, nil
}

// Watch sends a SNAPSHOT of the service's resources, then UPDATED/REMOVED events. A
// watcher that falls behind is ended (10222) so that its client reconnects and gets
// a fresh snapshot. Opening it passes the same authorization as Get.
func (s *ResourcesServer) Watch(req *polarispb.WatchResourcesRequest, stream polarispb.Resources_WatchServer) error {
	ctx := stream.Context()
	w, err := call[*service.ResourceWatch](ctx, s.svc, s.eps, service.ResourceWatchRequest{Service: req.GetService()})
	if err != nil {
		return err
	}
	defer w.Close()
	snap := &polarispb.ResourceEvent{Type: polarispb.ResourceEvent_TYPE_SNAPSHOT}
	for _, m := range w.Snapshot {
		snap.Resources = append(snap.Resources, ResourceMetaToPB(m))
	}
	if err := stream.Send(snap); err != nil {
		return err
	}
	for {
		select {
		case ev, ok := <-w.C():
			if !ok {
				if w.Dropped() {
					return grpcx.ToStatus(fmt.Errorf("resource watch of %s fell behind: %w", req.GetService(), aserr.ErrNetwork))
				}
				return grpcx.ToStatus(fmt.Errorf("polaris shutting down: %w", aserr.ErrNetwork))
			}
			if err := stream.Send(ResourceEventToPB(ev)); err != nil {
				return err
			}
		case <-ctx.Done():
			return grpcx.ToStatus(ctx.Err())
		}
	}
}

// ResourceRelay carries resource changes over NATS: Publish sends each change on
// <prefix>.resource.<service>, and the relay's subscription to every service's
// subject delivers them to the service's watchers, so the watchers of every polaris
// replica on one NATS see every change. When a publish fails the change is delivered
// locally only.
type ResourceRelay struct {
	nc     *nats.Conn
	prefix string
	svc    *resource.Service
	log    zerolog.Logger

	mu  sync.Mutex
	sub *nats.Subscription
}

// NewResourceRelay returns a relay of svc's changes on nc.
func NewResourceRelay(nc *nats.Conn, prefix string, svc *resource.Service, log zerolog.Logger) *ResourceRelay {
	return &ResourceRelay{nc: nc, prefix: prefix, svc: svc, log: log}
}

// Start subscribes and makes svc publish through the relay.
func (r *ResourceRelay) Start() error {
	sub, err := r.nc.Subscribe(natsbus.ResourceSubject(r.prefix, "*"), r.receive)
	if err != nil {
		return fmt.Errorf("resource relay subscribe: %w", err)
	}
	// The subscription must be in place at the server before the first publish, or
	// this replica would miss its own change.
	if err := r.nc.Flush(); err != nil {
		r.log.Warn().Err(err).Msg("resource relay flush")
	}
	r.mu.Lock()
	r.sub = sub
	r.mu.Unlock()
	r.svc.SetPublisher(r.publish)
	return nil
}

// Stop makes svc deliver locally again and unsubscribes.
func (r *ResourceRelay) Stop() {
	r.svc.SetPublisher(nil)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sub != nil {
		_ = r.sub.Unsubscribe()
		r.sub = nil
	}
}

func (r *ResourceRelay) publish(ev resource.Event) {
	b, err := proto.Marshal(ResourceEventToPB(ev))
	if err == nil {
		err = r.nc.Publish(natsbus.ResourceSubject(r.prefix, ev.Meta.Service), b)
	}
	if err != nil {
		r.log.Warn().Err(err).Str("resource", ev.Meta.Key.String()).Msg("resource event publish: delivered locally only")
		r.svc.Deliver(ev)
	}
}

func (r *ResourceRelay) receive(m *nats.Msg) {
	var pb polarispb.ResourceEvent
	if err := proto.Unmarshal(m.Data, &pb); err != nil {
		r.log.Warn().Err(err).Str("subject", m.Subject).Msg("resource event: undecodable")
		return
	}
	t := resource.EventUpdated
	switch pb.GetType() {
	case polarispb.ResourceEvent_TYPE_UPDATED:
	case polarispb.ResourceEvent_TYPE_REMOVED:
		t = resource.EventRemoved
	default:
		return
	}
	for _, rm := range pb.GetResources() {
		r.svc.Deliver(resource.Event{Type: t, Meta: ResourceMetaFromPB(rm)})
	}
}
