package grpcx

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/athenaserving/asf/libs/localsock"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
)

// Dial opens a client connection to addr with the suite's defaults: round-robin over
// every address the target resolves to, reconnects at most ReconnectMaxDelay apart (so a
// peer that comes back is used again within about a second), keepalive pings (see
// KeepaliveTime), messages through Codec, and plaintext unless extra holds transport credentials — services pass tlsx.DialOption for mutual TLS, which overrides it. addr is one
// host:port (or any gRPC target), or a comma-separated list of host:port, which Dial
// hands to DialList.
func Dial(addr string, extra ...grpc.DialOption) (*grpc.ClientConn, error) {
	if strings.Contains(addr, ",") {
		return DialList(SplitAddrs(addr), extra...)
	}
	cc, err := grpc.NewClient(addr, append(dialDefaults(), extra...)...)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return cc, nil
}

// roundRobin spreads calls over every address a name resolves to (all replicas behind a
// DNS name, as docker-compose and Kubernetes headless services give), not just the first.
const roundRobin = `{"loadBalancingConfig":[{"round_robin":{}}]}`

// Reconnect back-off of every connection Dial opens. grpc-go's default waits up to 120 s
// between attempts, so a peer back from a long outage stayed unused for up to two minutes
// (19 s were measured after a 30 s lbclient outage). With these, a subchannel tries again
// at most ReconnectMaxDelay (±20 %) after its last failure, so callers use a returned peer
// within about a second.
const (
	// ReconnectBaseDelay is the wait after the first failed connection attempt.
	ReconnectBaseDelay = 100 * time.Millisecond
	// ReconnectMaxDelay bounds the wait between attempts.
	ReconnectMaxDelay = time.Second
	// ConnectTimeout bounds one connection attempt (TCP and TLS handshakes): a peer that
	// accepts but never completes the handshake (a frozen process) is given up on and
	// tried again, instead of holding the attempt for grpc's default 20 s.
	ConnectTimeout = 2 * time.Second
)

// ReconnectParams is the connection back-off Dial applies (callers with other needs pass
// their own grpc.WithConnectParams after it).
func ReconnectParams() grpc.ConnectParams {
	return grpc.ConnectParams{
		Backoff:           backoff.Config{BaseDelay: ReconnectBaseDelay, Multiplier: 1.6, Jitter: 0.2, MaxDelay: ReconnectMaxDelay},
		MinConnectTimeout: ConnectTimeout,
	}
}

// KeepaliveTime is the keepalive ping interval of every connection Dial opens: the
// smallest grpc-go applies (it raises anything lower to 10 s), so a connection whose peer
// vanished without closing it (a host gone, a network cut) fails KeepaliveTime +
// KeepaliveTimeout after the peer's last sign of life. A frozen loader is noticed sooner,
// through lbclient (docs/load-balancing.md "Dropped loaders").
const (
	KeepaliveTime    = 10 * time.Second
	KeepaliveTimeout = 3 * time.Second
)

// StreamWindow and ConnWindow are the HTTP/2 flow-control windows of every connection
// Dial opens and every server NewServer builds: a stream's and the whole connection's
// bytes a sender may have in flight before the receiver's window update. They are static,
// which turns grpc-go's bandwidth-delay estimator off. That estimator answers every data
// frame arriving while none of its pings is out with a window update and a PING, which the
// peer answers in turn: on a lightly loaded hop that is two more frames, writes and
// wake-ups on both sides for every message (docs/performance.md, "Static flow-control
// windows"). The estimator starts at 64 KiB and grows toward the measured bandwidth-delay
// product; these windows cover 8 Gbit/s at 1 ms of round trip per connection, more than an
// internal hop carries, and bound what a receiver buffers for a connection to ConnWindow.
const (
	StreamWindow = 1 << 20
	ConnWindow   = 8 << 20
)

func dialDefaults() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(roundRobin),
		grpc.WithConnectParams(ReconnectParams()),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: KeepaliveTime, Timeout: KeepaliveTimeout, PermitWithoutStream: true}),
		grpc.WithStaticStreamWindowSize(StreamWindow),
		grpc.WithStaticConnWindowSize(ConnWindow),
		CodecDialOption(),
	}
}

