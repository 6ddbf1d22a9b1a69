// Package route chooses loaders for frames and drives the calls: a once request with
// retries on the next candidate, and one sticky loader session per client session with
// replay on reopen. It declares what it needs from lbclient and the loaders as interfaces
// and does no gRPC itself.
//
//	r := route.New(lb, loaders, route.Options{OnceTimeout: 30 * time.Second})
//	out, err := r.Once(ctx, frame)   // a once request
//	err = r.Stream(ctx, client)      // a whole client session
package route

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
	loaderpb "github.com/athenaserving/asf/libs/proto/loader/v1"
	"github.com/athenaserving/asf/libs/tracing"
	"github.com/athenaserving/asf/services/atom/convert"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// picker answers which loaders may serve a service, best first (lbclient's Pick).
type picker interface {
	Pick(ctx context.Context, service string, n int, exclude []string, key string) ([]string, error)
}

// dialer gives access to the loader at addr. Errors carry aserr codes.
type dialer interface {
	Loader(addr string) (Loader, error)
}

// Loader is one loader as the router uses it. Errors carry aserr codes (10110 licence
// full, 10222 network, engine codes); context errors pass through.
type Loader interface {
	// Once runs a one-shot request.
	Once(ctx context.Context, in *loaderpb.LoaderInput) (*loaderpb.LoaderOutput, error)
	// Session opens a session stream; cancelling ctx aborts it.
	Session(ctx context.Context) (Session, error)
}

// Session is one open loader session stream. Send and Recv may run in different goroutines.
type Session interface {
	// Send sends one input; io.EOF means the stream has ended and Recv tells why.
	Send(in *loaderpb.LoaderInput) error
	// CloseSend closes the input side.
	CloseSend() error
	// Recv returns the next output; io.EOF after the loader ended the stream cleanly.
	Recv() (*loaderpb.LoaderOutput, error)
}

// Client is the client side of a stream session as the router sees it.
type Client interface {
	// Recv returns the next client frame, io.EOF once the client closed its side. It must
	// return once the stream's context ends.
	Recv() (*atompb.Frame, error)
	// Send delivers one loader output to the client; it blocks while the client is slow.
	Send(out *loaderpb.LoaderOutput) error
}

// Observer receives routing events, for metrics. Capability values come from clients;
// the observer bounds them.
type Observer interface {
	// Retry counts a move to the next candidate after a refusal with code.
	Retry(capability string, code int)
	// LoaderError counts a loader call or session that failed with code.
	LoaderError(capability string, code int)
	// Hop observes the latency of one hop: "lb", "loader" or "session_first_result".
	Hop(hop string, d time.Duration)
}

// WaitObserver is an Observer that also receives the loader wait of every once request
// and session: the time from its arrival at the router to the start of the loader
// attempt that took it (picks and refused attempts, 10110/10222, included). Rising waits
// mean the loader tier is short of licences: the autoscaling signal.
type WaitObserver interface {
	Wait(capability string, d time.Duration)
}

type nopObserver struct{}

func (nopObserver) Retry(string, int)         {}
func (nopObserver) LoaderError(string, int)   {}
func (nopObserver) Hop(string, time.Duration) {}

// Options tunes a Router; zero fields take the defaults noted.
type Options struct {
	// OnceTimeout bounds a once request whose context has no deadline (default 30 s).
	OnceTimeout time.Duration
	// Candidates is how many loaders to ask lbclient for at a time (default 3).
	Candidates int
	// MaxAttempts bounds the loaders tried for one request or session (default 6).
	MaxAttempts int
	// ReplayFrames and ReplayBytes bound the frames kept for replay before the first
	// output of a session (defaults 64 frames, 4 MiB); past them a failed session is not
	// reopened.
	ReplayFrames int
	ReplayBytes  int
	// EndGrace is how long a session may take to end its stream after its last output
	// before it is cancelled (default 1 s).
	EndGrace time.Duration
	// Meta returns the schema meta of a capability; nil or a nil result means defaults.
	Meta func(capability string) *convert.Meta
	// SuspectFor is how long a loader that failed with a network error (10222) is tried
	// last by new requests and sessions of this router, until lbclient has evicted it
	// (default 3 s, polaris's TTL).
	SuspectFor time.Duration
	// Observer receives routing events; nil means none.
	Observer Observer
	// Uses is told the loader service of every request before its loaders are picked
	// (atom records itself in polaris as a consumer of it); nil means nothing. It must be
	// cheap: it runs on every request.
	Uses func(service string)
	// Version returns the engine version the next request or session of a capability
	// goes to when it pins none (the canary split, package traffic); "" or a nil
	// Version: any version.
	Version func(capability string) string
	// Log is the router's logger.
	Log zerolog.Logger
	// Tracer traces picks and loader attempts as children of the call's span; nil means
	// no spans (tracing off).
	Tracer trace.Tracer
}

