package transport

import (
	"context"
	"io"
	"net"
	"strconv"
	"sync"
	"time"
)

// refusalBody is the answer to a connection over its source's cap.
const refusalBody = `{"message":"too many unauthenticated connections from this address"}`

// refusal is the whole HTTP answer written to a refused connection before it is closed.
var refusal = []byte("HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json; charset=utf-8\r\nConnection: close\r\nContent-Length: " +
	strconv.Itoa(len(refusalBody)) + "\r\n\r\n" + refusalBody)

const (
	// refuseWait bounds writing the refusal and waiting for the client to read it.
	refuseWait = time.Second
	// maxRefusing bounds the refusals being written at once; beyond it a connection over
	// the cap is closed without an answer.
	maxRefusing = 64
)

// SourceCap is a listener that admits at most Max unauthenticated connections per source
// IP address at once. A connection counts from its accept until a request on it is
// authenticated (AdmitConn) or it closes; a connection over the cap is answered
// `429 {"message":"too many unauthenticated connections from this address"}` and closed
// at once, before any of its bytes are read. Use ConnContext as the http.Server's
// ConnContext so handlers can admit their connection. Max ≤ 0 admits every connection.
type SourceCap struct {
	net.Listener
	max int

	mu      sync.Mutex
	pending map[string]int // unauthenticated connections per source IP
	refused int64

	refusing chan struct{} // a slot per refusal being written
	wg       sync.WaitGroup
}

// NewSourceCap wraps ln with a per-source cap of max unauthenticated connections.
func NewSourceCap(ln net.Listener, max int) *SourceCap {
	return &SourceCap{Listener: ln, max: max, pending: map[string]int{}, refusing: make(chan struct{}, maxRefusing)}
}

// Accept returns the next connection within its source's cap; connections over it are
// answered and closed here.
func (l *SourceCap) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := sourceIP(c.RemoteAddr())
		l.mu.Lock()
		if l.max > 0 && l.pending[ip] >= l.max {
			l.refused++
			l.mu.Unlock()
			l.refuse(c)
			continue
		}
		l.pending[ip]++
		l.mu.Unlock()
		return &capConn{Conn: c, l: l, ip: ip}, nil
	}
}

// Close closes the listener and waits for the refusals being written (each bounded).
func (l *SourceCap) Close() error {
	err := l.Listener.Close()
	l.wg.Wait()
	return err
}

// Pending is the number of unauthenticated connections from ip.
func (l *SourceCap) Pending(ip string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pending[ip]
}

// Refused is the number of connections refused so far.
func (l *SourceCap) Refused() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.refused
}

// refuse answers c with the refusal and closes it, in a goroutine of its own (at most
// maxRefusing at once, each bounded by refuseWait): the client's request is left
// unread, and the answer goes out before the close so the client reads it rather than a
// reset.
func (l *SourceCap) refuse(c net.Conn) {
	select {
	case l.refusing <- struct{}{}:
	default:
		_ = c.Close()
		return
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer func() { <-l.refusing }()
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(refuseWait))
		if _, err := c.Write(refusal); err != nil {
			return
		}
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		// Read what the client sends until it closes (or the deadline), so the close does
		// not reset the connection before the client has read the answer.
		_, _ = io.CopyN(io.Discard, c, 64<<10)
	}()
}

func (l *SourceCap) release(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pending[ip]--; l.pending[ip] <= 0 {
		delete(l.pending, ip)
	}
}

// capConn is an admitted connection; it stops counting once admitted or closed.
type capConn struct {
	net.Conn
	l    *SourceCap
	ip   string
	once sync.Once
}

func (c *capConn) admit() { c.once.Do(func() { c.l.release(c.ip) }) }

// Close releases the connection's place and closes it.
func (c *capConn) Close() error {
	c.admit()
	return c.Conn.Close()
}

// NetConn is the wrapped connection (for http.ResponseController-style unwrapping).
func (c *capConn) NetConn() net.Conn { return c.Conn }

type connKey struct{}

// ConnContext is the http.Server ConnContext hook that lets AdmitConn find the
// connection of a request.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// AdmitConn marks the connection of ctx's request as authenticated: it no longer counts
// against its source's cap of unauthenticated connections. It does nothing for a
// connection not accepted by a SourceCap.
func AdmitConn(ctx context.Context) {
	if c, ok := ctx.Value(connKey{}).(*capConn); ok {
		c.admit()
	}
}

func sourceIP(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}
