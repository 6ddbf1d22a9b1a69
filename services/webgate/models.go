package webgate

import (
	"context"
	"fmt"
	"time"

	polarispb "github.com/athenaserving/asf/libs/proto/polaris/v1"
	"github.com/athenaserving/asf/services/webgate/transport/oip"
)

// loaders lists the loaders polaris has registered for capability (the loader service is
// taken to be the capability id), for OIP model metadata and readiness: each one's engine
// version and whether it is live — reporting live (not going offline) and not disabled by
// an operator, as lbclient puts loaders in rotation. Without polaris it is not used.
func (s *Server) loaders(ctx context.Context, capability string) ([]oip.Loader, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, err := s.polaris.Registry.List(ctx, &polarispb.ListRequest{Service: capability})
	if err != nil {
		return nil, fmt.Errorf("polaris: list %s: %w", capability, err)
	}
	var out []oip.Loader
	for _, st := range resp.GetInstances() {
		in := st.GetInstance()
		if in.GetKind() == "consumer" {
			continue
		}
		live := st.GetLoad().GetLive() != 0 && (st.GetAdmin() == nil || st.GetAdmin().GetEnabled())
		out = append(out, oip.Loader{Version: in.GetVersion(), Live: live})
	}
	return out, nil
}

// loadersFunc is loaders with polaris, nil without (webgate then has no registry).
func (s *Server) loadersFunc() func(context.Context, string) ([]oip.Loader, error) {
	if s.polaris == nil {
		return nil
	}
	return s.loaders
}