// SplitAddrs splits a comma-separated address list, trimming blanks and dropping empty
// entries and repeats.
func SplitAddrs(list string) []string {
	var out []string
	for _, a := range strings.Split(list, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		dup := false
		for _, b := range out {
			dup = dup || a == b
		}
		if !dup {
			out = append(out, a)
		}
	}
	return out
}

// listScheme is the resolver scheme of DialList connections; each connection has its
// own resolver instance, so the name never clashes.
const listScheme = "asf-list"

// DialList opens one client connection over several replicas of a service (host:port
// each) with Dial's defaults and client-side round-robin: every call, and every stream
// as a whole, goes to the next ready replica, so all messages of one stream stay on the
// replica that opened it. A replica that is down is skipped while another is ready.
func DialList(addrs []string, extra ...grpc.DialOption) (*grpc.ClientConn, error) {
	if len(addrs) == 0 {
		return nil, errors.New("dial: empty address list")
	}
	if len(addrs) == 1 {
		return Dial(addrs[0], extra...)
	}
	r := manual.NewBuilderWithScheme(listScheme)
	state := resolver.State{}
	for _, a := range addrs {
		state.Addresses = append(state.Addresses, resolver.Address{Addr: a})
	}
	r.InitialState(state)
	opts := append(dialDefaults(), grpc.WithResolvers(r))
	cc, err := grpc.NewClient(listScheme+":///"+strings.Join(addrs, ","), append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", strings.Join(addrs, ","), err)
	}
	return cc, nil
}

// FastFailure shortens the keepalive ping's answer timeout to one second, so a connection
// to a vanished peer fails about 11 s after the peer's last sign of life (KeepaliveTime,
// which grpc-go does not let a client lower, plus one second) and its calls in flight fail
// with Unavailable and can be retried elsewhere. It cannot promise less: callers that need
// to notice a frozen peer sooner must learn it another way (atom learns from lbclient
// which loaders went silent and closes their connections). Servers built with NewServer
// accept these pings.
func FastFailure() grpc.DialOption {
	return grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: KeepaliveTime, Timeout: time.Second, PermitWithoutStream: true})
}

// Pool keeps one client connection per address, shared by all callers.
// It is safe for concurrent use; Close closes every connection.
type Pool struct {
	mu    sync.Mutex
	conns map[string]*grpc.ClientConn
	opts  []grpc.DialOption
}

// NewPool returns an empty pool whose connections are dialled with opts.
func NewPool(opts ...grpc.DialOption) *Pool {
	return &Pool{conns: map[string]*grpc.ClientConn{}, opts: opts}
}

// Get returns the connection to addr, dialling it on first use.
func (p *Pool) Get(addr string) (*grpc.ClientConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if cc, ok := p.conns[addr]; ok {
		return cc, nil
	}
	cc, err := Dial(addr, p.opts...)
	if err != nil {
		return nil, err
	}
	p.conns[addr] = cc
	return cc, nil
}

// Forget closes and drops the connection to addr (for example when it left the registry).
func (p *Pool) Forget(addr string) {
	p.mu.Lock()
	cc := p.conns[addr]
	delete(p.conns, addr)
	p.mu.Unlock()
	if cc != nil {
		_ = cc.Close()
	}
}

// Close closes every connection.
func (p *Pool) Close() {
	p.mu.Lock()
	conns := p.conns
	p.conns = map[string]*grpc.ClientConn{}
	p.mu.Unlock()
	for _, cc := range conns {
		_ = cc.Close()
	}
}

// LocalSockets makes a connection reach a co-located server over the Unix socket it
// serves in dir (libs/localsock: the server's Listen with the same dir) and any other
// over TCP; the target keeps its host:port, and TLS runs over the socket as over TCP.
// An empty dir changes nothing.
func LocalSockets(dir string) grpc.DialOption {
	if dir == "" {
		return grpc.EmptyDialOption{}
	}
	d := &localsock.Dialer{Dir: dir}
	return grpc.WithContextDialer(d.DialContext)
}
