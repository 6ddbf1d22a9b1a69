package adminapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/services/polaris/resource"
	"github.com/athenaserving/asf/services/polaris/service"
)

// resourcePrefix is the path of the personalisation resource routes:
//
//	GET    /api/v1/resources/{service}[?app_id=]           metas of a service's resources
//	GET    /api/v1/resources/{service}/{app_id}            metas of one app's resources
//	PUT    /api/v1/resources/{service}/{app_id}/{res_id}   upload (body: the raw data)
//	GET    /api/v1/resources/{service}/{app_id}/{res_id}   meta and data (base64)
//	DELETE /api/v1/resources/{service}/{app_id}/{res_id}   delete
const resourcePrefix = "/api/v1/resources/"

// ResourceView is a resource as GET returns it.
type ResourceView struct {
	resource.Meta
	Data []byte `json:"data"`
}

func (a *API) resourceRoutes(route func(pattern string, op service.Op, h handler)) {
	const one = "/api/v1/resources/{service}/{app_id}/{res_id}"
	route("GET /api/v1/resources/{service}", service.OpResList, a.listResources)
	route("GET /api/v1/resources/{service}/{app_id}", service.OpResList, a.listResources)
	route("PUT "+one, service.OpResPut, a.putResource)
	route("GET "+one, service.OpResGet, a.getResource)
	route("DELETE "+one, service.OpResDelete, a.deleteResource)
}

// resourceBodyLimit is the body bound of a resource upload: one byte over the size
// bound, so that an oversized upload is told 10413 with the bound.
func (a *API) resourceBodyLimit(r *http.Request) (int64, bool) {
	if a.o.ResourceMax <= 0 || r.Method != http.MethodPut || len(r.URL.Path) <= len(resourcePrefix) || r.URL.Path[:len(resourcePrefix)] != resourcePrefix {
		return 0, false
	}
	return a.o.ResourceMax + 1, true
}

func resourceKey(r *http.Request) resource.Key {
	return resource.Key{Service: r.PathValue("service"), AppID: r.PathValue("app_id"), ID: r.PathValue("res_id")}
}

func (a *API) listResources(ctx context.Context, r *http.Request) (any, error) {
	app := r.PathValue("app_id")
	if app == "" {
		app = r.URL.Query().Get("app_id")
	}
	l, err := service.Do[service.ResourceList](ctx, a.o.Endpoints, service.ResourceListRequest{Service: r.PathValue("service"), AppID: app})
	if err != nil {
		return nil, err
	}
	return map[string]any{"resources": l.Resources, "max_bytes": l.MaxBytes}, nil
}

func (a *API) putResource(ctx context.Context, r *http.Request) (any, error) {
	req := service.ResourcePutRequest{Key: resourceKey(r)}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if !errors.As(err, &mbe) {
			return nil, fmt.Errorf("read body: %w", aserr.ErrBadRequest)
		}
		req.TooLarge = true
	}
	req.Data = data
	return service.Do[resource.Meta](ctx, a.o.Endpoints, req)
}

func (a *API) getResource(ctx context.Context, r *http.Request) (any, error) {
	res, err := service.Do[resource.Resource](ctx, a.o.Endpoints, service.ResourceGetRequest{Key: resourceKey(r)})
	if err != nil {
		return nil, err
	}
	return ResourceView{Meta: res.Meta, Data: res.Data}, nil
}

func (a *API) deleteResource(ctx context.Context, r *http.Request) (any, error) {
	k := resourceKey(r)
	if _, err := service.Do[struct{}](ctx, a.o.Endpoints, service.ResourceDeleteRequest{Key: k}); err != nil {
		return nil, err
	}
	return map[string]any{"deleted": k}, nil
}
