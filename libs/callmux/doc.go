// Package callmux carries many unary calls over a few long-lived bidi gRPC streams. A
// unary call costs a new HTTP/2 stream, its headers, a server goroutine and the whole
// interceptor chain on each side; a call on an open stream costs one message each way.
// Calls on a stream are identified by the caller's id, run concurrently on the server and
// answered as they finish. libs/lbpick is the same idea for lbclient's picks.
//
// The client keeps Options.Streams streams per connection, sends each call on the next
// open one, and falls back to the unary RPC while none is open (at start, after a break,
// against a server without the stream RPC, for a call too large to share a stream). A
// caller's deadline travels with the call, its cancel as a message; a broken stream fails
// its calls with the stream's status, as a broken unary call would fail. A server shutting
// down drains its streams (Server.Drain): calls in flight finish, calls that arrive later
// are answered "not run" and the client sends them again over the unary RPC.
//
// A hop supplies its envelope messages (a ClientWire and a ServerWire); package muxwire
// has the suite's two, Loader.OnceStream and Atom.CallStream. Client (atom calling a
// loader):
//
//	c := muxwire.NewLoaderClient(loaderpb.NewLoaderClient(cc), callmux.Options{
//		Streams: 2, Tracer: grpcx.NewCallTracer(tp), Log: log})
//	defer c.Close()
//	out, err := c.Call(ctx, in) // or the status error Once would have returned
//
// Server (the loader), beside its unary Once:
//
//	mux := muxwire.NewLoaderServer(srv.Once, callmux.ServerOptions{
//		Recorder: grpcx.NewCallRecorder("loader", log, reg, tp)}) // after grpcx.NewServer
//	func (s *Server) OnceStream(st loaderpb.Loader_OnceStreamServer) error { return mux.Serve(st) }
//	// Shutdown: lifecycle.StopWithin(ctx, grpcServer, mux.Drain), then mux.Close()
package callmux
