package e2e

import (
	"bytes"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/grpcx"
	"github.com/athenaserving/asf/services/atom"
	"github.com/athenaserving/asf/services/loader"
	"github.com/athenaserving/asf/services/webgate"
	"github.com/athenaserving/asf/tests/asetest"
	"github.com/athenaserving/asf/tests/suitetest"
	"github.com/gorilla/websocket"
)

// sizedSuite starts the suite with one size limit, max-payload-bytes = limit, set the same
// on webgate, atom and the loader (0 keeps every default).
func sizedSuite(t *testing.T, limit int64) *suitetest.Suite {
	t.Helper()
	return suitetest.Start(t, suitetest.Options{
		Loaders: 1,
		Webgate: func(c *webgate.Config) { c.MaxPayloadBytes = limit },
		Atom:    func(c *atom.Config) { c.MaxPayloadBytes = limit },
		Loader:  func(_ int, c *loader.Config) { c.MaxPayloadBytes = limit },
	})
}

// pattern is n bytes that are not all alike, so an echo that lost or moved bytes shows.
func pattern(n int64) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

func sizedFrame(status int, data []byte) asetest.Frame {
	return asetest.Frame{Status: status, Header: map[string]any{"uid": "u1"}, Payload: map[string]asetest.Data{"input": {Type: "audio", Bytes: data}}}
}

// checkEcho fails unless r is a success echoing want.
func checkEcho(t *testing.T, r *asetest.Response, want []byte, what string) {
	t.Helper()
	if r.Header.Code != 0 || (r.HTTPStatus != 0 && r.HTTPStatus != http.StatusOK) {
		raw := r.Raw
		if len(raw) > 300 {
			raw = raw[:300]
		}
		t.Fatalf("%s: HTTP %d %s", what, r.HTTPStatus, raw)
	}
	got, err := r.Bytes("input")
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("%s: echo of %d bytes differs (%d bytes, %v)", what, len(want), len(got), err)
	}
}

// TestSizeLimitThroughSuite: with max-payload-bytes 64 KiB on every service, a payload of
// limit−1 and limit bytes passes webgate→atom→loader and back over HTTP and WebSocket;
// limit+1 is 413 10163 over HTTP and a 10163 error frame over WebSocket, as is a body or
// message over the derived envelope bound — never 502/11502 or a reset.
func TestSizeLimitThroughSuite(t *testing.T) {
	const limit = 64 << 10
	s := sizedSuite(t, limit)
	c := s.Client()

	for _, n := range []int64{limit - 1, limit} {
		data := pattern(n)
		r, err := c.Once(t.Context(), "echo", sizedFrame(3, data))
		if err != nil {
			t.Fatal(err)
		}
		checkEcho(t, r, data, "HTTP payload of "+strconv.FormatInt(n, 10))
	}
	r, err := c.Once(t.Context(), "echo", sizedFrame(3, pattern(limit+1)))
	if err != nil {
		t.Fatal(err)
	}
	if r.HTTPStatus != http.StatusRequestEntityTooLarge || r.Header.Code != 10163 || r.Header.Sid == "" {
		t.Fatalf("HTTP payload of limit+1: %d %s", r.HTTPStatus, r.Raw)
	}
	// A body over the envelope bound (the limit's base64 plus the allowance) is refused
	// from its Content-Length, before it is read.
	big := bytes.Repeat([]byte(" "), int(grpcx.EnvelopeBytes(limit))+1)
	r, err = c.Post(t.Context(), asetest.Route("echo"), big)
	if err != nil {
		t.Fatal(err)
	}
	if r.HTTPStatus != http.StatusRequestEntityTooLarge || r.Header.Code != 10163 {
		t.Fatalf("HTTP body over the envelope bound: %d %s", r.HTTPStatus, r.Raw)
	}

	// WebSocket: one session carries frames of limit−1 and limit bytes; limit+1 ends it
	// with a 10163 error frame and close 1000.
	ses, err := c.Stream(t.Context(), "echo")
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range []int64{limit - 1, limit} {
		data := pattern(n)
		if err := ses.Send(sizedFrame(i, data)); err != nil {
			t.Fatal(err)
		}
		r, err := ses.Recv(10 * time.Second)
		if err != nil {
			t.Fatalf("WebSocket frame of %d bytes: %v", n, err)
		}
		checkEcho(t, r, data, "WebSocket payload of "+strconv.FormatInt(n, 10))
	}
	if err := ses.Send(sizedFrame(2, pattern(limit+1))); err != nil {
		t.Fatal(err)
	}
	wantErrorFrame(t, ses, "WebSocket payload of limit+1")

	// A message over the envelope bound: the rest of it is drained, the client reads the
	// 10163 frame and a clean close rather than a reset.
	ses, err = c.Stream(t.Context(), "echo")
	if err != nil {
		t.Fatal(err)
	}
	if err := ses.SendRaw(bytes.Repeat([]byte(" "), 2*int(grpcx.EnvelopeBytes(limit)))); err != nil {
		t.Fatal(err)
	}
	wantErrorFrame(t, ses, "WebSocket message over the envelope bound")
}

