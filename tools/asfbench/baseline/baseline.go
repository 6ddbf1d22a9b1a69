// Package baseline holds the servers the suite is compared with in the same bench run: a bare
// Go net/http JSON echo (ASE once, ASE WebSocket and OIP v2 routes: the floor for the HTTP path),
// a bare gRPC echo answering any method (the floor for one hop), and a FastAPI + uvicorn server
// running the Python identity function.
package baseline

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"google.golang.org/grpc"

	"github.com/athenaserving/asf/tools/asfbench/targets"
)

// aseRequest is the part of an ASE request the echo needs.
type aseRequest struct {
	Header struct {
		AppID  string `json:"app_id"`
		Status int    `json:"status"`
	} `json:"header"`
	Payload map[string]map[string]any `json:"payload"`
}

type aseHeader struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	SID     string `json:"sid"`
	Status  int    `json:"status"`
}

type aseResponse struct {
	Header  aseHeader                 `json:"header"`
	Payload map[string]map[string]any `json:"payload,omitempty"`
}

// HTTPEcho is the bare net/http echo server.
type HTTPEcho struct {
	srv      *http.Server
	ln       net.Listener
	upgrader websocket.Upgrader
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[*websocket.Conn]struct{}
}

// NewHTTPEcho listens on addr (use 127.0.0.1:0).
func NewHTTPEcho(addr string) (*HTTPEcho, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	e := &HTTPEcho{ln: ln, conns: map[*websocket.Conn]struct{}{},
		upgrader: websocket.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 4096}}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/private/", e.ase)
	mux.HandleFunc("POST /v2/models/{model}/infer", e.oip)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	e.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return e, nil
}

// URL returns http://host:port.
func (e *HTTPEcho) URL() string { return "http://" + e.ln.Addr().String() }

// Run serves until Shutdown.
func (e *HTTPEcho) Run() error {
	if err := e.srv.Serve(e.ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown: (1) stop accepting and close idle HTTP connections, (2) close every WebSocket
// (hijacked connections are not tracked by http.Server), (3) wait for their handlers.
func (e *HTTPEcho) Shutdown(ctx context.Context) error {
	err := e.srv.Shutdown(ctx)
	e.mu.Lock()
	for c := range e.conns {
		_ = c.Close()
	}
	e.mu.Unlock()
	e.wg.Wait()
	return err
}

func (e *HTTPEcho) ase(w http.ResponseWriter, r *http.Request) {
	if websocket.IsWebSocketUpgrade(r) {
		e.stream(w, r)
		return
	}
	if r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	var req aseRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(aseResponse{Header: aseHeader{Code: 10163, Message: err.Error()}})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(aseResponse{
		Header:  aseHeader{Code: 0, Message: "success", SID: "bench-echo", Status: 3},
		Payload: req.Payload,
	})
}

// stream answers each frame with one result and closes after the result with status 2.
func (e *HTTPEcho) stream(w http.ResponseWriter, r *http.Request) {
	c, err := e.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	e.mu.Lock()
	e.conns[c] = struct{}{}
	e.wg.Add(1)
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.conns, c)
		e.mu.Unlock()
		_ = c.Close()
		e.wg.Done()
	}()
	for {
		_, msg, err := c.ReadMessage()
		if err != nil {
			return
		}
		var req aseRequest
		if err := json.Unmarshal(msg, &req); err != nil {
			_ = c.WriteJSON(aseResponse{Header: aseHeader{Code: 10163, Message: err.Error()}})
			return
		}
		resp := aseResponse{Header: aseHeader{Code: 0, Message: "success", SID: "bench-echo", Status: req.Header.Status}, Payload: req.Payload}
		if err := c.WriteJSON(resp); err != nil {
			return
		}
		if req.Header.Status == 2 {
			_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
			return
		}
	}
}

func (e *HTTPEcho) oip(w http.ResponseWriter, r *http.Request) {
	var req targets.OIPRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Inputs) == 0 {
		http.Error(w, `{"error":"bad request"}`, http.StatusBadRequest)
		return
	}
	out := req.Inputs[0]
	out.Name = "output"
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(targets.OIPResponse{ModelName: r.PathValue("model"), ID: req.ID, Outputs: []targets.OIPTensor{out}})
}

// GRPCEcho is a gRPC server that answers every unary method by returning the request bytes.
type GRPCEcho struct {
	srv *grpc.Server
	ln  net.Listener
}

// EchoMethod is the method name the harness calls on the gRPC echo (any name works).
const EchoMethod = "/asf.bench.v1.Echo/Echo"

// NewGRPCEcho listens on addr (use 127.0.0.1:0).
func NewGRPCEcho(addr string) (*GRPCEcho, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := grpc.NewServer(grpc.ForceServerCodec(targets.RawCodec{}), grpc.UnknownServiceHandler(func(_ any, ss grpc.ServerStream) error {
		var f targets.RawFrame
		if err := ss.RecvMsg(&f); err != nil {
			return err
		}
		return ss.SendMsg(&f)
	}))
	return &GRPCEcho{srv: srv, ln: ln}, nil
}

// Addr returns host:port.
func (g *GRPCEcho) Addr() string { return g.ln.Addr().String() }

// Run serves until Stop.
func (g *GRPCEcho) Run() error { return g.srv.Serve(g.ln) }

// Stop stops the server gracefully.
func (g *GRPCEcho) Stop() { g.srv.GracefulStop() }
