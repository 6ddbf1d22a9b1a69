package service

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/services/polaris/adminapi/auth"
	"github.com/athenaserving/asf/services/polaris/adminapi/diff"
	"github.com/athenaserving/asf/services/polaris/config"
	"github.com/athenaserving/asf/services/polaris/registry"
	"github.com/athenaserving/asf/services/polaris/resource"
)

// DefaultWatchBuffer is how many events a watch may fall behind before it is dropped
// (the client then watches again and gets a fresh snapshot).
const DefaultWatchBuffer = 1024

// maxWeight bounds an instance weight.
const maxWeight = 10000

// defaultSharedConfig are the config services every internal service reads: the
// capability schemas webgate and atom consume.
var defaultSharedConfig = []string{"capabilities"}

// Options configure a Service.
type Options struct {
	Registry  *registry.Registry
	Center    *config.Center
	Catalog   *Catalog
	Tokens    *auth.Store
	Resources *resource.Service // nil: the resource operations answer 10404
	// NATSURL reports the event bus URL (known once polaris started); Prefix is the
	// NATS subject prefix. Both answer registry.info.
	NATSURL func() string
	Prefix  string
	// Insecure trusts gRPC callers without a client certificate as internal services
	// (admin operations still need an admin token).
	Insecure bool
	// SharedConfig are the config services every internal service reads; nil is
	// defaultSharedConfig.
	SharedConfig []string
	// WatchBuffer bounds a watcher's backlog; ≤ 0 is DefaultWatchBuffer.
	WatchBuffer int
}

// Service is polaris's one service layer: the registry, config center, resources and
// tokens with their validation and authorization rules. Transports call it through
// Endpoints, never the domain packages directly.
type Service struct{ o Options }

// New returns the service.
func New(o Options) *Service {
	if o.SharedConfig == nil {
		o.SharedConfig = defaultSharedConfig
	}
	if o.WatchBuffer <= 0 {
		o.WatchBuffer = DefaultWatchBuffer
	}
	if o.NATSURL == nil {
		o.NATSURL = func() string { return "" }
	}
	return &Service{o: o}
}

// Authenticate returns the caller a bearer token secret makes: HasToken for a known
// token, BadToken for a token that is not, neither for an empty secret.
func (s *Service) Authenticate(c Caller, secret string) Caller {
	if secret == "" {
		return c
	}
	if tok, ok := s.o.Tokens.Authenticate(secret); ok {
		c.Token, c.HasToken = tok, true
	} else {
		c.BadToken = true
	}
	return c
}

// Tokens is the token store (the console's sessions refer to tokens by id).
func (s *Service) Tokens() *auth.Store { return s.o.Tokens }

// ServiceSummary counts a service's instances.
type ServiceSummary struct {
	Service   string `json:"service"`
	Providers int    `json:"providers"`
	Consumers int    `json:"consumers"`
	// Routable counts providers that are enabled and live.
	Routable int   `json:"routable"`
	Idle     int64 `json:"idle"`
	Total    int64 `json:"total"`
}

// Summaries summarises states by service, sorted by name.
func Summaries(states []registry.State) []ServiceSummary {
	by := map[string]*ServiceSummary{}
	var names []string
	for _, st := range states {
		s := by[st.Instance.Service]
		if s == nil {
			s = &ServiceSummary{Service: st.Instance.Service}
			by[s.Service] = s
			names = append(names, s.Service)
		}
		if st.Instance.Kind == registry.KindConsumer {
			s.Consumers++
			continue
		}
		s.Providers++
		s.Idle += int64(st.Load.Idle)
		s.Total += int64(st.Load.Total)
		if st.Admin.Enabled && st.Load.Live > 0 {
			s.Routable++
		}
	}
	sort.Strings(names)
	out := make([]ServiceSummary, 0, len(names))
	for _, n := range names {
		out = append(out, *by[n])
	}
	return out
}

