package adminapi

import (
	"context"
	"net/http"

	"github.com/athenaserving/asf/services/polaris/registry"
	"github.com/athenaserving/asf/services/polaris/service"
)

func (a *API) services(ctx context.Context, _ *http.Request) (any, error) {
	ss, err := service.Do[[]service.ServiceSummary](ctx, a.o.Endpoints, service.ServicesRequest{})
	if err != nil {
		return nil, err
	}
	return map[string]any{"services": ss}, nil
}

func (a *API) instances(ctx context.Context, r *http.Request) (any, error) {
	sts, err := service.Do[[]registry.State](ctx, a.o.Endpoints, service.InstancesRequest{Service: r.PathValue("service"), Kind: r.URL.Query().Get("kind")})
	if err != nil {
		return nil, err
	}
	return map[string]any{"service": r.PathValue("service"), "instances": sts}, nil
}

// AdminRequest is the body of a SetAdmin call; a missing field keeps its value.
type AdminRequest struct {
	Enabled *bool  `json:"enabled"`
	Weight  *int32 `json:"weight"`
}

func (a *API) setAdmin(ctx context.Context, r *http.Request) (any, error) {
	var req AdminRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	k := registry.Key{Service: r.PathValue("service"), Addr: r.PathValue("addr")}
	adm, err := service.Do[registry.Admin](ctx, a.o.Endpoints, service.SetAdminRequest{Key: k, Enabled: req.Enabled, Weight: req.Weight})
	if err != nil {
		return nil, err
	}
	return map[string]any{"key": k, "admin": adm}, nil
}

func (a *API) consumers(ctx context.Context, _ *http.Request) (any, error) {
	cs, err := service.Do[[]registry.State](ctx, a.o.Endpoints, service.ConsumersRequest{})
	if err != nil {
		return nil, err
	}
	return map[string]any{"consumers": cs}, nil
}
