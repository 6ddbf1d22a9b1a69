package ase_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/athenaserving/asf/sdk/go/ase"
)

func TestOnceRetriesLicenceRefusals(t *testing.T) {
	srv, e := startEdge(t, demo)
	c := ase.New(srv.URL, demo)
	c.Backoff = time.Millisecond
	e.busy.Store(2)
	resp, err := c.Once(t.Context(), "busy", ase.Request{Payload: []ase.Input{ase.Text("input", "x")}})
	if err != nil || string(resp.Outputs["result"].Data) != "X" {
		t.Fatalf("after two 10110: %v %+v", err, resp)
	}
	e.busy.Store(3)
	_, err = c.Once(t.Context(), "busy", ase.Request{Payload: []ase.Input{ase.Text("input", "x")}})
	var ae *ase.Error
	if !errors.As(err, &ae) || ae.Code != ase.CodeLicence || ae.Sid != "ase0003@test" || ae.HTTPStatus != 502 {
		t.Fatalf("three 10110 with two retries: want the third refusal, got %#v", err)
	}
	if ase.SidOf(err) != "ase0003@test" || !strings.Contains(err.Error(), "10110") {
		t.Fatalf("error text %q", err)
	}
}

func TestOnceRetryStopsWithContext(t *testing.T) {
	srv, e := startEdge(t, demo)
	c := ase.New(srv.URL, demo)
	c.Retries, c.Backoff = 100, time.Hour
	e.busy.Store(100)
	ctx, cancel := context.WithCancel(t.Context())
	// The context ends once the first refusal arrived, while the client waits its backoff.
	c.HTTP = &http.Client{Transport: afterResponse{http.DefaultTransport, cancel}}
	_, err := c.Once(ctx, "busy", ase.Request{Payload: []ase.Input{ase.Text("input", "x")}})
	if !errors.Is(err, context.Canceled) || ase.CodeOf(err) != ase.CodeLicence {
		t.Fatalf("want the refusal and context.Canceled, got %v", err)
	}
}

type afterResponse struct {
	rt   http.RoundTripper
	then func()
}

func (a afterResponse) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := a.rt.RoundTrip(r)
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body = io.NopCloser(bytes.NewReader(b))
		a.then()
	}
	return resp, err
}

func TestRequestRefusesBadItems(t *testing.T) {
	c := ase.New("http://127.0.0.1:1", demo)
	_, err := c.Once(t.Context(), "echo", ase.Request{Payload: []ase.Input{{Name: "x", Type: "blob"}}})
	if err == nil || !strings.Contains(err.Error(), "not one of text") {
		t.Fatalf("got %v", err)
	}
}

func TestParseResponse(t *testing.T) {
	r, err := ase.ParseResponse([]byte(`{"header":{"code":0,"message":"success","sid":"s1","status":2},` +
		`"payload":{"result":{"encoding":"utf8","format":"json","seq":3,"text":{"ws":[1]}},"audio":{"sample_rate":16000,"audio":"AAE="}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Outputs["result"].Data) != `{"ws":[1]}` || r.Outputs["result"].Encoding() != "utf8" {
		t.Fatalf("json output: %+v", r.Outputs["result"])
	}
	if a := r.Outputs["audio"]; a.Type != "audio" || len(a.Data) != 2 || a.Attrs["sample_rate"].(interface{ String() string }).String() != "16000" {
		t.Fatalf("audio output: %+v", a)
	}
	if got := strings.Join(r.Names(), ","); got != "audio,result" {
		t.Fatalf("names %s", got)
	}
	if _, err := ase.ParseResponse([]byte(`{"message":"Unauthorized"}`)); err == nil || ase.CodeOf(err) != 0 || !strings.Contains(err.Error(), "Unauthorized") {
		t.Fatalf("refusal: %v", err)
	}
	if _, err := ase.ParseResponse([]byte(`[]`)); err == nil {
		t.Fatal("a JSON array is no response")
	}
}

func FuzzParseResponse(f *testing.F) {
	f.Add([]byte(`{"header":{"code":0,"sid":"s","status":3},"payload":{"r":{"text":"aGk="}}}`))
	f.Add([]byte(`{"header":{"code":10163,"message":"bad","sid":"s"}}`))
	f.Add([]byte(`{"message":"Unauthorized"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ase.ParseResponse(b)
		if err == nil && r == nil {
			t.Fatal("no response and no error")
		}
		w, err := ase.ParseWebAPIResponse(b)
		if err == nil && w == nil {
			t.Fatal("no WebAPI response and no error")
		}
	})
}

func TestSignRequestMatchesURLFormOrigin(t *testing.T) {
	// The header form signs the digest line after the three URL-form lines.
	o := ase.SignatureOrigin("h:1", "D", "POST", "/p", "SHA-256=x", "host", "date", "request-line", "digest")
	if o != "host: h:1\ndate: D\nPOST /p HTTP/1.1\ndigest: SHA-256=x" {
		t.Fatalf("origin %q", o)
	}
	if ase.SignatureOrigin("h", "D", "GET", "/p", "") != "host: h\ndate: D\nGET /p HTTP/1.1" {
		t.Fatal("default headers")
	}
	if ase.Digest(nil) != "SHA-256=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=" {
		t.Fatal(ase.Digest(nil))
	}
}

func TestMuxSessionsAndClose(t *testing.T) {
	srv, _ := startEdge(t, demo)
	m, err := ase.New(srv.URL, demo).Multiplex(t.Context(), "echo")
	if err != nil {
		t.Fatal(err)
	}
	a, err := m.Session("a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Session("a"); err == nil {
		t.Fatal("a cid open twice")
	}
	if _, err := m.Session(""); err == nil {
		t.Fatal("an empty cid")
	}
	if err := a.Send(ase.StatusBegin, ase.Request{Payload: []ase.Input{ase.Text("input", "x")}}); err != nil {
		t.Fatal(err)
	}
	if r, err := a.Recv(t.Context()); err != nil || r.Cid != "a" || a.Cid() != "a" {
		t.Fatalf("first result: %+v %v", r, err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	// Closing ends the open sub-session: its Recv reports the end, new ones are refused.
	if _, err := a.Recv(t.Context()); err == nil {
		t.Fatal("a sub-session of a closed socket goes on")
	}
	if _, err := m.Session("b"); err == nil {
		t.Fatal("a sub-session on a closed socket")
	}
}

func TestStreamRefusedHandshake(t *testing.T) {
	srv, _ := startEdge(t, demo)
	_, err := ase.New(srv.URL, ase.Credentials{AppID: "app1", APIKey: "key1", APISecret: "wrong"}).Stream(t.Context(), "echo")
	var e *ase.Error
	if !errors.As(err, &e) || e.HTTPStatus != 401 || e.Message != "HMAC signature does not match" {
		t.Fatalf("refused handshake: %#v", err)
	}
}
