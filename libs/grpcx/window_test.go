package grpcx

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"golang.org/x/net/http2"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// recordingListener keeps every byte its connections read: what the clients sent.
type recordingListener struct {
	net.Listener
	mu  sync.Mutex
	got bytes.Buffer
}

func (l *recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &recordingConn{Conn: c, l: l}, nil
}

func (l *recordingListener) bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.got.Bytes())
}

type recordingConn struct {
	net.Conn
	l *recordingListener
}

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.l.mu.Lock()
	c.l.got.Write(p[:n])
	c.l.mu.Unlock()
	return n, err
}

// TestStaticWindowsSendNoPings: calls between Dial and NewServer carry no PING frames.
// With grpc-go's bandwidth-delay estimator on, the receiver of each message that finds
// none of its pings out sends one (and the sender answers it), so the client would send
// a PING or a PING ack for nearly every call.
func TestStaticWindowsSendNoPings(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rl := &recordingListener{Listener: ln}
	srv := NewServer("window", zerolog.Nop(), prometheus.NewRegistry())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(rl) }()
	cc, err := Dial(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	hc := healthpb.NewHealthClient(cc)
	const calls = 50
	for range calls {
		if _, err := hc.Check(t.Context(), &healthpb.HealthCheckRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	cc.Close()
	srv.Stop()
	<-done

	b := rl.bytes()
	if !bytes.HasPrefix(b, []byte(http2.ClientPreface)) {
		t.Fatalf("no HTTP/2 client preface in %d bytes", len(b))
	}
	fr := http2.NewFramer(nil, bytes.NewReader(b[len(http2.ClientPreface):]))
	frames := map[http2.FrameType]int{}
	for {
		f, err := fr.ReadFrame()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			t.Fatalf("frame %d: %v", len(frames), err)
		}
		frames[f.Header().Type]++
	}
	if frames[http2.FrameData] < calls {
		t.Fatalf("%d DATA frames for %d calls: %v", frames[http2.FrameData], calls, frames)
	}
	if n := frames[http2.FramePing]; n > 0 {
		t.Fatalf("the client sent %d PING frames in %d calls (the bandwidth-delay estimator is on): %v", n, calls, frames)
	}
}
