// Package muxwire puts the suite's two multiplexed hops on libs/callmux: once requests
// from atom to a loader over Loader.OnceStream, and from webgate to atom over
// Atom.CallStream. Each hop's caller and server build their callmux ends here, so both
// sides read the same envelope the same way.
//
//	c := muxwire.NewLoaderClient(loaderpb.NewLoaderClient(cc), callmux.Options{Streams: 2})
//	out, err := c.Call(ctx, in) // as loaderpb.LoaderClient.Once
//
//	srv := muxwire.NewLoaderServer(loader.Once, callmux.ServerOptions{Recorder: rec})
//	// OnceStream(st) { return srv.Serve(st) }
package muxwire

import (
	"github.com/athenaserving/asf/libs/callmux"
	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
	loaderpb "github.com/athenaserving/asf/libs/proto/loader/v1"
	"github.com/athenaserving/asf/libs/rawstream"
)

type (
	// LoaderClient sends once requests to one loader (or the replicas of a connection).
	LoaderClient = callmux.Client[loaderpb.LoaderInput, loaderpb.LoaderOutput, loaderpb.OnceCall, loaderpb.OnceReply]
	// LoaderServer serves a loader's OnceStreams.
	LoaderServer = callmux.Server[loaderpb.LoaderInput, loaderpb.LoaderOutput, loaderpb.OnceCall, loaderpb.OnceReply]
	// AtomClient sends once requests to atom.
	AtomClient = callmux.Client[atompb.Frame, atompb.Result, atompb.CallRequest, atompb.CallReply]
	// AtomServer serves atom's CallStreams.
	AtomServer = callmux.Server[atompb.Frame, atompb.Result, atompb.CallRequest, atompb.CallReply]
)

// NewLoaderClient returns the client of lc's OnceStream, falling back to lc's Once; it
// names its calls (spans) Loader/Once. A request's size is its payload bytes.
func NewLoaderClient(lc loaderpb.LoaderClient, opts callmux.Options) *LoaderClient {
	opts.Method = loaderpb.Loader_Once_FullMethodName
	opts.StreamMethod = loaderpb.Loader_OnceStream_FullMethodName
	return callmux.NewClient(lc.OnceStream, lc.Once, clientWire((*loaderpb.OnceReply).GetOutput, loaderSize,
		func(h callmux.CallHeader, in *loaderpb.LoaderInput) *loaderpb.OnceCall {
			c := &loaderpb.OnceCall{Id: h.ID, Input: in, TimeoutNs: int64(h.Timeout), Cancel: h.Cancel}
			c.TraceIdHi, c.TraceIdLo, c.SpanId, c.TraceFlags, c.TraceContext = h.TraceFields()
			return c
		}), opts)
}

// NewLoaderServer returns the server of OnceStream running each once request with once
// (the loader's unary Once); it records them as Loader/Once calls.
func NewLoaderServer(once callmux.Handler[loaderpb.LoaderInput, loaderpb.LoaderOutput], opts callmux.ServerOptions) *LoaderServer {
	opts.Method = loaderpb.Loader_Once_FullMethodName
	return callmux.NewServer(once, serverWire((*loaderpb.OnceCall).GetInput,
		func(h callmux.ReplyHeader, out *loaderpb.LoaderOutput) *loaderpb.OnceReply {
			return &loaderpb.OnceReply{Id: h.ID, Output: out, GrpcCode: uint32(h.Status), Code: int32(h.Code), Message: h.Message, Drain: h.Drain, NotRun: h.NotRun}
		}), opts)
}

