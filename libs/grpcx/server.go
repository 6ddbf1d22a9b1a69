package grpcx

import (
	"context"
	"fmt"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/tracing"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
)

// StreamWorkers is how many long-lived goroutines serve incoming streams. A handler
// that runs on one reuses its already-grown stack; without them every call starts a
// fresh goroutine whose stack grows (and is copied) on the way down the interceptor
// chain, which cost atom ~9 % of its CPU. Calls beyond the busy workers still get a
// goroutine of their own.
const StreamWorkers = 64

// Server is a gRPC server with the standard interceptor chain, grpc.health.v1 and server
// reflection (grpc.reflection.v1 and v1alpha, so `grpcurl list` works on every port).
type Server struct {
	*grpc.Server
	Health *health.Server
}

// NewServer builds a gRPC server for service (used in metric names: asf_<service>_grpc_...).
// The chain is recovery → logging → metrics, for unary and streaming calls alike, after
// the tracing of TraceServer when extra holds it. Messages go through Codec.
// Health starts NOT_SERVING; call SetServing once the service is ready.
func NewServer(service string, log zerolog.Logger, reg prometheus.Registerer, extra ...grpc.ServerOption) *Server {
	m := newMetrics(service, reg)
	unary := []grpc.UnaryServerInterceptor{recoverUnary(log), logUnary(log), m.unary}
	stream := []grpc.StreamServerInterceptor{recoverStream(log), logStream(log), m.stream}
	for _, o := range extra {
		if t, ok := o.(traceOption); ok { // TraceServer: first, so the rest see the trace
			unary = append([]grpc.UnaryServerInterceptor{t.t.unaryServer}, unary...)
			stream = append([]grpc.StreamServerInterceptor{t.t.streamServer}, stream...)
		}
	}
	opts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 500 * time.Millisecond, PermitWithoutStream: true}),
		grpc.NumStreamWorkers(StreamWorkers),
		grpc.StaticStreamWindowSize(StreamWindow), // see StreamWindow
		grpc.StaticConnWindowSize(ConnWindow),
		CodecServerOption(),
	}
	s := &Server{Server: grpc.NewServer(append(opts, extra...)...), Health: health.NewServer()}
	healthpb.RegisterHealthServer(s.Server, s.Health)
	// Reflection describes the services and their messages, nothing else: it answers the
	// callers the TLS handshake admitted, as health does (AllowCallers lets both through).
	reflection.Register(s.Server)
	s.Health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	return s
}

// SetServing marks the server SERVING (true) or NOT_SERVING (false) in grpc.health.v1:
// the empty name (the whole server) and the full name of every service registered on it
// (asf.loader.v1.Loader, asf.atom.v1.Atom, …), so a probe may ask for either. Call it after the
// services are registered.
func (s *Server) SetServing(ok bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if ok {
		st = healthpb.HealthCheckResponse_SERVING
	}
	s.Health.SetServingStatus("", st)
	for name := range s.GetServiceInfo() {
		if !infraService(name) {
			s.Health.SetServingStatus(name, st)
		}
	}
}

// infraService reports whether name is one of the services every server carries (health,
// reflection) rather than one the service registered.
func infraService(name string) bool {
	return name == healthpb.Health_ServiceDesc.ServiceName || strings.HasPrefix(name, "grpc.reflection.")
}

func recoverUnary(log zerolog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				log.Error().Str("method", info.FullMethod).Interface("panic", r).Bytes("stack", debug.Stack()).Msg("grpc handler panic")
				err = ToStatus(fmt.Errorf("%s: panic: %v: %w", info.FullMethod, r, aserr.ErrInternal))
			}
		}()
		return h(ctx, req)
	}
}

func recoverStream(log zerolog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) (err error) {
		defer func() {
			if r := recover(); r != nil {
				log.Error().Str("method", info.FullMethod).Interface("panic", r).Bytes("stack", debug.Stack()).Msg("grpc stream panic")
				err = ToStatus(fmt.Errorf("%s: panic: %v: %w", info.FullMethod, r, aserr.ErrInternal))
			}
		}()
		return h(srv, ss)
	}
}

func logUnary(log zerolog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := h(ctx, req)
		logCall(ctx, log, info.FullMethod, start, err)
		return resp, err
	}
}

func logStream(log zerolog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		start := time.Now()
		err := h(srv, ss)
		logCall(ss.Context(), log, info.FullMethod, start, err)
		return err
	}
}

// logCall logs one call: at debug, or at warn with its code when it failed; a traced
// call's line carries its trace id (tracing.LogField).
func logCall(ctx context.Context, log zerolog.Logger, method string, start time.Time, err error) {
	ev := log.Debug()
	if err != nil {
		ev = log.Warn().Err(err).Int("code", aserr.CodeOf(FromStatus(err)))
	}
	if !ev.Enabled() {
		return
	}
	if id, ok := tracing.TraceID(ctx); ok {
		ev = ev.Str(tracing.LogField, id)
	}
	ev.Str("method", method).Dur("took", time.Since(start)).Msg("grpc call")
}

type metrics struct {
	calls *prometheus.CounterVec
	secs  *prometheus.HistogramVec
}

func newMetrics(service string, reg prometheus.Registerer) *metrics {
	m := &metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "asf_" + service + "_grpc_calls_total",
			Help: "gRPC calls served, by method and ASE code.",
		}, []string{"method", "code"}),
		secs: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "asf_" + service + "_grpc_call_seconds",
			Help:    "gRPC call duration (whole stream for streaming calls).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 14),
		}, []string{"method"}),
	}
	if reg != nil {
		reg.MustRegister(m.calls, m.secs)
	}
	return m
}

// observe counts one call and its duration; a sampled call's duration carries its trace
// id as exemplar.
func (m *metrics) observe(ctx context.Context, method string, start time.Time, err error) {
	m.calls.WithLabelValues(method, strconv.Itoa(aserr.CodeOf(FromStatus(err)))).Inc()
	tracing.Observe(ctx, m.secs.WithLabelValues(method), time.Since(start).Seconds())
}

func (m *metrics) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := h(ctx, req)
	m.observe(ctx, info.FullMethod, start, err)
	return resp, err
}

func (m *metrics) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	start := time.Now()
	err := h(srv, ss)
	m.observe(ss.Context(), info.FullMethod, start, err)
	return err
}
