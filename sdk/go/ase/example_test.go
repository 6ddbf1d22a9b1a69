package ase_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/athenaserving/asf/sdk/go/ase"
)

var demo = ase.Credentials{AppID: "app1", APIKey: "key1", APISecret: "secret1"}

func exampleEdge() (string, func()) {
	srv, _ := newEdge(demo)
	return srv.URL, srv.Close
}

func ExampleClient_Once() {
	base, stop := exampleEdge()
	defer stop()
	c := ase.New(base, demo)
	resp, err := c.Once(context.Background(), "echo", ase.Request{
		Parameter: map[string]any{"prefix": "> "},
		Payload:   []ase.Input{ase.Text("input", "hello")},
	})
	if err != nil {
		fmt.Println(ase.CodeOf(err), err)
		return
	}
	fmt.Println(resp.Code, resp.Status, string(resp.Outputs["result"].Data))
	// Output: 0 3 HELLO
}

func ExampleClient_Once_headerForm() {
	base, stop := exampleEdge()
	defer stop()
	c := ase.New(base, demo)
	c.HeaderAuth = true // Authorization, Date and Digest headers instead of URL parameters
	resp, err := c.Once(context.Background(), "echo", ase.Request{Payload: []ase.Input{ase.Text("input", "signed body")}})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(resp.Outputs["result"].Data))
	// Output: SIGNED BODY
}

func ExampleError() {
	base, stop := exampleEdge()
	defer stop()
	c := ase.New(base, ase.Credentials{AppID: "app1", APIKey: "key1", APISecret: "wrong"})
	_, err := c.Once(context.Background(), "echo", ase.Request{Payload: []ase.Input{ase.Text("input", "x")}})
	var e *ase.Error
	if errors.As(err, &e) {
		fmt.Println(e.HTTPStatus, e.Message)
	}
	// Output: 401 HMAC signature does not match
}

func ExampleClient_Stream() {
	base, stop := exampleEdge()
	defer stop()
	c := ase.New(base, demo)
	s, err := c.Stream(context.Background(), "echo")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	for i, st := range []int{ase.StatusBegin, ase.StatusContinue, ase.StatusEnd} {
		if err := s.Send(st, ase.Request{Payload: []ase.Input{ase.Text("input", fmt.Sprintf("frame %d", i))}}); err != nil {
			fmt.Println(err)
			return
		}
	}
	for {
		r, err := s.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(r.Status, string(r.Outputs["result"].Data))
	}
	// Output:
	// 0 FRAME 0
	// 1 FRAME 1
	// 2 FRAME 2
}

func ExampleMux() {
	base, stop := exampleEdge()
	defer stop()
	c := ase.New(base, demo)
	m, err := c.Multiplex(context.Background(), "echo")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	a, _ := m.Session("a")
	b, _ := m.Session("b")
	_ = a.Send(ase.StatusBegin, ase.Request{Payload: []ase.Input{ase.Text("input", "first of a")}})
	_ = b.Send(ase.StatusEnd, ase.Request{Payload: []ase.Input{ase.Text("input", "only frame of b")}})
	_ = a.Send(ase.StatusEnd, ase.Request{Payload: []ase.Input{ase.Text("input", "last of a")}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, sub := range []*ase.SubSession{a, b} {
		for {
			r, err := sub.Recv(ctx)
			if err != nil {
				break
			}
			fmt.Println(r.Cid, r.Status, string(r.Outputs["result"].Data))
		}
	}
	// Output:
	// a 0 FIRST OF A
	// a 2 LAST OF A
	// b 2 ONLY FRAME OF B
}

func ExampleClient_WebAPIOnce() {
	base, stop := exampleEdge()
	defer stop()
	c := ase.New(base, demo)
	resp, err := c.WebAPIOnce(context.Background(), "/v2/echo", ase.WebAPIRequest{
		Common:   map[string]any{"uid": "u1"},
		Business: map[string]any{"language": "en"},
		Data:     map[string]any{"encoding": "utf8", "text": "aGVsbG8="},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(resp.Code, resp.Status, string(resp.Data["result"]))
	// Output: 0 3 "HELLO"
}

func ExampleSignURL() {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	u, _ := ase.SignURL("ws://127.0.0.1:8889/v1/private/echo", "GET", demo, at)
	fmt.Println(u)
	// Output: ws://127.0.0.1:8889/v1/private/echo?authorization=YXBpX2tleT0ia2V5MSIsIGFsZ29yaXRobT0iaG1hYy1zaGEyNTYiLCBoZWFkZXJzPSJob3N0IGRhdGUgcmVxdWVzdC1saW5lIiwgc2lnbmF0dXJlPSJSS3Z2OFZ3dk9teGZ5WUdkWkppd1lVTWpJOGVPTGYrbUtKeXJYbU5sbUJRPSI%3D&date=Fri%2C+02+Jan+2026+03%3A04%3A05+GMT&host=127.0.0.1%3A8889
}
