package ase

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/gorilla/websocket"
)

// socket is a WebSocket with serialized writes; reads belong to one reader.
type socket struct {
	conn *websocket.Conn
	wmu  sync.Mutex
}

func (s *socket) write(b []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.conn.WriteMessage(websocket.TextMessage, b); err != nil {
		return fmt.Errorf("ase: send: %w", err)
	}
	return nil
}

// read returns the next message; a normal close (1000, sent by the edge after a session's
// last result or error) is io.EOF.
func (s *socket) read() ([]byte, error) {
	_, b, err := s.conn.ReadMessage()
	if err != nil {
		if websocket.IsCloseError(err, websocket.CloseNormalClosure) {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("ase: receive: %w", err)
	}
	return b, nil
}

// close sends a normal close frame and closes the connection.
func (s *socket) close() error {
	s.wmu.Lock()
	_ = s.conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	s.wmu.Unlock()
	return s.conn.Close()
}

// Stream is one session over a WebSocket. Send and Recv may run in different goroutines
// (one of each); Close ends it.
type Stream struct {
	service string
	appID   string
	sock    *socket
	mu      sync.Mutex
	sent    bool
}

// Stream opens a session with capability service (an id or a route path).
func (c *Client) Stream(ctx context.Context, service string) (*Stream, error) {
	conn, err := c.dial(ctx, Route(service), "")
	if err != nil {
		return nil, err
	}
	return &Stream{service: serviceID(service), appID: c.Credentials.AppID, sock: &socket{conn: conn}}, nil
}

// Send sends one frame with status (StatusBegin for the first, StatusContinue, StatusEnd
// for the last). The first frame carries app_id, req.Header and req.Parameter; later
// frames only their payload and status.
func (s *Stream) Send(status int, req Request) error {
	s.mu.Lock()
	first := !s.sent
	s.sent = true
	s.mu.Unlock()
	b, err := req.encode(s.service, s.appID, "", status, first)
	if err != nil {
		return err
	}
	return s.sock.write(b)
}

// Recv returns the next result. An error frame is an *Error (with the response); after the
// result with StatusEnd or an error frame the edge closes the socket and Recv returns io.EOF.
func (s *Stream) Recv() (*Response, error) {
	b, err := s.sock.read()
	if err != nil {
		return nil, err
	}
	return ParseResponse(b)
}

// Close closes the socket (a normal close; before the last result it aborts the session).
func (s *Stream) Close() error { return s.sock.close() }

// Mux is a multiplexed socket (?stream_mode=multiplex): many sub-sessions, each named by
// its cid, on one WebSocket. Its reader goroutine hands each result to its sub-session;
// Close stops it.
type Mux struct {
	service, appID string
	sock           *socket
	done           chan struct{}

	mu   sync.Mutex
	subs map[string]*SubSession
	err  error // the connection's end, once the reader stopped
}

// Multiplex opens a multiplexed socket to capability service.
func (c *Client) Multiplex(ctx context.Context, service string) (*Mux, error) {
	conn, err := c.dial(ctx, Route(service), "stream_mode=multiplex")
	if err != nil {
		return nil, err
	}
	m := &Mux{service: serviceID(service), appID: c.Credentials.AppID, sock: &socket{conn: conn},
		done: make(chan struct{}), subs: map[string]*SubSession{}}
	go m.read()
	return m, nil
}

// read dispatches results by cid until the socket ends; a result without a cid (a
// connection-level error) ends every sub-session.
func (m *Mux) read() {
	defer close(m.done)
	for {
		b, err := m.sock.read()
		if err != nil {
			m.end(err)
			return
		}
		resp, perr := ParseResponse(b)
		if resp == nil {
			m.end(perr)
			return
		}
		m.mu.Lock()
		sub := m.subs[resp.Cid]
		m.mu.Unlock()
		if sub == nil {
			if resp.Cid == "" && perr != nil {
				m.end(perr)
				return
			}
			continue // a result of a sub-session nobody opened here
		}
		sub.results <- result{resp, perr}
		if perr != nil || resp.Status == StatusEnd {
			m.mu.Lock()
			delete(m.subs, resp.Cid)
			m.mu.Unlock()
			close(sub.results)
		}
	}
}

// end hands err to every open sub-session and closes them.
func (m *Mux) end(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.err = err
	for cid, sub := range m.subs {
		if !errors.Is(err, io.EOF) {
			select { // never blocks the reader: a full buffer keeps its results
			case sub.results <- result{nil, err}:
			default:
			}
		}
		close(sub.results)
		delete(m.subs, cid)
	}
}

// Session returns the sub-session cid; its first Send begins it at the edge. Results
// are buffered (64); read each sub-session's results so that the others go on.
func (m *Mux) Session(cid string) (*SubSession, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return nil, fmt.Errorf("ase: socket ended: %w", m.err)
	}
	if _, ok := m.subs[cid]; ok || cid == "" {
		return nil, fmt.Errorf("ase: sub-session %q: empty or already open", cid)
	}
	s := &SubSession{cid: cid, m: m, results: make(chan result, 64)}
	m.subs[cid] = s
	return s, nil
}

// Close closes the socket and waits for the reader.
func (m *Mux) Close() error {
	err := m.sock.close()
	<-m.done
	return err
}

type result struct {
	resp *Response
	err  error
}

// SubSession is one session of a Mux.
type SubSession struct {
	cid     string
	m       *Mux
	results chan result
	mu      sync.Mutex
	sent    bool
}

// Cid is the sub-session's id.
func (s *SubSession) Cid() string { return s.cid }

// Send sends one frame of the sub-session with status (see Stream.Send).
func (s *SubSession) Send(status int, req Request) error {
	s.mu.Lock()
	first := !s.sent
	s.sent = true
	s.mu.Unlock()
	b, err := req.encode(s.m.service, s.m.appID, s.cid, status, first)
	if err != nil {
		return err
	}
	return s.m.sock.write(b)
}

// Recv returns the sub-session's next result (an error frame is an *Error); io.EOF after
// its last result.
func (s *SubSession) Recv(ctx context.Context) (*Response, error) {
	select {
	case r, ok := <-s.results:
		if !ok {
			return nil, io.EOF
		}
		return r.resp, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
