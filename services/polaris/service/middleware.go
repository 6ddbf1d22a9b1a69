package service

import (
	"context"
	"strconv"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/go-kit/kit/endpoint"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// MakeEndpoints returns the endpoint set every entrance serves: s's endpoints behind
// logging, metrics and authorization, applied once here. reg nil registers no metrics.
func MakeEndpoints(s *Service, log zerolog.Logger, reg prometheus.Registerer) Endpoints {
	return s.Endpoints().Wrap(Logging(log), Metrics(reg), authorize(s))
}

// authorize refuses a request its caller (callerFrom) may not make and passes the
// Grant on to the endpoint.
func authorize(s *Service) endpoint.Middleware {
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		return func(ctx context.Context, request any) (any, error) {
			req, ok := request.(Request)
			if !ok {
				return nil, aserr.ErrInternal
			}
			g, err := s.Authorize(ctx, callerFrom(ctx), req)
			if err != nil {
				return nil, err
			}
			return next(withGrant(ctx, g), request)
		}
	}
}

// quiet operations are logged at debug level: they come every second from every
// instance, or are reads.
func quiet(op Op) bool {
	switch op {
	case OpHeartbeat, OpReport:
		return true
	}
	acc := Ops[op]
	return acc != AccessAdmin && acc != AccessSelf
}

// Logging logs every change (and every refusal) with the operation, entrance and
// caller; reads and heartbeats at debug level.
func Logging(log zerolog.Logger) endpoint.Middleware {
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		return func(ctx context.Context, request any) (any, error) {
			resp, err := next(ctx, request)
			op := request.(Request).Op()
			c := callerFrom(ctx)
			code := aserr.CodeOf(err)
			ev := log.Debug()
			if err != nil && (code == aserr.ErrForbidden.Code || code == aserr.ErrUnauthenticated.Code) || !quiet(op) {
				ev = log.Info()
			}
			ev = ev.Str("op", string(op)).Str("entrance", c.Entrance).Str("caller", c.Who())
			if err != nil {
				ev = ev.Int("code", code).Str("error", err.Error())
			}
			ev.Msg("polaris operation")
			return resp, err
		}
	}
}

// Metrics counts operations by op and code (asf_polaris_operations_total) and times
// them (asf_polaris_operation_seconds); opening a watch is timed, not the stream.
func Metrics(reg prometheus.Registerer) endpoint.Middleware {
	total := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "asf_polaris_operations_total", Help: "Service layer operations by operation and result code (0 = ok).",
	}, []string{"op", "code"})
	secs := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "asf_polaris_operation_seconds", Help: "Service layer operation latency.", Buckets: prometheus.DefBuckets,
	}, []string{"op"})
	if reg != nil {
		reg.MustRegister(total, secs)
	}
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		return func(ctx context.Context, request any) (any, error) {
			start := time.Now()
			resp, err := next(ctx, request)
			op := string(request.(Request).Op())
			secs.WithLabelValues(op).Observe(time.Since(start).Seconds())
			total.WithLabelValues(op, strconv.Itoa(aserr.CodeOf(err))).Inc()
			return resp, err
		}
	}
}
