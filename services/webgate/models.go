package webgate

import (
	"context"
	"fmt"
	"time"

	polarispb "github.com/athenaserving/asf/libs/proto/polaris/v1"
	"github.com/athenaserving/asf/libs/tracing"
	"github.com/athenaserving/asf/services/webgate/transport/oip"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/metadata"
)

// loaders lists the loaders polaris has registered for capability (the loader service is
// taken to be the capability id), for OIP model metadata and readiness: each one's engine
// version and whether it is live — reporting live (not going offline) and not disabled by
// an operator, as lbclient puts loaders in rotation. Without polaris it is not used.
//
// A sampled request's lookup is a client span "polaris list" whose trace context goes to
// polaris in the call's metadata, so polaris's server span joins the request's trace. The
// polaris connection carries no tracing interceptor: its watches and heartbeats are no
// request's work.
func (s *Server) loaders(ctx context.Context, capability string) (_ []oip.Loader, err error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if trace.SpanFromContext(ctx).IsRecording() {
		var span trace.Span
		ctx, span = s.tp.Tracer("webgate").Start(ctx, "polaris list", trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(attribute.String("asf.capability", capability)))
		defer func() {
			if err != nil {
				span.SetStatus(codes.Error, err.Error())
			}
			span.End()
		}()
		for k, v := range tracing.Inject(ctx) {
			ctx = metadata.AppendToOutgoingContext(ctx, k, v)
		}
	}
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
