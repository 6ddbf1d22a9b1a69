package ws

import (
	"bufio"
	"net"
	"net/http"
	"sync"
)

// Write coalescing on multiplexed connections. The sub-sessions of one socket write their
// results from their own goroutines, and atom's results for several cids often arrive in
// one read of its connection, waking those goroutines together; written one by one they
// would cost a write system call each. Under a multiplexed connection's gorilla conn lies
// a batchConn: a writer adds its message to the open batch and, while other sub-sessions
// of the socket run, yields once before it sends the batch, so the writers woken with it
// add theirs first and one write carries them all. The first writer back sends the
// batch; a writer that finds its message sent returns that write's outcome. A connection
// with one session writes as before.

// maxBatchBuf is the largest batch buffer a connection keeps between batches.
const maxBatchBuf = 256 << 10

// batchConn is the socket of a multiplexed WebSocket connection. While a batch is open,
// writes gather in buf and flush sends them in one write. gorilla writes each frame with
// one Write (past its write buffer, with one Write per part under its own lock, and our
// writers hold wmu), so a batch holds whole frames. Only a holder of the connection's
// wmu opens and flushes a batch; gorilla's control frames (pong, close) written meanwhile
// from other goroutines join the open batch, else go out at once.
type batchConn struct {
	net.Conn
	mu   sync.Mutex
	open bool
	buf  []byte
}

// Write gathers p in the open batch, or writes it.
func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	if b.open {
		b.buf = append(b.buf, p...)
		b.mu.Unlock()
		return len(p), nil
	}
	b.mu.Unlock()
	return b.Conn.Write(p)
}

// hold opens a batch (wmu held).
func (b *batchConn) hold() {
	b.mu.Lock()
	b.open = true
	b.mu.Unlock()
}

// flush closes the batch and writes what it gathered in one write (wmu held).
func (b *batchConn) flush() error {
	b.mu.Lock()
	b.open = false
	buf := b.buf
	b.mu.Unlock()
	if len(buf) == 0 {
		return nil
	}
	_, err := b.Conn.Write(buf)
	if cap(buf) > maxBatchBuf {
		buf = nil
	}
	b.mu.Lock()
	b.buf = buf[:0]
	b.mu.Unlock()
	return err
}

// batchWriter is the ResponseWriter of a multiplexed connection's upgrade: the socket the
// upgrader hijacks comes wrapped in a batchConn.
type batchWriter struct {
	http.ResponseWriter
	hj   http.Hijacker
	conn *batchConn
}

// Hijack hijacks the connection and wraps it.
func (w *batchWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := w.hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.conn = &batchConn{Conn: nc}
	return w.conn, brw, nil
}

// writeBatched writes b on a multiplexed connection (see above). A failed batch write
// fails it and every later write of the connection (werr).
func (c *wsConn) writeBatched(b []byte) error {
	c.wmu.Lock()
	if c.werr != nil {
		defer c.wmu.Unlock()
		return c.werr
	}
	c.batch.hold()
	err := c.writeLocked(b)
	if err == nil && c.live.Load() > 1 {
		c.wmu.Unlock()
		c.yield() // the other sub-sessions' writers woken with this one add theirs
		c.wmu.Lock()
	}
	defer c.wmu.Unlock()
	if ferr := c.batch.flush(); ferr != nil {
		c.werr = ferr
	}
	if err != nil {
		return err
	}
	return c.werr // this message went out with this flush or an earlier writer's
}
