package transport

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/grpcx"
	lbpb "github.com/athenaserving/asf/libs/proto/lb/v1"
	"github.com/athenaserving/asf/services/lbclient/balance"
	"github.com/prometheus/client_golang/prometheus"
)

// Leases sets how many picks one Lb.Lease may grant (0: leases off, every Lease is
// refused and the callers pick per request) and how long the granted picks may be used.
// Call it before serving.
func (l *LB) Leases(maxPicks int, valid time.Duration) {
	l.leaseMax, l.leaseValid = maxPicks, valid
}

// Lease grants up to req.count picks of req.service (balance.View.Lease), refused when
// leases are off or the service's strategy uses the pick key. Errors are Pick's.
func (l *LB) Lease(_ context.Context, req *lbpb.LeaseRequest) (*lbpb.LeaseResponse, error) {
	resp, err := l.lease(req)
	if err != nil {
		return nil, grpcx.ToStatus(err)
	}
	return resp, nil
}

// lease answers a lease asked by Lease or on a PickStream.
func (l *LB) lease(req *lbpb.LeaseRequest) (*lbpb.LeaseResponse, error) {
	svc, _, _ := strings.Cut(req.GetService(), balance.VersionSep)
	if l.leaseMax <= 0 || l.leaseValid <= 0 {
		l.countLease(svc, "refused")
		return &lbpb.LeaseResponse{Refused: true}, nil
	}
	count := min(max(int(req.GetCount()), 1), l.leaseMax)
	lease, err := l.view.Lease(req.GetService(), int(req.GetN()), count, l.now())
	switch {
	case errors.Is(err, balance.ErrLeaseKeyed):
		l.countLease(svc, "refused")
		return &lbpb.LeaseResponse{Refused: true}, nil
	case err != nil:
		if aserr.CodeOf(err) == aserr.ErrNotFound.Code {
			svc = unknownService
		}
		l.countLease(svc, strconv.Itoa(aserr.CodeOf(err)))
		return nil, err
	}
	l.countLease(svc, "0")
	return &lbpb.LeaseResponse{Addrs: lease.Addrs, Per: int32(lease.Per), Picks: lease.Picks, ValidUs: l.leaseValid.Microseconds()}, nil
}

func (l *LB) countLease(svc, code string) {
	if !l.view.Known(svc) {
		svc = unknownService
	}
	l.leases.WithLabelValues(svc, code).Inc()
}

func newLeasesCounter() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "asf_lbclient_leases_total",
		Help: "Lease calls answered, by service (bounded: registered services only) and code (0 granted, possibly short or empty; refused; else the ASE code).",
	}, []string{"service", "code"})
}