// versionSep joins a loader service and an engine version in a pick: lbclient returns
// only the loaders of <service>@<version> that registered that version.
const versionSep = "@"

// Router routes once requests and sessions to loaders. It is safe for concurrent use.
type Router struct {
	pick     picker
	dial     dialer
	opts     Options
	obs      Observer
	log      zerolog.Logger
	suspects *suspects
	wait     func(capability string, d time.Duration) // nil: the observer takes no waits
}

func (r *Router) observeWait(capability string, d time.Duration) {
	if r.wait != nil {
		r.wait(capability, d)
	}
}

// New returns a Router that picks loaders with p and reaches them with d.
func New(p picker, d dialer, opts Options) *Router {
	if opts.OnceTimeout <= 0 {
		opts.OnceTimeout = 30 * time.Second
	}
	if opts.Candidates <= 0 {
		opts.Candidates = 3
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 6
	}
	if opts.ReplayFrames <= 0 {
		opts.ReplayFrames = 64
	}
	if opts.ReplayBytes <= 0 {
		opts.ReplayBytes = 4 << 20
	}
	if opts.EndGrace <= 0 {
		opts.EndGrace = time.Second
	}
	if opts.SuspectFor <= 0 {
		opts.SuspectFor = 3 * time.Second
	}
	obs := opts.Observer
	if obs == nil {
		obs = nopObserver{}
	}
	r := &Router{pick: p, dial: d, opts: opts, obs: obs, log: opts.Log, suspects: newSuspects(opts.SuspectFor)}
	if w, ok := obs.(WaitObserver); ok {
		r.wait = w.Wait
	}
	return r
}

// Meta returns the schema meta of capability (nil means defaults).
func (r *Router) Meta(capability string) *convert.Meta {
	if r.opts.Meta == nil {
		return nil
	}
	return r.opts.Meta(capability)
}

// LoaderGone tells the router that the loader at addr is gone (lbclient dropped it): new
// requests and sessions try it last for SuspectFor.
func (r *Router) LoaderGone(addr string) { r.suspects.mark(addr) }

// retryable reports whether err is a refusal that another loader may not give:
// licence full (10110) or unavailable/network (10222). Cancellation is never retried.
func retryable(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	var e *aserr.Error
	return errors.As(err, &e) && (e.Code == aserr.ErrLicenceFull.Code || e.Code == aserr.ErrNetwork.Code)
}

// suspect reports whether err says the loader itself is gone (network error, not a
// cancellation of ours), so that new requests should try it last.
func suspect(ctx context.Context, err error) bool {
	return ctx.Err() == nil && !errors.Is(err, context.Canceled) && aserr.CodeOf(err) == aserr.ErrNetwork.Code
}

// suspects remembers loaders that failed with a network error until a deadline. lbclient
// evicts a dead loader only after polaris's TTL; meanwhile new work goes to the others.
type suspects struct {
	ttl   time.Duration
	mu    sync.Mutex
	until map[string]time.Time
}

func newSuspects(ttl time.Duration) *suspects {
	return &suspects{ttl: ttl, until: map[string]time.Time{}}
}

func (s *suspects) mark(addr string) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for a, t := range s.until {
		if now.After(t) {
			delete(s.until, a)
		}
	}
	s.until[addr] = now.Add(s.ttl)
}

func (s *suspects) has(addr string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Now().Before(s.until[addr])
}

// last reorders addrs in place so suspects come after the others, keeping each group's order.
func (s *suspects) last(addrs []string) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.until) == 0 {
		return
	}
	slices.SortStableFunc(addrs, func(a, b string) int {
		sa, sb := now.Before(s.until[a]), now.Before(s.until[b])
		switch {
		case sa == sb:
			return 0
		case sb:
			return -1
		}
		return 1
	})
}

// candidates hands out loaders for one request: a batch from lbclient at a time (known
// suspects last), asking again with the tried ones excluded when the batch runs out, at
// most MaxAttempts in all. service is the loader service of the capability.
type candidates struct {
	r          *Router
	capability string
	service    string // with "@<version>" when a version is pinned or chosen by the split
	// fallback is the service without the version the split chose: picked when that
	// version has no loader to offer, so a split never fails a request by itself.
	fallback string
	key      string
	batch    []string
	tried    []string
}

// candidates returns the loaders for one request or session of capability; version is
// the engine version the request pins (header engine_version, "" for none).
func (r *Router) candidates(capability string, meta *convert.Meta, key, version string) *candidates {
	service := meta.LoaderService(capability)
	if r.opts.Uses != nil {
		r.opts.Uses(service)
	}
	c := &candidates{r: r, capability: capability, service: service, key: key}
	switch {
	case version != "":
		c.service = service + versionSep + version
	case r.opts.Version != nil:
		if v := r.opts.Version(capability); v != "" {
			c.service, c.fallback = service+versionSep+v, service
		}
	}
	return c
}

var errAttempts = aserr.New(aserr.ErrNoEngine.Code, "no engine node available: attempts exhausted")

