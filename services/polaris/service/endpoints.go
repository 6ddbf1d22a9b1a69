package service

import (
	"context"
	"fmt"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/services/polaris/adminapi/auth"
	"github.com/athenaserving/asf/services/polaris/config"
	"github.com/athenaserving/asf/services/polaris/registry"
	"github.com/athenaserving/asf/services/polaris/resource"
	"github.com/go-kit/kit/endpoint"
)

// Requests and responses of every operation. A request names its operation (Op) and,
// for the authorization rules, the service it reads (scope) or the instance address it
// acts for (selfAddr).

// RegisterRequest registers an instance (OpRegister).
type RegisterRequest struct {
	Instance registry.Instance
	Load     registry.Load
	TTL      time.Duration
}

// HeartbeatRequest reports an instance's load (OpHeartbeat); the answer is
// HeartbeatResponse.
type HeartbeatRequest struct {
	Key  registry.Key
	Load registry.Load
}

// HeartbeatResponse tells whether polaris knows the instance (false: register again).
type HeartbeatResponse struct{ Known bool }

// DeregisterRequest removes an instance (OpDeregister).
type DeregisterRequest struct{ Key registry.Key }

// ListRequest lists the instances of Service, or of every service (OpList): []registry.State.
type ListRequest struct{ Service string }

// WatchRequest opens a registry watch (OpWatch): *registry.Subscription.
type WatchRequest struct{ Service string }

// InfoRequest asks where the event bus is (OpInfo): InfoResponse.
type InfoRequest struct{}

// InfoResponse is the event bus URL, subject prefix and default TTL.
type InfoResponse struct {
	NATSURL    string
	Prefix     string
	DefaultTTL time.Duration
}

// SetAdminRequest changes an instance's admin state (OpSetAdmin): registry.Admin. A nil
// field keeps its value.
type SetAdminRequest struct {
	Key     registry.Key
	Enabled *bool
	Weight  *int32
}

// ServicesRequest summarises every service (OpServices): []ServiceSummary.
type ServicesRequest struct{}

// InstancesRequest lists one service's instances of Kind ("" = all) (OpInstances):
// []registry.State; a service with no instance is 10404.
type InstancesRequest struct {
	Service string
	Kind    string
}

// ConsumersRequest lists the registered consumers (OpConsumers): []registry.State.
type ConsumersRequest struct{}

// GetConfigRequest reads the revision of Key that Caller gets (OpConfigGet): config.File.
type GetConfigRequest struct {
	Key    config.Key
	Caller config.Caller
}

// WatchConfigRequest opens a config watch (OpConfigWatch): *ConfigWatch.
type WatchConfigRequest struct {
	Key    config.Key
	Prefix bool
	Caller config.Caller
}

// PushRequest pushes a revision (OpPush): config.File.
type PushRequest struct {
	Key       config.Key
	Content   []byte
	Comment   string
	GrayGroup string
}

// HistoryRequest reads every kept revision of a file with its summary (OpHistory):
// HistoryResponse.
type HistoryRequest struct{ Key config.Key }

// HistoryResponse is a file's kept revisions, oldest first, and its summary.
type HistoryResponse struct {
	Revisions []config.File
	Summary   FileSummary
}

// RevisionRequest reads one revision (OpRevision): config.File.
type RevisionRequest struct {
	Key      config.Key
	Revision int64
}

// DiffRequest compares two revisions (OpDiff): DiffView.
type DiffRequest struct {
	Key      config.Key
	From, To int64
}

// RollbackRequest pushes an older revision's content again (OpRollback): config.File.
type RollbackRequest struct {
	Key      config.Key
	Revision int64
}

// DeleteRequest deletes a file with its history (OpDelete).
type DeleteRequest struct{ Key config.Key }

// AppliedRequest reads a file's apply reports (OpApplied): []config.Applied.
type AppliedRequest struct{ Key config.Key }

// ReportAppliedRequest records an instance's apply report (OpReport).
type ReportAppliedRequest struct {
	Key      config.Key
	Revision int64
	Caller   config.Caller
	Applied  bool
	Reason   string
}

// FilesRequest lists the files matching Filter (OpFiles): []FileSummary.
type FilesRequest struct{ Filter config.Key }

// ResourceGetRequest reads a resource with its data (OpResGet): resource.Resource.
type ResourceGetRequest struct{ Key resource.Key }

// ResourceWatchRequest opens a resource watch of Service (OpResWatch): *ResourceWatch.
type ResourceWatchRequest struct{ Service string }

// ResourceListRequest lists metas (OpResList): ResourceList.
type ResourceListRequest struct {
	Service string
	AppID   string
}

