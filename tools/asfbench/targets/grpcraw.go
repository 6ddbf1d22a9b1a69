package targets

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/athenaserving/asf/tools/asfbench"
)

// RawFrame is a pre-encoded protobuf message, sent and received as bytes.
type RawFrame struct{ B []byte }

// RawCodec passes RawFrame bytes through unchanged. It names itself "proto" so the wire
// content-type is the one every protobuf server expects; use it with grpc.ForceCodec (client)
// or grpc.ForceServerCodec (server), never register it globally.
type RawCodec struct{}

// Marshal returns the frame's bytes.
func (RawCodec) Marshal(v any) ([]byte, error) {
	f, ok := v.(*RawFrame)
	if !ok {
		return nil, fmt.Errorf("raw codec: %T is not *RawFrame", v)
	}
	return f.B, nil
}

// Unmarshal copies data into the frame.
func (RawCodec) Unmarshal(data []byte, v any) error {
	f, ok := v.(*RawFrame)
	if !ok {
		return fmt.Errorf("raw codec: %T is not *RawFrame", v)
	}
	f.B = append(f.B[:0], data...)
	return nil
}

// Name returns "proto".
func (RawCodec) Name() string { return "proto" }

// GRPCConfig configures raw unary calls.
type GRPCConfig struct {
	// Addr is host:port.
	Addr string
	// Method is the full method name, for example /asf.lb.v1.Lb/Pick.
	Method string
	// Request is the encoded request message.
	Request []byte
	// Conns is how many client connections the workers share (default 2).
	Conns int
	// Check, when set, validates each response body.
	Check func(resp []byte) error
	// Dial are extra dial options, for example tlsx.DialOption for mutual TLS (they
	// override the default plaintext).
	Dial []grpc.DialOption
}

// GRPCRaw is a Target that calls one unary method with a pre-encoded request.
type GRPCRaw struct {
	cfg   GRPCConfig
	conns []*grpc.ClientConn
}

// NewGRPCRaw dials the connections (lazily, as grpc.NewClient does).
func NewGRPCRaw(cfg GRPCConfig) (*GRPCRaw, error) {
	n := max(cfg.Conns, 1)
	if cfg.Conns == 0 {
		n = 2
	}
	t := &GRPCRaw{cfg: cfg}
	for range n {
		c, err := grpc.NewClient(cfg.Addr, append([]grpc.DialOption{
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.ForceCodec(RawCodec{}))}, cfg.Dial...)...)
		if err != nil {
			t.Close()
			return nil, fmt.Errorf("grpc target %s: %w", cfg.Addr, err)
		}
		t.conns = append(t.conns, c)
	}
	return t, nil
}

// Close closes the connections.
func (t *GRPCRaw) Close() {
	for _, c := range t.conns {
		_ = c.Close()
	}
}

// NewDoer returns a worker's caller.
func (t *GRPCRaw) NewDoer(_ context.Context, worker int) (asfbench.Doer, error) {
	return &grpcDoer{t: t, conn: t.conns[worker%len(t.conns)], req: RawFrame{B: t.cfg.Request}}, nil
}

type grpcDoer struct {
	t    *GRPCRaw
	conn *grpc.ClientConn
	req  RawFrame
	resp RawFrame
}

func (d *grpcDoer) Do(ctx context.Context) (asfbench.Timing, error) {
	if err := d.conn.Invoke(ctx, d.t.cfg.Method, &d.req, &d.resp); err != nil {
		return asfbench.Timing{}, errKind("grpc "+status.Code(err).String(), err)
	}
	if d.t.cfg.Check != nil {
		if err := d.t.cfg.Check(d.resp.B); err != nil {
			return asfbench.Timing{}, errKind("mismatch", err)
		}
	}
	return asfbench.Timing{}, nil
}

func (d *grpcDoer) Close() error { return nil }
