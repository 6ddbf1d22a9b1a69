package adminapi

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/services/polaris/adminapi/auth"
	"github.com/athenaserving/asf/services/polaris/service"
)

func (a *API) whoami(ctx context.Context, _ *http.Request) (any, error) {
	t, err := service.Do[auth.Token](ctx, a.o.Endpoints, service.WhoamiRequest{})
	if err != nil {
		return nil, err
	}
	return map[string]any{"id": t.ID, "name": t.Name, "role": t.Role}, nil
}

// TokenView is a token as the API shows it (never its hash).
type TokenView struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Role    auth.Role `json:"role"`
	Created time.Time `json:"created"`
	// Token is the secret, present only in the answer to its creation.
	Token string `json:"token,omitempty"`
}

func viewOf(t auth.Token) TokenView {
	return TokenView{ID: t.ID, Name: t.Name, Role: t.Role, Created: t.Created}
}

func (a *API) listTokens(ctx context.Context, _ *http.Request) (any, error) {
	ts, err := service.Do[[]auth.Token](ctx, a.o.Endpoints, service.TokensRequest{})
	if err != nil {
		return nil, err
	}
	out := []TokenView{}
	for _, t := range ts {
		out = append(out, viewOf(t))
	}
	return map[string]any{"tokens": out}, nil
}

func (a *API) createToken(ctx context.Context, r *http.Request) (any, error) {
	var req struct {
		Name string    `json:"name"`
		Role auth.Role `json:"role"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	c, err := service.Do[service.TokenCreated](ctx, a.o.Endpoints, service.TokenCreateRequest{Name: req.Name, Role: req.Role})
	if err != nil {
		return nil, err
	}
	v := viewOf(c.Token)
	v.Token = c.Secret
	return v, nil
}

func (a *API) revokeToken(ctx context.Context, r *http.Request) (any, error) {
	id := r.PathValue("id")
	if _, err := service.Do[struct{}](ctx, a.o.Endpoints, service.TokenRevokeRequest{ID: id}); err != nil {
		return nil, err
	}
	return map[string]any{"revoked": id}, nil
}

func (a *API) loginLink(ctx context.Context, _ *http.Request) (any, error) {
	tok, err := service.Do[auth.Token](ctx, a.o.Endpoints, service.WhoamiRequest{})
	if err != nil {
		return nil, err
	}
	if a.o.LoginLink == nil {
		return nil, fmt.Errorf("console not mounted: %w", aserr.ErrNotFound)
	}
	u, err := a.o.LoginLink(tok)
	if err != nil {
		return nil, err
	}
	return map[string]any{"url": u}, nil
}
