package transport

import (
	"context"

	"github.com/athenaserving/asf/libs/grpcx"
	polarispb "github.com/athenaserving/asf/libs/proto/polaris/v1"
	"github.com/athenaserving/asf/services/polaris/config"
)

// ConfigServer serves polarispb.Config over the config center.
type ConfigServer struct {
	polarispb.UnimplementedConfigServer
	center *config.Center
	buf    int
}

var _ polarispb.ConfigServer = (*ConfigServer)(nil)

// NewConfigServer returns the gRPC adapter of center; watchBuf ≤ 0 takes DefaultWatchBuffer.
func NewConfigServer(center *config.Center, watchBuf int) *ConfigServer {
	if watchBuf <= 0 {
		watchBuf = DefaultWatchBuffer
	}
	return &ConfigServer{center: center, buf: watchBuf}
}

// Get returns the revision of a file the caller gets.
func (s *ConfigServer) Get(ctx context.Context, req *polarispb.GetConfigRequest) (*polarispb.ConfigFile, error) {
	f, err := s.center.Get(ctx, keyFromPB(req.GetKey()), callerFromPB(req.GetCaller()))
	if err != nil {
		return nil, grpcx.ToStatus(err)
	}
	return FileToPB(f), nil
}

// Watch sends a SNAPSHOT of the matching files, then UPDATED/REMOVED events.
func (s *ConfigServer) Watch(req *polarispb.WatchConfigRequest, stream polarispb.Config_WatchServer) error {
	ctx := stream.Context()
	w, err := s.center.Watch(ctx, keyFromPB(req.GetKey()), req.GetPrefix(), callerFromPB(req.GetCaller()), s.buf)
	if err != nil {
		return grpcx.ToStatus(err)
	}
	defer w.Close()
	for {
		select {
		case ev, ok := <-w.C():
			if !ok {
				return grpcx.ToStatus(w.Err())
			}
			if err := stream.Send(ConfigEventToPB(ev)); err != nil {
				return err
			}
		case <-ctx.Done():
			return grpcx.ToStatus(ctx.Err())
		}
	}
}

// Push stores a new revision.
func (s *ConfigServer) Push(ctx context.Context, req *polarispb.PushConfigRequest) (*polarispb.ConfigFile, error) {
	f, err := s.center.Push(ctx, keyFromPB(req.GetKey()), req.GetContent(), req.GetComment(), req.GetGrayGroup())
	if err != nil {
		return nil, grpcx.ToStatus(err)
	}
	return FileToPB(f), nil
}

// History returns every revision of a file.
func (s *ConfigServer) History(ctx context.Context, req *polarispb.HistoryRequest) (*polarispb.HistoryResponse, error) {
	revs, err := s.center.History(ctx, keyFromPB(req.GetKey()))
	if err != nil {
		return nil, grpcx.ToStatus(err)
	}
	out := &polarispb.HistoryResponse{Revisions: make([]*polarispb.ConfigFile, 0, len(revs))}
	for _, f := range revs {
		out.Revisions = append(out.Revisions, FileToPB(f))
	}
	return out, nil
}

// Rollback pushes an older revision's content as a new revision.
func (s *ConfigServer) Rollback(ctx context.Context, req *polarispb.RollbackRequest) (*polarispb.ConfigFile, error) {
	f, err := s.center.Rollback(ctx, keyFromPB(req.GetKey()), req.GetRevision())
	if err != nil {
		return nil, grpcx.ToStatus(err)
	}
	return FileToPB(f), nil
}

// Delete removes a file and its history.
func (s *ConfigServer) Delete(ctx context.Context, req *polarispb.DeleteConfigRequest) (*polarispb.DeleteConfigResponse, error) {
	if err := s.center.Delete(ctx, keyFromPB(req.GetKey())); err != nil {
		return nil, grpcx.ToStatus(err)
	}
	return &polarispb.DeleteConfigResponse{}, nil
}

// ReportApplied records an instance's apply report.
func (s *ConfigServer) ReportApplied(ctx context.Context, req *polarispb.ReportAppliedRequest) (*polarispb.ReportAppliedResponse, error) {
	err := s.center.ReportApplied(ctx, keyFromPB(req.GetKey()), req.GetRevision(), callerFromPB(req.GetCaller()), req.GetApplied(), req.GetReason())
	if err != nil {
		return nil, grpcx.ToStatus(err)
	}
	return &polarispb.ReportAppliedResponse{}, nil
}
