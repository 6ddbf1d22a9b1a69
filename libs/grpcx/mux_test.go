package grpcx

import (
	"context"
	"errors"
	"testing"
	"unicode/utf8"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// TestStatusPartsRebuildTheStatus: the parts of a status rebuild it exactly, so a call
// answered inside a stream fails as its unary call fails.
func TestStatusPartsRebuildTheStatus(t *testing.T) {
	for _, err := range []error{
		ToStatus(aserr.ErrLicenceFull),
		ToStatus(errors.New("plain")),
		status.Error(codes.Unavailable, "transport is closing"),
		errors.New("not a status"),
	} {
		c, code, msg := StatusParts(err)
		got := StatusFromParts(c, code, msg)
		require.True(t, proto.Equal(status.Convert(err).Proto(), status.Convert(got).Proto()), "%v → %v", err, got)
	}
	c, code, msg := StatusParts(nil)
	require.Equal(t, codes.OK, c)
	require.NoError(t, StatusFromParts(c, code, msg))
}

func FuzzStatusParts(f *testing.F) {
	f.Add(uint32(14), 10222, "network error")
	f.Add(uint32(2), 0, "")
	f.Fuzz(func(t *testing.T, c uint32, code int, msg string) {
		if !utf8.ValidString(msg) {
			return // a gRPC status message is UTF-8 on the wire
		}
		err := StatusFromParts(codes.Code(c), code, msg)
		gc, gcode, gmsg := StatusParts(err)
		if c == 0 {
			require.NoError(t, err)
			return
		}
		require.Equal(t, codes.Code(c), gc)
		require.Equal(t, code, gcode)
		require.Equal(t, msg, gmsg)
	})
}

// TestCallRecorderSharesTheServersMetrics: a recorder built after NewServer counts into
// the server's asf_<service>_grpc_calls_total.
func TestCallRecorderSharesTheServersMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := NewServer("mux", zerolog.Nop(), reg)
	defer s.Stop()
	r := NewCallRecorder("mux", zerolog.Nop(), reg, nil)
	require.Error(t, r.Serve(t.Context(), "/x.Y/Z", nil, func(context.Context) error { return ToStatus(aserr.ErrLicenceFull) }))
	n, err := testutil.GatherAndCount(reg, "asf_mux_grpc_calls_total")
	require.NoError(t, err)
	require.Equal(t, 1, n)
}
