package rawstream

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/grpcx"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// vtMessage is a message with vtprotobuf's generated marshalling (every message of
// libs/proto); others go through proto.Marshal.
type vtMessage interface {
	SizeVT() int
	MarshalToSizedBufferVT(dAtA []byte) (int, error)
	UnmarshalVT(dAtA []byte) error
}

// readBuffer is the size of a connection's read buffer: a message up to it is decoded
// in place.
const readBuffer = 32 << 10

// batchBytes is the size below which a sender that is about to write yields first.
const batchBytes = 16 << 10

// writeTimeout bounds one write: a peer that stops reading for that long (a frozen
// process whose socket buffers are full) breaks the stream instead of holding its senders.
const writeTimeout = 10 * time.Second

// Conn is one stream on its connection: the end of the client (Dial) or of the server (a
// Listener handler). SendMsg may be called from several goroutines; RecvMsg from one at a
// time. Close ends the stream at once.
type Conn struct {
	nc      net.Conn
	ctx     context.Context
	cancel  context.CancelFunc
	method  string
	maxRecv int
	server  bool

	rmu sync.Mutex  // held by RecvMsg, and by end while it reads the connection to its end
	fr  frameReader // guarded by rmu; fr.err: nothing more to read (io.EOF: the client's close-send)

	wmu      sync.Mutex
	wbuf     []byte // frames waiting for the writer
	spare    []byte
	writing  bool       // a sender is writing; others append to wbuf
	werr     error      // the first write failure: every later send fails with it
	sentEnd  bool       // server: the end frame is queued; client: close-send is
	closeErr error      // why the stream was closed locally (Close)
	flushed  *sync.Cond // on wmu: a write ended (made by waitFlushed)

	closeOnce sync.Once
}

func newConn(ctx context.Context, nc net.Conn, br *bufio.Reader, method string, maxRecv int, server bool) *Conn {
	c := &Conn{nc: nc, method: method, maxRecv: maxRecv, server: server, fr: frameReader{r: br}}
	c.ctx, c.cancel = context.WithCancel(ctx)
	return c
}

// Method is the stream's full method name ("/asf.loader.v1.Loader/OnceStream").
func (c *Conn) Method() string { return c.method }

// Context is the stream's context: on a server, the peer's (peer.FromContext) and
// cancelled when the stream ends; on a client, the dial's, cancelled when it ends.
func (c *Conn) Context() context.Context { return c.ctx }

// SendMsg sends m, a protobuf message. The message is written by this goroutine, or, when
// another sender is writing, by that one along with its own: SendMsg then returns before
// the bytes are on the wire, as a gRPC stream's Send does.
func (c *Conn) SendMsg(m any) error {
	if v, ok := m.(vtMessage); ok { // encoded straight into the write queue
		return c.send(frameMsg, v.SizeVT(), func(b []byte) error {
			_, err := v.MarshalToSizedBufferVT(b)
			return err
		})
	}
	b, err := marshal(m)
	if err != nil {
		return err
	}
	return c.sendBytes(frameMsg, b)
}

func (c *Conn) sendBytes(typ byte, payload []byte) error {
	return c.send(typ, len(payload), func(b []byte) error {
		copy(b, payload)
		return nil
	})
}

// send queues a frame of size payload bytes, which fill writes, and writes the queue
// unless another sender is writing it.
func (c *Conn) send(typ byte, size int, fill func([]byte) error) error {
	c.wmu.Lock()
	if c.werr != nil {
		err := c.werr
		c.wmu.Unlock()
		return err
	}
	if c.sentEnd {
		c.wmu.Unlock()
		return status.Error(codes.Internal, "rawstream: send after the stream's end")
	}
	start := len(c.wbuf)
	c.wbuf = appendFrame(c.wbuf, typ, size)
	c.wbuf = append(c.wbuf, make([]byte, size)...)
	if err := fill(c.wbuf[start+headerLen:]); err != nil {
		c.wbuf = c.wbuf[:start]
		c.wmu.Unlock()
		return grpcx.ToStatus(fmt.Errorf("rawstream: marshal: %w: %w", err, aserr.ErrInternal))
	}
	if typ == frameEnd || typ == frameCloseSnd {
		c.sentEnd = true
	}
	if c.writing {
		c.wmu.Unlock()
		return nil
	}
	c.writing = true
	if len(c.wbuf) < batchBytes {
		// Let the senders that are ready add theirs first, as grpc-go's writer does: a
		// write per message costs a busy stream more than this yield (nothing else ready:
		// it returns at once).
		c.wmu.Unlock()
		runtime.Gosched()
		c.wmu.Lock()
	}
	for len(c.wbuf) > 0 && c.werr == nil {
		out := c.wbuf
		c.wbuf = c.spare[:0]
		c.wmu.Unlock()
		_ = c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
		_, err := c.nc.Write(out)
		c.wmu.Lock()
		if cap(out) <= 256<<10 {
			c.spare = out[:0]
		} else {
			c.spare = nil // a large message: do not keep its buffer
		}
		if err != nil {
			c.werr = brokenError(err)
			if c.closeErr != nil {
				c.werr = c.closeErr
			}
		}
	}
	c.writing = false
	if c.flushed != nil {
		c.flushed.Broadcast()
	}
	err := c.werr
	c.wmu.Unlock()
	if err != nil {
		c.Close()
	}
	return err
}

