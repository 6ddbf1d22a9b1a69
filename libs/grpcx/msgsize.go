package grpcx

import (
	"math"

	"google.golang.org/grpc"
)

// One size limit sizes every hop of the request path. It is the largest decoded payload of
// one request or frame (webgate's max-payload-bytes, the same key on atom and the loader);
// every other bound is derived from it, so a payload webgate accepts always passes
// webgate→atom, atom→loader and back:
//
//	envelope E(P) = 4·⌈P/3⌉ + EnvelopeAllowance        largest JSON body / WebSocket message
//	message  M(P) = 2·E(P) + MessageOverhead           largest gRPC request message on every hop
//	result   R(P) = max(M(P), MaxResultBytes)          largest gRPC result message on every hop
//
// E is the base64 text of P plus room for the header, parameters and attribute text. M
// bounds the protobuf form of any envelope of at most E bytes: protobuf carries the payload
// decoded (smaller than its base64) and no JSON member's text grows by more than half in
// protobuf (the smallest member `"k":0,` is 6 bytes, its map entry 8), so 2·E is a bound,
// and MessageOverhead covers what atom adds (sid, capability, client_ip, timing).
// Results (synthesised audio, images) may be larger than requests: R keeps them at least
// MaxResultBytes.
const (
	// DefaultMaxPayloadBytes is the default largest decoded payload of one request or frame.
	DefaultMaxPayloadBytes = 8 << 20
	// EnvelopeAllowance is the room for everything in a request but its payload data.
	EnvelopeAllowance = 1 << 20
	// MessageOverhead is added to every derived gRPC message bound.
	MessageOverhead = 64 << 10
	// MaxResultBytes is the least bound on one result message on every hop.
	MaxResultBytes = 64 << 20
)

// EnvelopeBytes is E(P): the largest request body or WebSocket message that can carry a
// decoded payload of payload bytes (≤ 0: DefaultMaxPayloadBytes).
func EnvelopeBytes(payload int64) int64 {
	if payload <= 0 {
		payload = DefaultMaxPayloadBytes
	}
	return 4*((payload+2)/3) + EnvelopeAllowance
}

// MessageBytes is M(P): the gRPC request message bound of every hop for a payload limit
// (≤ 0: DefaultMaxPayloadBytes). It saturates at math.MaxInt32, gRPC's own ceiling.
func MessageBytes(payload int64) int {
	return clampInt32(2*EnvelopeBytes(payload) + MessageOverhead)
}

// ResultBytes is R(P): the gRPC result message bound of every hop.
func ResultBytes(payload int64) int {
	return max(MessageBytes(payload), MaxResultBytes)
}

func clampInt32(n int64) int {
	if n > math.MaxInt32 || n < 0 {
		return math.MaxInt32
	}
	return int(n)
}

// ServerMsgSize is the server options of a request-path gRPC server (atom, the loader):
// requests up to MessageBytes, results up to ResultBytes.
func ServerMsgSize(payload int64) []grpc.ServerOption {
	return []grpc.ServerOption{grpc.MaxRecvMsgSize(MessageBytes(payload)), grpc.MaxSendMsgSize(ResultBytes(payload))}
}

// CallMsgSize is the dial option of a request-path client (webgate→atom, atom→loader):
// requests sent up to MessageBytes, results received up to ResultBytes.
func CallMsgSize(payload int64) grpc.DialOption {
	return grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(MessageBytes(payload)), grpc.MaxCallRecvMsgSize(ResultBytes(payload)))
}
