package rawstream

import (
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// clientStream is a client Conn as the gRPC stream of a generated client.
type clientStream[C, R any] struct{ *Conn }

var _ grpc.BidiStreamingClient[struct{}, struct{}] = clientStream[struct{}, struct{}]{}

// ClientStream returns c as grpc.BidiStreamingClient[C, R]: the gRPC stream it stands
// for. Header is empty metadata (the server accepted the stream before Dial returned);
// Trailer is nil.
func ClientStream[C, R any](c *Conn) grpc.BidiStreamingClient[C, R] { return clientStream[C, R]{c} }

func (s clientStream[C, R]) Send(m *C) error              { return s.SendMsg(m) }
func (s clientStream[C, R]) Header() (metadata.MD, error) { return metadata.MD{}, nil }
func (s clientStream[C, R]) Trailer() metadata.MD         { return nil }
func (s clientStream[C, R]) CloseSend() error             { return s.Conn.CloseSend() }
func (s clientStream[C, R]) Recv() (*R, error) {
	m := new(R)
	if err := s.RecvMsg(m); err != nil {
		return nil, err
	}
	return m, nil
}

// serverStream is a server Conn as the stream a generated service handler gets.
type serverStream[C, R any] struct{ *Conn }

var _ grpc.BidiStreamingServer[struct{}, struct{}] = serverStream[struct{}, struct{}]{}

// ServerStream returns c as grpc.BidiStreamingServer[C, R]: what the service's handler
// of the gRPC stream takes. Headers and trailers are not carried (SendHeader is a no-op:
// the Listener accepted the stream before the handler ran).
func ServerStream[C, R any](c *Conn) grpc.BidiStreamingServer[C, R] { return serverStream[C, R]{c} }

func (s serverStream[C, R]) Send(m *R) error              { return s.SendMsg(m) }
func (s serverStream[C, R]) SetHeader(metadata.MD) error  { return nil }
func (s serverStream[C, R]) SendHeader(metadata.MD) error { return nil }
func (s serverStream[C, R]) SetTrailer(metadata.MD)       {}
func (s serverStream[C, R]) Recv() (*C, error) {
	m := new(C)
	if err := s.RecvMsg(m); err != nil {
		return nil, err
	}
	return m, nil
}
