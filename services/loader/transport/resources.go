package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/athenaserving/asf/libs/grpcx"
	polarispb "github.com/athenaserving/asf/libs/proto/polaris/v1"
	"github.com/athenaserving/asf/services/loader/resource"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
)

// Resources maps the personalisation resources a request's headers name (res_id,
// patch_id) to engine psr ids; release ends their use. *resource.Manager implements it.
type Resources interface {
	Acquire(ctx context.Context, headers map[string]string) ([]uint32, func(), error)
}

// SetResources makes Once and Session resolve header res_id/patch_id through r (before
// the first request). Without it the headers are ignored, as before.
func (g *Server) SetResources(r Resources) { g.res = r }

// psr resolves the resources in's headers name and appends their ids to the psr ids
// the input carries itself.
func (g *Server) psr(ctx context.Context, in interface {
	GetHeaders() map[string]string
	GetPsrIds() []uint32
}) ([]uint32, func(), error) {
	if g.res == nil {
		return in.GetPsrIds(), func() {}, nil
	}
	ids, release, err := g.res.Acquire(ctx, in.GetHeaders())
	if err != nil {
		return nil, nil, err
	}
	if len(ids) == 0 {
		return in.GetPsrIds(), release, nil
	}
	return append(append([]uint32(nil), in.GetPsrIds()...), ids...), release, nil
}

// resourceMaxMsg bounds a fetched resource message: polaris's largest resource bound.
const resourceMaxMsg = 64<<20 + 64<<10

// PolarisResources fetches the resources of one service from polaris's Resources
// service and follows its changes.
type PolarisResources struct {
	client  polarispb.ResourcesClient
	service string
	log     zerolog.Logger
}

var _ resource.Fetcher = (*PolarisResources)(nil)

// NewPolarisResources returns the fetcher and watcher of service's resources through
// client.
func NewPolarisResources(client polarispb.ResourcesClient, service string, log zerolog.Logger) *PolarisResources {
	return &PolarisResources{client: client, service: service, log: log}
}

// Fetch gets appID's resource resID (10166 when polaris has none).
func (p *PolarisResources) Fetch(ctx context.Context, appID, resID string) (resource.Data, error) {
	r, err := p.client.Get(ctx, &polarispb.GetResourceRequest{Service: p.service, AppId: appID, ResId: resID},
		grpc.MaxCallRecvMsgSize(resourceMaxMsg))
	if err != nil {
		return resource.Data{}, grpcx.FromStatus(err)
	}
	return resource.Data{Revision: r.GetMeta().GetRevision(), Bytes: r.GetData()}, nil
}

// Watch follows the service's resource changes into m until ctx ends: each (re)opened
// stream's snapshot reconciles m (Sync), then UPDATED and REMOVED events invalidate
// what m holds. A broken stream is reopened after retry.
func (p *PolarisResources) Watch(ctx context.Context, m *resource.Manager, retry time.Duration) {
	for ctx.Err() == nil {
		err := p.watchOnce(ctx, m)
		if ctx.Err() != nil {
			return
		}
		p.log.Debug().Err(err).Dur("retry", retry).Msg("resource watch ended")
		t := time.NewTimer(retry)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

func (p *PolarisResources) watchOnce(ctx context.Context, m *resource.Manager) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := p.client.Watch(ctx, &polarispb.WatchResourcesRequest{Service: p.service})
	if err != nil {
		return err
	}
	for {
		ev, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("resource watch: stream ended")
		}
		if err != nil {
			return err
		}
		switch ev.GetType() {
		case polarispb.ResourceEvent_TYPE_SNAPSHOT:
			exist := map[string]map[string]int64{}
			for _, r := range ev.GetResources() {
				if exist[r.GetAppId()] == nil {
					exist[r.GetAppId()] = map[string]int64{}
				}
				exist[r.GetAppId()][r.GetResId()] = r.GetRevision()
			}
			m.Sync(exist)
		case polarispb.ResourceEvent_TYPE_UPDATED:
			for _, r := range ev.GetResources() {
				m.Invalidate(r.GetAppId(), r.GetResId(), r.GetRevision())
			}
		case polarispb.ResourceEvent_TYPE_REMOVED:
			for _, r := range ev.GetResources() {
				m.Invalidate(r.GetAppId(), r.GetResId(), 0)
			}
		}
	}
}

// RegisterResourceMetrics registers the gauges and counters of m on reg.
func RegisterResourceMetrics(reg prometheus.Registerer, m *resource.Manager) {
	if reg == nil {
		return
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "asf_loader_resources_loaded", Help: "Personalisation resources loaded in the engine."},
			func() float64 { return float64(m.Stats().Loaded) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "asf_loader_resource_loads_total", Help: "Personalisation resources loaded."},
			func() float64 { return float64(m.Stats().Loads) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "asf_loader_resource_load_errors_total", Help: "Personalisation resource fetches or loads that failed."},
			func() float64 { return float64(m.Stats().LoadErrors) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "asf_loader_resource_evictions_total", Help: "Idle personalisation resources unloaded to stay within the bound."},
			func() float64 { return float64(m.Stats().Evictions) }),
	)
}