// ResourceList is a list of metas and the size bound.
type ResourceList struct {
	Resources []resource.Meta
	MaxBytes  int64
}

// ResourcePutRequest uploads a resource (OpResPut): resource.Meta. TooLarge is set by
// a transport that cut the upload at the size bound.
type ResourcePutRequest struct {
	Key      resource.Key
	Data     []byte
	TooLarge bool
}

// ResourceDeleteRequest deletes a resource (OpResDelete).
type ResourceDeleteRequest struct{ Key resource.Key }

// WhoamiRequest returns the caller's token (OpWhoami): auth.Token.
type WhoamiRequest struct{}

// TokensRequest lists every token (OpTokens): []auth.Token.
type TokensRequest struct{}

// TokenCreateRequest makes a token (OpTokenCreate): TokenCreated.
type TokenCreateRequest struct {
	Name string
	Role auth.Role
}

// TokenCreated is a new token and its secret, shown only now.
type TokenCreated struct {
	Token  auth.Token
	Secret string
}

// TokenRevokeRequest revokes a token (OpTokenRevoke).
type TokenRevokeRequest struct{ ID string }

// Op implementations.
func (RegisterRequest) Op() Op       { return OpRegister }
func (HeartbeatRequest) Op() Op      { return OpHeartbeat }
func (DeregisterRequest) Op() Op     { return OpDeregister }
func (ListRequest) Op() Op           { return OpList }
func (WatchRequest) Op() Op          { return OpWatch }
func (InfoRequest) Op() Op           { return OpInfo }
func (SetAdminRequest) Op() Op       { return OpSetAdmin }
func (ServicesRequest) Op() Op       { return OpServices }
func (InstancesRequest) Op() Op      { return OpInstances }
func (ConsumersRequest) Op() Op      { return OpConsumers }
func (GetConfigRequest) Op() Op      { return OpConfigGet }
func (WatchConfigRequest) Op() Op    { return OpConfigWatch }
func (PushRequest) Op() Op           { return OpPush }
func (HistoryRequest) Op() Op        { return OpHistory }
func (RevisionRequest) Op() Op       { return OpRevision }
func (DiffRequest) Op() Op           { return OpDiff }
func (RollbackRequest) Op() Op       { return OpRollback }
func (DeleteRequest) Op() Op         { return OpDelete }
func (AppliedRequest) Op() Op        { return OpApplied }
func (ReportAppliedRequest) Op() Op  { return OpReport }
func (FilesRequest) Op() Op          { return OpFiles }
func (ResourceGetRequest) Op() Op    { return OpResGet }
func (ResourceWatchRequest) Op() Op  { return OpResWatch }
func (ResourceListRequest) Op() Op   { return OpResList }
func (ResourcePutRequest) Op() Op    { return OpResPut }
func (ResourceDeleteRequest) Op() Op { return OpResDelete }
func (WhoamiRequest) Op() Op         { return OpWhoami }
func (TokensRequest) Op() Op         { return OpTokens }
func (TokenCreateRequest) Op() Op    { return OpTokenCreate }
func (TokenRevokeRequest) Op() Op    { return OpTokenRevoke }

func (r RegisterRequest) selfAddr() string      { return r.Instance.Addr }
func (r HeartbeatRequest) selfAddr() string     { return r.Key.Addr }
func (r DeregisterRequest) selfAddr() string    { return r.Key.Addr }
func (r ReportAppliedRequest) selfAddr() string { return r.Caller.Addr }
func (r ReportAppliedRequest) scope() string    { return r.Key.Service }
func (r GetConfigRequest) scope() string        { return r.Key.Service }
func (r WatchConfigRequest) scope() string      { return r.Key.Service }
func (r ResourceGetRequest) scope() string      { return r.Key.Service }
func (r ResourceWatchRequest) scope() string    { return r.Service }

// Endpoints are the operations as go-kit endpoints, one per Op.
type Endpoints map[Op]endpoint.Endpoint

// Call runs the endpoint of req's operation.
func (e Endpoints) Call(ctx context.Context, req Request) (any, error) {
	ep, ok := e[req.Op()]
	if !ok {
		return nil, fmt.Errorf("operation %q: %w", req.Op(), aserr.ErrNotFound)
	}
	return ep(ctx, req)
}

// Wrap applies mw to every endpoint, the first outermost, and returns the new set.
func (e Endpoints) Wrap(mw ...endpoint.Middleware) Endpoints {
	if len(mw) == 0 {
		return e
	}
	chain := endpoint.Chain(mw[0], mw[1:]...)
	out := make(Endpoints, len(e))
	for op, ep := range e {
		out[op] = chain(ep)
	}
	return out
}

