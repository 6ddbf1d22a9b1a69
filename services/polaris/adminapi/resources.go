package adminapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/services/polaris/adminapi/auth"
	"github.com/athenaserving/asf/services/polaris/resource"
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

func (a *API) resourceRoutes(route func(pattern string, write bool, h handler)) {
	const one = "/api/v1/resources/{service}/{app_id}/{res_id}"
	route("GET /api/v1/resources/{service}", false, a.listResources)
	route("GET /api/v1/resources/{service}/{app_id}", false, a.listResources)
	route("PUT "+one, true, a.putResource)
	route("GET "+one, false, a.getResource)
	route("DELETE "+one, true, a.deleteResource)
}

// resourceBodyLimit is the body bound of a resource upload: one byte over the size
// bound, so that an oversized upload is told 10413 with the bound.
func (a *API) resourceBodyLimit(r *http.Request) (int64, bool) {
	if a.o.Resources == nil || r.Method != http.MethodPut || len(r.URL.Path) <= len(resourcePrefix) || r.URL.Path[:len(resourcePrefix)] != resourcePrefix {
		return 0, false
	}
	return a.o.Resources.MaxSize() + 1, true
}

func (a *API) resources() (*resource.Service, error) {
	if a.o.Resources == nil {
		return nil, fmt.Errorf("personalisation resources are not served here: %w", aserr.ErrNotFound)
	}
	return a.o.Resources, nil
}

func resourceKey(r *http.Request) resource.Key {
	return resource.Key{Service: r.PathValue("service"), AppID: r.PathValue("app_id"), ID: r.PathValue("res_id")}
}

func (a *API) listResources(ctx context.Context, _ auth.Token, r *http.Request) (any, error) {
	svc, err := a.resources()
	if err != nil {
		return nil, err
	}
	app := r.PathValue("app_id")
	if app == "" {
		app = r.URL.Query().Get("app_id")
	}
	ms, err := svc.List(ctx, r.PathValue("service"), app)
	if err != nil {
		return nil, err
	}
	return map[string]any{"resources": ms, "max_bytes": svc.MaxSize()}, nil
}

func (a *API) putResource(ctx context.Context, _ auth.Token, r *http.Request) (any, error) {
	svc, err := a.resources()
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, fmt.Errorf("resource over %d bytes: %w", svc.MaxSize(), resource.ErrTooLarge)
		}
		return nil, fmt.Errorf("read body: %w", aserr.ErrBadRequest)
	}
	return svc.Put(ctx, resourceKey(r), data)
}

func (a *API) getResource(ctx context.Context, _ auth.Token, r *http.Request) (any, error) {
	svc, err := a.resources()
	if err != nil {
		return nil, err
	}
	res, err := svc.Get(ctx, resourceKey(r))
	if err != nil {
		return nil, err
	}
	return ResourceView{Meta: res.Meta, Data: res.Data}, nil
}

func (a *API) deleteResource(ctx context.Context, _ auth.Token, r *http.Request) (any, error) {
	svc, err := a.resources()
	if err != nil {
		return nil, err
	}
	k := resourceKey(r)
	if err := svc.Delete(ctx, k); err != nil {
		return nil, err
	}
	return map[string]any{"deleted": k}, nil
}
