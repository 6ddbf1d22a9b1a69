package transport

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/callmux"
	"github.com/athenaserving/asf/libs/callmux/muxwire"
	"github.com/athenaserving/asf/libs/grpcx"
	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
	loaderpb "github.com/athenaserving/asf/libs/proto/loader/v1"
	"github.com/athenaserving/asf/libs/rawstream"
	"github.com/athenaserving/asf/services/atom/convert"
	"github.com/athenaserving/asf/services/atom/route"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
)

// Server serves the Atom gRPC service over a route.Router.
type Server struct {
	atompb.UnimplementedAtomServer
	router *route.Router
	m      *Metrics
	log    zerolog.Logger
	mux    *muxwire.AtomServer // serves CallStream
}

var _ atompb.AtomServer = (*Server)(nil)

// NewServer returns the Atom service over router. rec records the once requests that come
// over CallStream as the server's interceptors record a unary Call
// (grpcx.NewCallRecorder; nil: not recorded). Close stops it.
func NewServer(router *route.Router, m *Metrics, log zerolog.Logger, rec *grpcx.CallRecorder) *Server {
	s := &Server{router: router, m: m, log: log}
	s.mux = muxwire.NewAtomServer(s.Call, callmux.ServerOptions{Recorder: rec, Log: log})
	return s
}

// CallStream serves the once requests webgate sends on one long-lived stream, each
// exactly as Call (its routing, retries, result, metrics, log line and span),
// concurrently, answered as they finish (libs/callmux).
func (s *Server) CallStream(st atompb.Atom_CallStreamServer) error { return s.mux.Serve(st) }

// ServeRaw serves CallStream on ln's raw streams too (libs/rawstream: the same calls on a
// connection of their own, what webgate opens first), for webgate (and the tools).
func (s *Server) ServeRaw(ln *rawstream.Listener) { muxwire.ServeAtom(ln, s.mux, "webgate") }

// DrainStreams ends every CallStream without losing a once request: webgate is told to
// send no more on it, the requests running finish, later ones are answered "not run"
// (webgate sends those over unary Call, to another atom once this one's GOAWAY reached
// it), and the stream ends once all are answered. It returns at once; Shutdown passes it
// to lifecycle.StopWithin, so the streams do not hold up the graceful stop.
func (s *Server) DrainStreams() { s.mux.Drain() }

// Close stops the goroutines that run CallStream's requests; call it once the gRPC server
// has stopped.
func (s *Server) Close() { s.mux.Close() }

// canceled reports whether the caller went away (as opposed to a deadline or a failure).
func canceled(ctx context.Context) bool { return errors.Is(ctx.Err(), context.Canceled) }

// Call serves a once request. Failures come back as a Result carrying the code and
// message, so the caller can render any code; only a cancelled call ends with a status.
func (s *Server) Call(ctx context.Context, f *atompb.Frame) (*atompb.Result, error) {
	start := time.Now()
	defer func() { s.m.Hop("atom", time.Since(start)) }()
	capability := f.GetCapability()
	log := s.log.With().Str("sid", f.GetSid()).Str("capability", capability).Logger()
	out, err := s.router.Once(ctx, f)
	if err != nil {
		if canceled(ctx) {
			s.m.Request(capability, code(0, true))
			log.Debug().Msg("once cancelled by the caller")
			return nil, grpcx.ToStatus(context.Canceled)
		}
		log.Debug().Err(err).Int("code", aserr.CodeOf(err)).Msg("once failed")
		s.m.Request(capability, code(aserr.CodeOf(err), false))
		res := convert.ErrorResult(err, f.GetSid(), convert.StatusOnce)
		res.Timing = map[string]int64{convert.TimingAtom: time.Since(start).Nanoseconds()}
		return res, nil
	}
	s.m.Request(capability, "0")
	meta := s.router.Meta(capability)
	res := convert.NewResult(out, meta, f.GetSid(), convert.Expect(f, meta))
	res.Status = convert.StatusOnce // a once request gets one result, whatever status the loader set
	res.Timing[convert.TimingAtom] = time.Since(start).Nanoseconds()
	return res, nil
}

// Stream serves one session: every loader output becomes a Result; a failure becomes one
// Result with its code and message, after which the stream ends without a status error.
// Only a cancelled stream ends with a status.
func (s *Server) Stream(ss grpc.BidiStreamingServer[atompb.Frame, atompb.Result]) error {
	ctx := ss.Context()
	c := &streamClient{ss: ss, router: s.router}
	err := s.router.Stream(ctx, c)
	capability, sid := c.ids()
	log := s.log.With().Str("sid", sid).Str("capability", capability).Logger()
	if err == nil {
		s.m.Session(capability, "0")
		return nil
	}
	if canceled(ctx) {
		s.m.Session(capability, code(0, true))
		log.Debug().Msg("session cancelled by the client")
		return grpcx.ToStatus(context.Canceled)
	}
	log.Debug().Err(err).Int("code", aserr.CodeOf(err)).Msg("session failed")
	s.m.Session(capability, code(aserr.CodeOf(err), false))
	if serr := ss.Send(convert.ErrorResult(err, sid, convert.StatusEnd)); serr != nil {
		return serr
	}
	return nil
}

// streamClient is the router's view of the client stream. Recv runs in the router's
// reader goroutine and Send in its pump; the session ids and the time of the latest
// frame are shared between them.
type streamClient struct {
	ss     grpc.BidiStreamingServer[atompb.Frame, atompb.Result]
	router *route.Router

	mu              sync.Mutex
	capability, sid string
	meta            *convert.Meta
	expect          []*loaderpb.MetaDesc // of the first frame: completes result attributes
	lastFrame       atomic.Int64         // unix ns of the latest client frame, for atom_ns
}

func (c *streamClient) ids() (string, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.capability, c.sid
}

func (c *streamClient) Recv() (*atompb.Frame, error) {
	f, err := c.ss.Recv()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, grpcx.FromStatus(err)
	}
	c.lastFrame.Store(time.Now().UnixNano())
	c.mu.Lock()
	if c.capability == "" && c.sid == "" {
		c.capability, c.sid = f.GetCapability(), f.GetSid()
		c.meta = c.router.Meta(c.capability)
		c.expect = convert.Expect(f, c.meta)
	}
	c.mu.Unlock()
	return f, nil
}

func (c *streamClient) Send(out *loaderpb.LoaderOutput) error {
	c.mu.Lock()
	sid, meta, expect := c.sid, c.meta, c.expect
	c.mu.Unlock()
	res := convert.NewResult(out, meta, sid, expect)
	res.Timing[convert.TimingAtom] = time.Now().UnixNano() - c.lastFrame.Load()
	return c.ss.Send(res)
}
