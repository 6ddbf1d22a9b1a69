// Package transport serves the loader's domain (package session) as loaderpb.LoaderServer.
package transport

import (
	"context"
	"errors"
	"io"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/callmux"
	"github.com/athenaserving/asf/libs/callmux/muxwire"
	"github.com/athenaserving/asf/libs/grpcx"
	loaderpb "github.com/athenaserving/asf/libs/proto/loader/v1"
	"github.com/athenaserving/asf/services/loader/session"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
)

// Server adapts a session.Manager to the Loader gRPC service.
type Server struct {
	loaderpb.UnimplementedLoaderServer
	mgr *session.Manager
	log zerolog.Logger
	m   *metrics
	res Resources             // nil: res_id/patch_id headers are not resolved (resources.go)
	mux *muxwire.LoaderServer // serves OnceStream (oncestream.go)
}

var _ loaderpb.LoaderServer = (*Server)(nil)

// New returns the gRPC adapter for mgr; its metrics are registered on reg (may be nil).
// rec records the once requests that come over OnceStream as the server's interceptors
// record a unary Once (grpcx.NewCallRecorder; nil: not recorded). Close stops it.
func New(mgr *session.Manager, log zerolog.Logger, reg prometheus.Registerer, rec *grpcx.CallRecorder) *Server {
	g := &Server{mgr: mgr, log: log, m: newMetrics(reg, mgr)}
	g.mux = muxwire.NewLoaderServer(g.Once, callmux.ServerOptions{Recorder: rec, Log: log})
	return g
}

// Register adds the Loader service to s.
func (g *Server) Register(s grpc.ServiceRegistrar) { loaderpb.RegisterLoaderServer(s, g) }

type metrics struct {
	onceTotal  *prometheus.CounterVec
	engineSecs *prometheus.HistogramVec
	rejections *prometheus.CounterVec
	// The per-op children of engineSecs, looked up once instead of per result.
	onceEngine, sessionEngine prometheus.Observer
}

func newMetrics(reg prometheus.Registerer, mgr *session.Manager) *metrics {
	m := &metrics{
		onceTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "asf_loader_once_requests_total", Help: "Once requests served, by ASE code.",
		}, []string{"code"}),
		engineSecs: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "asf_loader_engine_call_seconds", Help: "Time inside the engine per once request or session result.",
			Buckets: prometheus.ExponentialBuckets(0.00001, 3, 14),
		}, []string{"op"}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "asf_loader_licence_rejections_total", Help: "Requests refused because every licence slot was busy (10110).",
		}, []string{"call"}),
	}
	m.onceEngine = m.engineSecs.WithLabelValues("once")
	m.sessionEngine = m.engineSecs.WithLabelValues("session")
	active := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "asf_loader_sessions_active", Help: "Engine sessions open now.",
	}, func() float64 { return float64(mgr.Active()) })
	// Licence slots in use (sessions and once requests) over the licence: what a loader
	// autoscaler (the Helm chart's HPA) targets.
	utilisation := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "asf_loader_licence_utilisation_ratio", Help: "Licence slots in use divided by the licence (0 to 1).",
	}, func() float64 {
		p := mgr.Pool()
		if l := p.Load(); l.Total > 0 {
			return float64(p.InUse()) / float64(l.Total)
		}
		return 0
	})
	if reg != nil {
		reg.MustRegister(m.onceTotal, m.engineSecs, m.rejections, active, utilisation)
	}
	return m
}

func (m *metrics) rejected(call string, err error) {
	if aserr.CodeOf(err) == aserr.ErrLicenceFull.Code {
		m.rejections.WithLabelValues(call).Inc()
	}
}

// Once runs one once request in a licence slot.
func (g *Server) Once(ctx context.Context, in *loaderpb.LoaderInput) (*loaderpb.LoaderOutput, error) {
	start := time.Now()
	req := request(in)
	psr, release, err := g.psr(ctx, in)
	if err != nil {
		g.m.onceTotal.WithLabelValues(strconv.Itoa(aserr.CodeOf(err))).Inc()
		return nil, grpcx.ToStatus(err)
	}
	defer release()
	req.PsrIDs = psr
	res, err := g.mgr.Once(ctx, req)
	g.m.onceTotal.WithLabelValues(strconv.Itoa(aserr.CodeOf(err))).Inc()
	if err != nil {
		g.m.rejected("once", err)
		return nil, grpcx.ToStatus(err)
	}
	g.m.onceEngine.Observe(res.Engine.Seconds())
	return &loaderpb.LoaderOutput{
		ServiceId: in.GetServiceId(), Status: loaderpb.Status_STATUS_ONCE, Pl: pbPayloads(res.Outputs),
		EngineNs: res.Engine.Nanoseconds(), LoaderNs: time.Since(start).Nanoseconds(),
	}, nil
}

// Session runs one engine session: the first input opens it (10110 when the licence is
// full), inputs are written as they come, results are sent as the engine produces them,
// and the stream ends with nil after the END result. When the client goes away the
// engine session is aborted and its slot freed before the handler returns.
func (g *Server) Session(stream loaderpb.Loader_SessionServer) error {
	ctx := stream.Context()
	first, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return nil
	}
	if err != nil {
		return grpcx.ToStatus(err)
	}
	var lastIn atomic.Int64
	lastIn.Store(time.Now().UnixNano())
	sp := sessionParams(first)
	psr, release, err := g.psr(ctx, first)
	if err != nil {
		return grpcx.ToStatus(err)
	}
	defer release() // after sess.Abort (deferred below): the engine session is gone first
	sp.PsrIDs = psr
	sess, err := g.mgr.Open(ctx, sp)
	if err != nil {
		g.m.rejected("session", err)
		return grpcx.ToStatus(err)
	}
	defer sess.Abort()
	if err := sess.Write(ctx, frame(first)); err != nil {
		return grpcx.ToStatus(err)
	}
	// The reader ends when the client half-closes, the session ends, or the stream ends
	// (gRPC cancels the stream context once this handler returns).
	go func() {
		for {
			in, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				if ctx.Err() == nil {
					sess.Fail(err)
				}
				return
			}
			lastIn.Store(time.Now().UnixNano())
			if err := sess.Write(ctx, frame(in)); err != nil {
				return // the session ended; Recv below reports why
			}
		}
	}()
	for {
		r, err := sess.Recv(ctx)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return grpcx.ToStatus(ctx.Err())
			}
			return grpcx.ToStatus(err)
		}
		g.m.sessionEngine.Observe(r.Engine.Seconds())
		out := &loaderpb.LoaderOutput{
			ServiceId: first.GetServiceId(), Status: pbStatus(r.Status), Pl: pbPayloads(r.Outputs),
			EngineNs: r.Engine.Nanoseconds(), LoaderNs: time.Since(time.Unix(0, lastIn.Load())).Nanoseconds(),
		}
		if err := stream.Send(out); err != nil {
			return err
		}
	}
}