// setAdmin applies req to the admin state of k, registered or not: a missing field keeps
// its value; the weight is bounded.
func (s *Service) setAdmin(ctx context.Context, req SetAdminRequest) (registry.Admin, error) {
	k := req.Key
	if k.Service == "" || k.Addr == "" {
		return registry.Admin{}, fmt.Errorf("set admin: service and addr are required: %w", aserr.ErrInvalidParam)
	}
	if req.Enabled == nil && req.Weight == nil {
		return registry.Admin{}, fmt.Errorf("set admin %s: enabled or weight is required: %w", k.Addr, aserr.ErrInvalidParam)
	}
	cur := registry.DefaultAdmin()
	for _, st := range s.o.Registry.List(k.Service) {
		if st.Instance.Addr == k.Addr {
			cur = st.Admin
		}
	}
	if req.Enabled != nil {
		cur.Enabled = *req.Enabled
	}
	if req.Weight != nil {
		if *req.Weight < 0 || *req.Weight > maxWeight {
			return registry.Admin{}, fmt.Errorf("weight %d not in 0..%d: %w", *req.Weight, maxWeight, aserr.ErrInvalidParam)
		}
		cur.Weight = *req.Weight
	}
	if err := s.o.Registry.SetAdmin(ctx, k, cur); err != nil {
		return registry.Admin{}, err
	}
	return cur, nil
}

// MaxComment and MaxGrayGroup bound a push's comment and gray group name.
const (
	MaxComment   = 1024
	MaxGrayGroup = 128
)

func (s *Service) push(ctx context.Context, req PushRequest) (config.File, error) {
	if len(req.Comment) > MaxComment || len(req.GrayGroup) > MaxGrayGroup || strings.ContainsAny(req.GrayGroup, " \t\r\n") {
		return config.File{}, fmt.Errorf("comment over %d bytes or gray group not a single word of at most %d bytes: %w", MaxComment, MaxGrayGroup, aserr.ErrInvalidParam)
	}
	f, err := s.o.Center.Push(ctx, req.Key, req.Content, req.Comment, req.GrayGroup)
	if err != nil {
		return config.File{}, err
	}
	s.o.Catalog.Add(req.Key)
	return f, nil
}

// DiffView is the diff between two revisions.
type DiffView struct {
	Key     config.Key  `json:"key"`
	From    int64       `json:"from"`
	To      int64       `json:"to"`
	Added   int         `json:"added"`
	Removed int         `json:"removed"`
	Lines   []diff.Line `json:"lines"`
	Unified string      `json:"unified"`
}

func (s *Service) diff(ctx context.Context, req DiffRequest, redact bool) (DiffView, error) {
	if req.From <= 0 || req.To <= 0 {
		return DiffView{}, fmt.Errorf("from and to must be revision numbers: %w", aserr.ErrInvalidParam)
	}
	a, err := s.o.Center.Revision(ctx, req.Key, req.From)
	if err != nil {
		return DiffView{}, err
	}
	b, err := s.o.Center.Revision(ctx, req.Key, req.To)
	if err != nil {
		return DiffView{}, err
	}
	if redact {
		a, b = RedactFile(a), RedactFile(b)
	}
	lines := diff.Lines(string(a.Content), string(b.Content))
	ins, del := diff.Stats(lines)
	return DiffView{Key: req.Key, From: req.From, To: req.To, Added: ins, Removed: del, Lines: lines, Unified: diff.Unified(lines)}, nil
}

func (s *Service) resources() (*resource.Service, error) {
	if s.o.Resources == nil {
		return nil, fmt.Errorf("personalisation resources are not served here: %w", aserr.ErrNotFound)
	}
	return s.o.Resources, nil
}

// ConfigWatch is an open config watch; Redact asks the transport to redact every file.
type ConfigWatch struct {
	*config.Watch
	Redact bool
}

// ResourceWatch is an open resource watch with its snapshot.
type ResourceWatch struct {
	*resource.Watcher
	Snapshot []resource.Meta
}

// RedactFile returns f with secrets in its content hidden.
func RedactFile(f config.File) config.File {
	f.Content = Redact(f.Content)
	return f
}

func redactAll(fs []config.File, redact bool) []config.File {
	if !redact {
		return fs
	}
	out := make([]config.File, len(fs))
	for i, f := range fs {
		out[i] = RedactFile(f)
	}
	return out
}
