package transport

import (
	"github.com/athenaserving/asf/libs/callmux/muxwire"
	loaderpb "github.com/athenaserving/asf/libs/proto/loader/v1"
	"github.com/athenaserving/asf/libs/rawstream"
)

// OnceStream runs the once requests atom sends on one long-lived stream, each exactly as
// Once (its licence slot, errors, metrics, log line and span), concurrently, answered as
// they finish (libs/callmux).
func (g *Server) OnceStream(st loaderpb.Loader_OnceStreamServer) error { return g.mux.Serve(st) }

// ServeRaw serves OnceStream on ln's raw streams too (libs/rawstream: the same calls on a
// connection of its own, what atom opens first), for atom (and the tools).
func (g *Server) ServeRaw(ln *rawstream.Listener) { muxwire.ServeLoader(ln, g.mux, "atom") }

// DrainStreams ends every OnceStream without losing a once request: atom is told to send
// no more on it, the requests running finish, later ones are answered "not run" (atom
// sends those over unary Once, which a loader shutting down answers with 10110 or 10222,
// so they move to the next loader), and the stream ends once all are answered. It returns
// at once; Shutdown passes it to lifecycle.StopWithin, so the streams do not hold up the
// graceful stop.
func (g *Server) DrainStreams() { g.mux.Drain() }

// Close stops the goroutines that run OnceStream's requests; call it once the gRPC
// server has stopped.
func (g *Server) Close() { g.mux.Close() }