func wantErrorFrame(t *testing.T, ses *asetest.Session, what string) {
	t.Helper()
	r, err := ses.Recv(10 * time.Second)
	if err != nil {
		t.Fatalf("%s: %v, want a 10163 error frame", what, err)
	}
	if r.Header.Code != 10163 {
		t.Fatalf("%s: %s, want code 10163", what, r.Raw)
	}
	ce, err := ses.WaitClose(5 * time.Second)
	if err != nil || ce.Code != websocket.CloseNormalClosure {
		t.Fatalf("%s: close %v %v, want 1000", what, ce, err)
	}
}

// TestDefaultSizeLimitPassesEveryHop: with every default, a 5 MiB payload — over gRPC's
// own 4 MiB default — passes every hop and comes back whole, over HTTP and WebSocket.
func TestDefaultSizeLimitPassesEveryHop(t *testing.T) {
	s := sizedSuite(t, 0)
	c := s.Client()
	data := pattern(5 << 20)
	r, err := c.Once(t.Context(), "echo", sizedFrame(3, data))
	if err != nil {
		t.Fatal(err)
	}
	checkEcho(t, r, data, "HTTP payload of 5 MiB")

	ses, err := c.Stream(t.Context(), "echo")
	if err != nil {
		t.Fatal(err)
	}
	if err := ses.Send(sizedFrame(0, data)); err != nil {
		t.Fatal(err)
	}
	r, err = ses.Recv(20 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	checkEcho(t, r, data, "WebSocket payload of 5 MiB")
}

// TestInvalidUTF8IsClientError: invalid UTF-8 in a header string, a parameter or a
// payload attribute is 400 10163 at the edge (it used to fail protobuf marshalling on the
// way to atom: 502 11502).
func TestInvalidUTF8IsClientError(t *testing.T) {
	s := suitetest.Start(t, suitetest.Options{Loaders: 1})
	c := s.Client()
	app := suitetest.DemoApp.AppID
	for what, body := range map[string]string{
		"header":            `{"header":{"app_id":"` + app + `","uid":"u` + "\xff" + `"},"payload":{"input":{"text":"aGk="}}}`,
		"parameter":         `{"header":{"app_id":"` + app + `"},"parameter":{"echo":{"lang":"` + "\xc3" + `"}},"payload":{"input":{"text":"aGk="}}}`,
		"payload attribute": `{"header":{"app_id":"` + app + `"},"payload":{"input":{"text":"aGk=","encoding":"` + "\xe2\x82" + `"}}}`,
	} {
		r, err := c.Post(t.Context(), asetest.Route("echo"), []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		if r.HTTPStatus != http.StatusBadRequest || r.Header.Code != 10163 {
			t.Errorf("invalid UTF-8 in the %s: %d %s", what, r.HTTPStatus, r.Raw)
		}
	}
	// Over WebSocket it is an error frame.
	ses, err := c.Stream(t.Context(), "echo")
	if err != nil {
		t.Fatal(err)
	}
	if err := ses.SendRaw([]byte(`{"header":{"app_id":"` + app + `","status":0,"uid":"` + "\xff" + `"},"payload":{"input":{"text":"aGk="}}}`)); err != nil {
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			t.Fatal(err)
		}
	}
	wantErrorFrame(t, ses, "WebSocket frame with invalid UTF-8")
}