// Do calls req's operation on e and returns its answer as T; a wrong answer type is
// an internal error.
func Do[T any](ctx context.Context, e Endpoints, req Request) (T, error) {
	var zero T
	v, err := e.Call(ctx, req)
	if err != nil {
		return zero, err
	}
	out, ok := v.(T)
	if !ok {
		return zero, fmt.Errorf("%s answered %T: %w", req.Op(), v, aserr.ErrInternal)
	}
	return out, nil
}

// typed adapts a typed handler to an endpoint.
func typed[Req Request, Resp any](f func(ctx context.Context, r Req) (Resp, error)) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		r, ok := request.(Req)
		if !ok {
			return nil, fmt.Errorf("request %T: %w", request, aserr.ErrInternal)
		}
		return f(ctx, r)
	}
}

// Endpoints returns the bare endpoints of s, without authorization; use
// MakeEndpoints for the set the transports serve.
func (s *Service) Endpoints() Endpoints {
	o := s.o
	return Endpoints{
		OpRegister: typed(func(ctx context.Context, r RegisterRequest) (time.Duration, error) {
			return o.Registry.Register(ctx, r.Instance, r.Load, r.TTL)
		}),
		OpHeartbeat: typed(func(ctx context.Context, r HeartbeatRequest) (HeartbeatResponse, error) {
			known, err := o.Registry.Heartbeat(ctx, r.Key, r.Load)
			return HeartbeatResponse{Known: known}, err
		}),
		OpDeregister: typed(func(ctx context.Context, r DeregisterRequest) (struct{}, error) {
			_, err := o.Registry.Deregister(ctx, r.Key)
			return struct{}{}, err
		}),
		OpList: typed(func(_ context.Context, r ListRequest) ([]registry.State, error) {
			return o.Registry.List(r.Service), nil
		}),
		OpWatch: typed(func(_ context.Context, r WatchRequest) (*registry.Subscription, error) {
			return o.Registry.Subscribe(r.Service, o.WatchBuffer)
		}),
		OpInfo: typed(func(context.Context, InfoRequest) (InfoResponse, error) {
			return InfoResponse{NATSURL: o.NATSURL(), Prefix: o.Prefix, DefaultTTL: o.Registry.TTL()}, nil
		}),
		OpSetAdmin: typed(s.setAdmin),
		OpServices: typed(func(context.Context, ServicesRequest) ([]ServiceSummary, error) {
			return Summaries(o.Registry.List("")), nil
		}),
		OpInstances: typed(func(_ context.Context, r InstancesRequest) ([]registry.State, error) {
			all := o.Registry.List(r.Service)
			if r.Service == "" || len(all) == 0 {
				return nil, fmt.Errorf("unknown service %q: %w", r.Service, aserr.ErrNotFound)
			}
			out := all[:0:0]
			for _, st := range all {
				if r.Kind == "" || st.Instance.Kind == r.Kind {
					out = append(out, st)
				}
			}
			return out, nil
		}),
		OpConsumers: typed(func(context.Context, ConsumersRequest) ([]registry.State, error) {
			out := []registry.State{}
			for _, st := range o.Registry.List("") {
				if st.Instance.Kind == registry.KindConsumer {
					out = append(out, st)
				}
			}
			return out, nil
		}),
		OpConfigGet: typed(func(ctx context.Context, r GetConfigRequest) (config.File, error) {
			f, err := o.Center.Get(ctx, r.Key, r.Caller)
			if err == nil && grantFrom(ctx).Redact {
				f = RedactFile(f)
			}
			return f, err
		}),
		OpConfigWatch: typed(func(ctx context.Context, r WatchConfigRequest) (*ConfigWatch, error) {
			w, err := o.Center.Watch(ctx, r.Key, r.Prefix, r.Caller, o.WatchBuffer)
			if err != nil {
				return nil, err
			}
			return &ConfigWatch{Watch: w, Redact: grantFrom(ctx).Redact}, nil
		}),
		OpPush: typed(s.push),
		OpHistory: typed(func(ctx context.Context, r HistoryRequest) (HistoryResponse, error) {
			revs, err := o.Center.History(ctx, r.Key)
			if err != nil {
				return HistoryResponse{}, err
			}
			sum, err := summarize(ctx, o.Center, r.Key)
			if err != nil {
				return HistoryResponse{}, err
			}
			return HistoryResponse{Revisions: redactAll(revs, grantFrom(ctx).Redact), Summary: sum}, nil
		}),
		OpRevision: typed(func(ctx context.Context, r RevisionRequest) (config.File, error) {
			if r.Revision <= 0 {
				return config.File{}, fmt.Errorf("revision %d is not a revision number: %w", r.Revision, aserr.ErrInvalidParam)
			}
			f, err := o.Center.Revision(ctx, r.Key, r.Revision)
			if err == nil && grantFrom(ctx).Redact {
				f = RedactFile(f)
			}
			return f, err
		}),
		OpDiff: typed(func(ctx context.Context, r DiffRequest) (DiffView, error) {
			return s.diff(ctx, r, grantFrom(ctx).Redact)
		}),
		OpRollback: typed(func(ctx context.Context, r RollbackRequest) (config.File, error) {
			if r.Revision <= 0 {
				return config.File{}, fmt.Errorf("revision must be positive: %w", aserr.ErrInvalidParam)
			}
			return o.Center.Rollback(ctx, r.Key, r.Revision)
		}),
		OpDelete: typed(func(ctx context.Context, r DeleteRequest) (struct{}, error) {
			if err := o.Center.Delete(ctx, r.Key); err != nil {
				return struct{}{}, err
			}
			o.Catalog.Remove(r.Key)
			return struct{}{}, nil
		}),
		OpApplied: typed(func(ctx context.Context, r AppliedRequest) ([]config.Applied, error) {
			if _, err := o.Center.History(ctx, r.Key); err != nil {
				return nil, err
			}
			return o.Center.AppliedReports(ctx, r.Key)
		}),
		OpReport: typed(func(ctx context.Context, r ReportAppliedRequest) (struct{}, error) {
			return struct{}{}, o.Center.ReportApplied(ctx, r.Key, r.Revision, r.Caller, r.Applied, r.Reason)
		}),
		OpFiles: typed(func(ctx context.Context, r FilesRequest) ([]FileSummary, error) {
			return o.Catalog.Files(ctx, r.Filter)
		}),
		OpResGet: typed(func(ctx context.Context, r ResourceGetRequest) (resource.Resource, error) {
			svc, err := s.resources()
			if err != nil {
				return resource.Resource{}, err
			}
			return svc.Get(ctx, r.Key)
		}),
		OpResWatch: typed(func(ctx context.Context, r ResourceWatchRequest) (*ResourceWatch, error) {
			svc, err := s.resources()
			if err != nil {
				return nil, err
			}
			// Watch before listing: a change between the two is sent after the snapshot.
			w := svc.Watch(r.Service, o.WatchBuffer)
			ms, err := svc.List(ctx, r.Service, "")
			if err != nil {
				w.Close()
				return nil, err
			}
			return &ResourceWatch{Watcher: w, Snapshot: ms}, nil
		}),
		OpResList: typed(func(ctx context.Context, r ResourceListRequest) (ResourceList, error) {
			svc, err := s.resources()
			if err != nil {
				return ResourceList{}, err
			}
			ms, err := svc.List(ctx, r.Service, r.AppID)
			return ResourceList{Resources: ms, MaxBytes: svc.MaxSize()}, err
		}),
		OpResPut: typed(func(ctx context.Context, r ResourcePutRequest) (resource.Meta, error) {
			svc, err := s.resources()
			if err != nil {
				return resource.Meta{}, err
			}
			if r.TooLarge {
				return resource.Meta{}, fmt.Errorf("resource over %d bytes: %w", svc.MaxSize(), resource.ErrTooLarge)
			}
			return svc.Put(ctx, r.Key, r.Data)
		}),
		OpResDelete: typed(func(ctx context.Context, r ResourceDeleteRequest) (struct{}, error) {
			svc, err := s.resources()
			if err != nil {
				return struct{}{}, err
			}
			return struct{}{}, svc.Delete(ctx, r.Key)
		}),
		OpWhoami: typed(func(ctx context.Context, _ WhoamiRequest) (auth.Token, error) {
			c := callerFrom(ctx)
			if !c.HasToken {
				return auth.Token{}, fmt.Errorf("whoami: no token: %w", aserr.ErrUnauthenticated)
			}
			return c.Token, nil
		}),
		OpTokens: typed(func(context.Context, TokensRequest) ([]auth.Token, error) {
			return o.Tokens.List(), nil
		}),
		OpTokenCreate: typed(func(_ context.Context, r TokenCreateRequest) (TokenCreated, error) {
			secret, t, err := o.Tokens.Create(r.Name, r.Role)
			return TokenCreated{Token: t, Secret: secret}, err
		}),
		OpTokenRevoke: typed(func(_ context.Context, r TokenRevokeRequest) (struct{}, error) {
			return struct{}{}, o.Tokens.Revoke(r.ID)
		}),
	}
}
