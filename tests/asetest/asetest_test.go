package asetest

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
	"github.com/athenaserving/asf/services/webgate"
	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
)

// echo answers with the frame's payload and status; streams end after status 2.
type echo struct{ atompb.UnimplementedAtomServer }

func (echo) Call(_ context.Context, f *atompb.Frame) (*atompb.Result, error) {
	return &atompb.Result{Sid: f.GetSid(), Status: 3, Payload: f.GetPayload()}, nil
}

func (echo) Stream(ss atompb.Atom_StreamServer) error {
	for {
		f, err := ss.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := ss.Send(&atompb.Result{Sid: f.GetSid(), Status: f.GetStatus(), Payload: f.GetPayload()}); err != nil {
			return err
		}
		if f.GetStatus() == 2 {
			return nil
		}
	}
}

var demo = Credentials{AppID: "demo", APIKey: "dkey", APISecret: "dsecret"}

func startGate(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	atompb.RegisterAtomServer(gs, echo{})
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	cfg := webgate.DefaultConfig()
	cfg.HTTPListen, cfg.AdminListen, cfg.AtomAddr = "127.0.0.1:0", "127.0.0.1:0", lis.Addr().String()
	cfg.DemoApp = demo.AppID + ":" + demo.APIKey + ":" + demo.APISecret
	cfg.DrainTimeout = 10 * time.Millisecond
	srv, err := webgate.New(cfg, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return "http://" + srv.HTTPAddr()
}

func TestClientAgainstWebgate(t *testing.T) {
	base := startGate(t)
	ctx := t.Context()
	c := New(base, &demo)
	for _, headerForm := range []bool{false, true} {
		c.HeaderForm = headerForm
		r, err := c.Once(ctx, "echo", Frame{Status: 3, Params: map[string]any{"k": 1}, Payload: map[string]Data{"input": Text("hello")}})
		if err != nil || r.HTTPStatus != 200 || r.Header.Code != 0 || r.StatusValue() != 3 {
			t.Fatalf("once (header form %v): %v %+v %s", headerForm, err, r, r.Raw)
		}
		if b, _ := r.Bytes("input"); string(b) != "hello" {
			t.Fatalf("echo %q", b)
		}
	}
	r, err := New(base, nil).Once(ctx, "echo", Frame{Status: 3})
	if err != nil || r.HTTPStatus != http.StatusUnauthorized || r.Message != "Unauthorized" {
		t.Fatalf("unsigned: %v %+v", err, r)
	}

	s, err := c.Stream(ctx, "echo")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 3 {
		if err := s.Send(Frame{Status: i, Seq: Int(i), OnlyPayload: i > 0, Payload: map[string]Data{"input": Audio(make([]byte, 1280))}}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.RecvUntilEnd(5 * time.Second)
	if err != nil || len(all) != 3 || all[2].StatusValue() != 2 || all[0].Header.Sid == "" {
		t.Fatalf("stream: %v %d responses", err, len(all))
	}
	ce, err := s.WaitClose(5 * time.Second)
	if err != nil || ce.Code != websocket.CloseNormalClosure {
		t.Fatalf("close: %v %v", ce, err)
	}

	m, err := c.Multiplex(ctx, "echo")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for _, cid := range []string{"a", "b"} {
		if err := m.Send(Frame{Status: 0, CID: cid, Payload: map[string]Data{"input": Text(cid)}}); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	for range 2 {
		r, err := m.Recv(5 * time.Second)
		if err != nil || r.Header.Code != 0 {
			t.Fatalf("multiplex: %v %+v", err, r)
		}
		seen[r.Header.Cid] = true
	}
	if !seen["a"] || !seen["b"] {
		t.Fatalf("cids %v", seen)
	}

	bad := New(base, &Credentials{AppID: "demo", APIKey: "dkey", APISecret: "wrong"})
	_, err = bad.Stream(ctx, "echo")
	var de *DialError
	if !errors.As(err, &de) || de.Status != 401 || de.Body != `{"message":"HMAC signature does not match"}` {
		t.Fatalf("bad secret: %v", err)
	}
}