// NewAtomClient returns the client of ac's CallStream, falling back to ac's Call; it
// names its calls (spans) Atom/Call. A request's size is its payload bytes.
func NewAtomClient(ac atompb.AtomClient, opts callmux.Options) *AtomClient {
	opts.Method = atompb.Atom_Call_FullMethodName
	opts.StreamMethod = atompb.Atom_CallStream_FullMethodName
	return callmux.NewClient(ac.CallStream, ac.Call, clientWire((*atompb.CallReply).GetResult, frameSize,
		func(h callmux.CallHeader, f *atompb.Frame) *atompb.CallRequest {
			c := &atompb.CallRequest{Id: h.ID, Frame: f, TimeoutNs: int64(h.Timeout), Cancel: h.Cancel}
			c.TraceIdHi, c.TraceIdLo, c.SpanId, c.TraceFlags, c.TraceContext = h.TraceFields()
			return c
		}), opts)
}

// NewAtomServer returns the server of CallStream running each once request with call
// (atom's unary Call); it records them as Atom/Call calls.
func NewAtomServer(call callmux.Handler[atompb.Frame, atompb.Result], opts callmux.ServerOptions) *AtomServer {
	opts.Method = atompb.Atom_Call_FullMethodName
	return callmux.NewServer(call, serverWire((*atompb.CallRequest).GetFrame,
		func(h callmux.ReplyHeader, res *atompb.Result) *atompb.CallReply {
			return &atompb.CallReply{Id: h.ID, Result: res, GrpcCode: uint32(h.Status), Code: int32(h.Code), Message: h.Message, Drain: h.Drain, NotRun: h.NotRun}
		}), opts)
}

// ServeLoader registers srv's OnceStream on ln as a raw stream (rawstream.Opener's
// counterpart, what callmux.Options.Direct dials) for callers of one of services.
func ServeLoader(ln *rawstream.Listener, srv *LoaderServer, services ...string) {
	ln.Handle(loaderpb.Loader_OnceStream_FullMethodName, services, func(c *rawstream.Conn) error {
		return srv.Serve(rawstream.ServerStream[loaderpb.OnceCall, loaderpb.OnceReply](c))
	})
}

// ServeAtom registers srv's CallStream on ln as a raw stream for callers of one of
// services.
func ServeAtom(ln *rawstream.Listener, srv *AtomServer, services ...string) {
	ln.Handle(atompb.Atom_CallStream_FullMethodName, services, func(c *rawstream.Conn) error {
		return srv.Serve(rawstream.ServerStream[atompb.CallRequest, atompb.CallReply](c))
	})
}

// clientWire is the caller's wire of a hop: newCall builds its call message, resp reads
// the response of a reply, size measures a request.
func clientWire[Req, Resp, C, R any, PR interface {
	*R
	callmux.ReplyMessage
}](resp func(PR) *Resp, size func(*Req) int, newCall func(callmux.CallHeader, *Req) *C) callmux.ClientWire[Req, Resp, C, R] {
	return callmux.ClientWire[Req, Resp, C, R]{
		NewCall:   newCall,
		ReadReply: func(r *R) (callmux.ReplyHeader, *Resp) { return callmux.ReplyHeaderOf(PR(r)), resp(r) },
		Size:      size,
	}
}

// serverWire is the server's wire of a hop: req reads the request of a call message,
// newReply builds a reply message.
func serverWire[Req, Resp, C, R any, PC interface {
	*C
	callmux.CallMessage
}](req func(PC) *Req, newReply func(callmux.ReplyHeader, *Resp) *R) callmux.ServerWire[Req, Resp, C, R] {
	return callmux.ServerWire[Req, Resp, C, R]{
		ReadCall: func(c *C) (callmux.CallHeader, *Req) { return callmux.CallHeaderOf(PC(c)), req(c) },
		NewReply: newReply,
	}
}

// loaderSize is the payload bytes of a loader request.
func loaderSize(in *loaderpb.LoaderInput) (n int) {
	for _, p := range in.GetPl() {
		n += len(p.GetData())
	}
	return n
}

// frameSize is the payload bytes of a frame.
func frameSize(f *atompb.Frame) (n int) {
	for _, it := range f.GetPayload() {
		n += len(it.GetData())
	}
	return n
}