func (c *candidates) next(ctx context.Context) (string, error) {
	if len(c.tried) >= c.r.opts.MaxAttempts {
		return "", errAttempts
	}
	if len(c.batch) == 0 {
		start := time.Now()
		pctx, span := c.r.startSpan(ctx, spanPick)
		addrs, err := c.r.pick.Pick(pctx, c.service, c.r.opts.Candidates, slices.Clone(c.tried), c.key)
		if err != nil && c.fallback != "" && len(c.tried) == 0 && ctx.Err() == nil {
			c.r.log.Debug().Err(err).Str("service", c.service).Msg("split version has no loader: picking any version")
			c.service, c.fallback = c.fallback, ""
			addrs, err = c.r.pick.Pick(pctx, c.service, c.r.opts.Candidates, nil, c.key)
		}
		if span != nil {
			span.SetAttributes(attribute.String("asf.service", c.service), attribute.StringSlice("asf.loaders", addrs))
			endSpan(span, err)
		}
		c.r.obs.Hop("lb", time.Since(start))
		if err != nil {
			return "", fmt.Errorf("pick %s: %w", c.service, err)
		}
		for _, a := range addrs {
			if a != "" && !slices.Contains(c.tried, a) && !slices.Contains(c.batch, a) {
				c.batch = append(c.batch, a)
			}
		}
		if len(c.batch) == 0 {
			return "", fmt.Errorf("pick %s: %w", c.service, aserr.ErrNoEngine)
		}
		c.r.suspects.last(c.batch)
	}
	addr := c.batch[0]
	c.batch = c.batch[1:]
	c.tried = append(c.tried, addr)
	return addr, nil
}

// Once serves a once request: it picks up to Candidates loaders of the capability's
// loader service (key: uid, else app_id) and calls the first; on 10110 or 10222 it moves
// to the next, asking lbclient for more when the batch runs out, up to MaxAttempts. A
// loader result is never retried. The frame is sent as ONCE whatever its status. The
// capability's once timeout bounds the call within ctx's deadline; without either,
// OnceTimeout applies. Expiry gives 10102.
func (r *Router) Once(ctx context.Context, f *atompb.Frame) (*loaderpb.LoaderOutput, error) {
	meta := r.Meta(f.GetCapability())
	timeout := time.Duration(0)
	if meta != nil && meta.OnceTimeout > 0 {
		timeout = meta.OnceTimeout
	} else if _, ok := ctx.Deadline(); !ok {
		timeout = r.opts.OnceTimeout
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	arrived := time.Now()
	in := convert.ToLoaderInput(f, 0, meta)
	in.Status, in.State = loaderpb.Status_STATUS_ONCE, loaderpb.State_STATE_ONCE

	capability := f.GetCapability()
	lc := r.log.With().Str("sid", f.GetSid()).Str("capability", capability)
	if id, ok := tracing.TraceID(ctx); ok {
		lc = lc.Str(tracing.LogField, id)
	}
	log := lc.Logger()
	cands := r.candidates(capability, meta, convert.RouteKey(f), f.GetHeader()[convert.HeaderEngineVersion])
	var last error
	for {
		addr, err := cands.next(ctx)
		if err != nil {
			if last != nil {
				return nil, last
			}
			return nil, err
		}
		if last != nil {
			r.obs.Retry(capability, aserr.CodeOf(last))
		}
		attempted := time.Now()
		actx, span := r.startSpan(ctx, spanLoaderOnce)
		if span != nil {
			attemptAttrs(span, f.GetSid(), addr, len(cands.tried))
		}
		out, err := r.once(actx, addr, in)
		endSpan(span, err)
		if err == nil {
			r.observeWait(capability, attempted.Sub(arrived))
			// A result is final, even one carrying an error code.
			if oerr := convert.OutputError(out); oerr != nil {
				r.obs.LoaderError(capability, aserr.CodeOf(oerr))
				return nil, fmt.Errorf("loader %s once: %w", addr, oerr)
			}
			log.Debug().Str("loader", addr).Msg("once served")
			return out, nil
		}
		r.obs.LoaderError(capability, aserr.CodeOf(err))
		if suspect(ctx, err) {
			r.suspects.mark(addr)
		}
		if !retryable(err) || ctx.Err() != nil {
			return nil, err
		}
		log.Debug().Str("loader", addr).Err(err).Msg("once refused: next candidate")
		last = err
	}
}

func (r *Router) once(ctx context.Context, addr string, in *loaderpb.LoaderInput) (*loaderpb.LoaderOutput, error) {
	l, err := r.dial.Loader(addr)
	if err != nil {
		return nil, fmt.Errorf("loader %s: %w", addr, err)
	}
	start := time.Now()
	out, err := l.Once(ctx, in)
	r.obs.Hop("loader", time.Since(start))
	if err != nil {
		return nil, fmt.Errorf("loader %s once: %w", addr, err)
	}
	return out, nil
}
