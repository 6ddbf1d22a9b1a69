package transport

import (
	"context"

	"github.com/athenaserving/asf/libs/grpcx"
	polarispb "github.com/athenaserving/asf/libs/proto/polaris/v1"
	"github.com/athenaserving/asf/services/polaris/config"
	"github.com/athenaserving/asf/services/polaris/service"
)

// ConfigServer serves polarispb.Config through the service layer's endpoints.
type ConfigServer struct {
	polarispb.UnimplementedConfigServer
	svc *service.Service
	eps service.Endpoints
}

var _ polarispb.ConfigServer = (*ConfigServer)(nil)

// NewConfigServer returns the gRPC adapter of the config operations of eps.
func NewConfigServer(svc *service.Service, eps service.Endpoints) *ConfigServer {
	return &ConfigServer{svc: svc, eps: eps}
}

// Get returns the revision of a file the caller gets.
func (s *ConfigServer) Get(ctx context.Context, req *polarispb.GetConfigRequest) (*polarispb.ConfigFile, error) {
	f, err := call[config.File](ctx, s.svc, s.eps, service.GetConfigRequest{Key: keyFromPB(req.GetKey()), Caller: callerFromPB(req.GetCaller())})
	if err != nil {
		return nil, err
	}
	return FileToPB(f), nil
}

// Watch sends a SNAPSHOT of the matching files, then UPDATED/REMOVED events. Opening it
// passes the same authorization as Get.
func (s *ConfigServer) Watch(req *polarispb.WatchConfigRequest, stream polarispb.Config_WatchServer) error {
	ctx := stream.Context()
	w, err := call[*service.ConfigWatch](ctx, s.svc, s.eps, service.WatchConfigRequest{
		Key: keyFromPB(req.GetKey()), Prefix: req.GetPrefix(), Caller: callerFromPB(req.GetCaller())})
	if err != nil {
		return err
	}
	defer w.Close()
	for {
		select {
		case ev, ok := <-w.C():
			if !ok {
				return grpcx.ToStatus(w.Err())
			}
			if w.Redact {
				for i := range ev.Files {
					ev.Files[i] = service.RedactFile(ev.Files[i])
				}
			}
			if err := stream.Send(ConfigEventToPB(ev)); err != nil {
				return err
			}
		case <-ctx.Done():
			return grpcx.ToStatus(ctx.Err())
		}
	}
}

// Push stores a new revision (admin token).
func (s *ConfigServer) Push(ctx context.Context, req *polarispb.PushConfigRequest) (*polarispb.ConfigFile, error) {
	f, err := call[config.File](ctx, s.svc, s.eps, service.PushRequest{
		Key: keyFromPB(req.GetKey()), Content: req.GetContent(), Comment: req.GetComment(), GrayGroup: req.GetGrayGroup()})
	if err != nil {
		return nil, err
	}
	return FileToPB(f), nil
}

// History returns every kept revision of a file.
func (s *ConfigServer) History(ctx context.Context, req *polarispb.HistoryRequest) (*polarispb.HistoryResponse, error) {
	h, err := call[service.HistoryResponse](ctx, s.svc, s.eps, service.HistoryRequest{Key: keyFromPB(req.GetKey())})
	if err != nil {
		return nil, err
	}
	out := &polarispb.HistoryResponse{Revisions: make([]*polarispb.ConfigFile, 0, len(h.Revisions))}
	for _, f := range h.Revisions {
		out.Revisions = append(out.Revisions, FileToPB(f))
	}
	return out, nil
}

// Rollback pushes an older revision's content as a new revision (admin token).
func (s *ConfigServer) Rollback(ctx context.Context, req *polarispb.RollbackRequest) (*polarispb.ConfigFile, error) {
	f, err := call[config.File](ctx, s.svc, s.eps, service.RollbackRequest{Key: keyFromPB(req.GetKey()), Revision: req.GetRevision()})
	if err != nil {
		return nil, err
	}
	return FileToPB(f), nil
}

// Delete removes a file and its history (admin token).
func (s *ConfigServer) Delete(ctx context.Context, req *polarispb.DeleteConfigRequest) (*polarispb.DeleteConfigResponse, error) {
	if _, err := call[struct{}](ctx, s.svc, s.eps, service.DeleteRequest{Key: keyFromPB(req.GetKey())}); err != nil {
		return nil, err
	}
	return &polarispb.DeleteConfigResponse{}, nil
}

// ReportApplied records an instance's apply report.
func (s *ConfigServer) ReportApplied(ctx context.Context, req *polarispb.ReportAppliedRequest) (*polarispb.ReportAppliedResponse, error) {
	_, err := call[struct{}](ctx, s.svc, s.eps, service.ReportAppliedRequest{Key: keyFromPB(req.GetKey()), Revision: req.GetRevision(),
		Caller: callerFromPB(req.GetCaller()), Applied: req.GetApplied(), Reason: req.GetReason()})
	if err != nil {
		return nil, err
	}
	return &polarispb.ReportAppliedResponse{}, nil
}