// RecvMsg reads the next message into m. On a server it returns io.EOF once the client
// closed its side; on a client, io.EOF once the server ended the stream with OK, else the
// status the server ended it with. A broken connection is Unavailable (ASE 10222).
func (c *Conn) RecvMsg(m any) error {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.fr.err != nil {
		return c.fr.err
	}
	typ, p, err := c.fr.next(c.maxRecv)
	if err != nil {
		err = c.readFailed(err)
		if c.fr.err == nil {
			c.fr.err = err // the connection is read to its end
		}
		return err
	}
	switch {
	case typ == frameMsg:
		if err := unmarshal(p, m); err != nil {
			c.Close()
			return err
		}
		return nil
	case c.server && typ == frameCloseSnd && len(p) == 0:
		c.fr.err = io.EOF
		return io.EOF
	case !c.server && typ == frameEnd:
		err := endError(p)
		c.Close()
		if err == nil {
			return io.EOF
		}
		return err
	}
	return c.readFailed(fmt.Errorf("%w: unexpected frame %q", errFrame, typ))
}

func (c *Conn) readFailed(err error) error {
	c.wmu.Lock()
	closed := c.closeErr
	c.wmu.Unlock()
	if closed != nil {
		return closed
	}
	switch {
	case errors.Is(err, errFrame):
		err = status.Error(codes.Internal, err.Error())
	case status.Code(err) == codes.ResourceExhausted:
	default:
		c.Close()
		return brokenError(err)
	}
	// The peer's bytes cannot be read on: a server still tells its client why (the
	// handler returns this error and end sends it); a client ends the stream.
	c.fr.err = err
	if !c.server {
		c.Close()
	}
	return err
}

// Peer is the address of the other end (callmux.Peer).
func (c *Conn) Peer() string { return c.nc.RemoteAddr().String() }

// ConcurrentSend marks a Conn's streams as taking Sends from several goroutines at once
// (callmux.ConcurrentSender).
func (c *Conn) ConcurrentSend() {}

// CloseSend tells the server that no more messages come (client side).
func (c *Conn) CloseSend() error { return c.sendBytes(frameCloseSnd, nil) }

// end sends the stream's status (server side) and closes the connection once it is written.
//
// The connection is closed only once the client closed its end, so that nothing the client
// sent stays unread when it is closed: a socket closed with unread data resets the
// connection, which may discard what was still on its way to the client, the end frame
// and the last replies among it. So end waits until the end frame is written, closes the
// sending side (the client reads the end and closes), and reads, discarding, until the
// client's close (or a RecvMsg under way sees it), for at most lingerTimeout.
func (c *Conn) end(err error) {
	if c.sendBytes(frameEnd, endPayload(err)) == nil && c.waitFlushed() == nil {
		closeWrite(c.nc)
		_ = c.nc.SetReadDeadline(time.Now().Add(lingerTimeout))
		c.rmu.Lock()
		for c.fr.err == nil {
			if _, _, err := c.fr.next(c.maxRecv); err != nil {
				c.fr.err = err
			}
		}
		c.rmu.Unlock()
	}
	c.Close()
}

// lingerTimeout bounds how long a server waits for its client to close a stream it ended.
const lingerTimeout = 5 * time.Second

// waitFlushed waits until no write is under way: what was sent is written (or failed).
func (c *Conn) waitFlushed() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	for c.writing {
		if c.flushed == nil {
			c.flushed = sync.NewCond(&c.wmu)
		}
		c.flushed.Wait()
	}
	return c.werr
}

// closeWrite closes the sending side of nc (TLS: close_notify, then the TCP side).
func closeWrite(nc net.Conn) {
	if tc, ok := nc.(*tls.Conn); ok {
		_ = tc.CloseWrite()
		nc = tc.NetConn()
	}
	if cw, ok := nc.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}

// Close ends the stream: the connection is closed, a RecvMsg under way returns
// Canceled, and the context is cancelled.
func (c *Conn) Close() {
	c.closeOnce.Do(func() {
		c.wmu.Lock()
		if c.werr == nil {
			c.closeErr = status.Error(codes.Canceled, "rawstream: stream closed")
		}
		c.wmu.Unlock()
		c.cancel()
		_ = c.nc.Close()
	})
}

// marshal encodes m, a protobuf message without vtprotobuf's methods.
func marshal(m any) ([]byte, error) {
	pm, ok := m.(proto.Message)
	if !ok {
		return nil, status.Errorf(codes.Internal, "rawstream: marshal %T: not a protobuf message", m)
	}
	b, err := proto.Marshal(pm)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "rawstream: marshal %T: %v", m, err)
	}
	return b, nil
}

// unmarshal decodes p into m, replacing its contents; the bytes fields are copied, so p
// may be reused.
func unmarshal(p []byte, m any) error {
	var err error
	switch v := m.(type) {
	case vtMessage:
		if r, ok := m.(interface{ Reset() }); ok {
			r.Reset()
		}
		err = v.UnmarshalVT(p)
	case proto.Message:
		err = proto.Unmarshal(p, v)
	default:
		return status.Errorf(codes.Internal, "rawstream: unmarshal into %T: not a protobuf message", m)
	}
	if err != nil {
		return grpcx.ToStatus(fmt.Errorf("rawstream: unmarshal %T: %w: %w", m, err, aserr.ErrInvalidData))
	}
	return nil
}
