// Package rawstream carries a bidi stream of protobuf messages on a TCP (or TLS)
// connection of its own, beside a gRPC server on the same port, without HTTP/2.
//
// A gRPC stream message crosses two goroutines on each side: the sender's hands it to the
// connection's writer goroutine (grpc-go's loopy writer), which frames and writes it; the
// receiver's reader goroutine reads and hands it to the goroutine blocked in Recv. On an
// internal hop where every call is a message each way (libs/callmux), those four hand-offs
// are most of a call's latency on an idle machine and a good part of its CPU. A rawstream
// sender writes its message itself (senders arriving while a write is under way add theirs
// to the next write, so a busy stream still batches), and Recv reads it itself.
//
// The server side is a Listener that splits a port: each connection is sorted by the
// protocol its client asks for (the TLS ALPN name Proto under TLS, the magic bytes Magic
// in plaintext) and either handed to the gRPC server, through Listener.GRPC, or served by
// the stream handler its hello names. Under TLS the Listener does the handshake, so the
// gRPC server takes ServerCreds instead of its TLS credentials; its handlers see the same
// peer (credentials.TLSInfo) as before, so grpcx.IdentityFromContext and AllowCallers
// work unchanged. Stream handlers are checked against their own list of caller services
// before they run.
//
// The wire (docs/contracts.md "Raw streams"): the client writes Magic, then a hello frame
// naming the method; the server answers with a hello frame (accepted) or an end frame (a
// status: unknown method, caller not allowed) and the stream runs: message frames both
// ways, a close-send frame from the client when it sends no more, an end frame with the
// handler's status from the server, which then closes the connection. A frame is a type
// byte, a 4-byte big-endian length and that many bytes.
//
// Client (atom to a loader), a callmux opener that falls back to the gRPC stream:
//
//	d := &rawstream.Dialer{Target: addr, TLS: tb.ClientConfig("loader"), MaxRecv: n}
//	open := rawstream.Opener(d, loaderpb.Loader_OnceStream_FullMethodName, lc.OnceStream)
//
// Server (the loader):
//
//	ln := rawstream.Listen(tcp, rawstream.ListenOptions{TLS: tb.ServerConfig(), Log: log})
//	ln.Handle(loaderpb.Loader_OnceStream_FullMethodName, []string{"atom"}, func(c *rawstream.Conn) error {
//		return mux.Serve(rawstream.ServerStream[loaderpb.OnceCall, loaderpb.OnceReply](c))
//	})
//	srv := grpcx.NewServer("loader", log, reg, rawstream.ServerCreds(tb != nil)) // Serve(ln.GRPC())
package rawstream
